"""The interface every registered task promises the trainer."""

import pytest
import torch

import attnlab.tasks  # noqa: F401  (registers the tasks)
from attnlab.registry import TASKS
from attnlab.tasks.base import BOS, EOS, PAD

NAMES = TASKS.names()
SEQ_LENGTH = 7


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=NAMES)
def task(request):
    return TASKS.get(request.param)(SEQ_LENGTH)


def test_all_tasks_registered():
    assert set(NAMES) >= {"copy", "reverse", "sort", "recall", "dates", "text"}
    assert all(entry.help for entry in TASKS.entries())


def test_attributes(task):
    assert task.name in NAMES
    assert TASKS.get(task.name) is type(task)
    assert task.kind in ("seq2seq", "lm")
    assert isinstance(task.higher_is_better, bool)
    assert task.primary_metric == ("seq_acc" if task.kind == "seq2seq" else "bits_per_char")
    assert isinstance(task.description, str)
    assert task.description
    assert task.vocab.tokens[:3] == ("<pad>", "<bos>", "<eos>")
    assert task.seq_length == SEQ_LENGTH


@pytest.mark.parametrize("split", ["train", "val"])
def test_batch_layout(task, split):
    batch = task.batch(split, 33, _gen(0))
    tgt = batch.tgt
    assert tgt.dtype == batch.tgt_lengths.dtype == torch.long
    assert tgt.shape[0] == 33
    assert tgt.shape[1] <= task.max_tgt_len
    assert torch.equal(batch.tgt_lengths, (tgt != PAD).sum(1))
    assert int(tgt.max()) < len(task.vocab)
    assert int(tgt.min()) >= 0
    if task.kind == "lm":
        assert batch.src is None
        assert batch.src_lengths is None
        assert tgt.shape[1] == SEQ_LENGTH + 1 == task.max_tgt_len
        assert int(tgt.min()) > EOS
        return
    src = batch.src
    assert src.dtype == torch.long
    assert src.shape[0] == 33
    assert src.shape[1] <= task.max_src_len
    assert torch.equal(batch.src_lengths, (src != PAD).sum(1))
    assert batch.src_lengths.min() >= 1
    assert (src[:, 0] > EOS).all()
    rows = torch.arange(33)
    assert (tgt[:, 0] == BOS).all()
    assert (tgt[rows, batch.tgt_lengths - 1] == EOS).all()
    positions = torch.arange(tgt.shape[1])
    inside = (positions > 0) & (positions[None] < batch.tgt_lengths[:, None] - 1)
    assert (tgt[inside] > EOS).all()
    src_inside = torch.arange(src.shape[1])[None] < batch.src_lengths[:, None]
    assert (src[src_inside] > EOS).all()
    assert (src[~src_inside] == PAD).all()


def test_batch_is_deterministic(task):
    first, second = task.batch("train", 16, _gen(3)), task.batch("train", 16, _gen(3))
    assert torch.equal(first.tgt, second.tgt)
    assert torch.equal(first.tgt_lengths, second.tgt_lengths)
    if first.src is not None:
        assert torch.equal(first.src, second.src)
    other = task.batch("train", 16, _gen(4))
    assert first.tgt.shape != other.tgt.shape or not torch.equal(first.tgt, other.tgt)


def test_generator_is_advanced(task):
    generator = _gen(5)
    first, second = task.batch("val", 16, generator), task.batch("val", 16, generator)
    assert first.tgt.shape != second.tgt.shape or not torch.equal(first.tgt, second.tgt)


def test_examples_match_batch_and_encode_input(task):
    pairs = task.examples("val", 5, seed=11)
    assert len(pairs) == 5
    assert all(isinstance(s, str) and isinstance(t, str) for s, t in pairs)
    assert task.examples("val", 5, seed=11) == pairs
    assert task.examples("val", 0, seed=11) == []
    if task.kind == "lm":
        assert all(len(p) == len(c) == SEQ_LENGTH for p, c in pairs)
        prompt = pairs[0][0]
        assert task.encode_input(prompt).tolist() == task.vocab.encode(prompt)
        return
    batch = task.batch("val", 5, _gen(11))
    for i, (source, target) in enumerate(pairs):
        assert task.vocab.decode(batch.src[i]) == source
        assert task.decode_output(batch.tgt[i]) == target
        encoded = task.encode_input(source)
        assert encoded.dtype == torch.long
        assert torch.equal(encoded, batch.src[i, : batch.src_lengths[i]])


def test_perfect_predictions_score_one(task):
    batch = task.batch("train", 8, _gen(2))
    scores = task.score(batch.tgt[:, 1:], batch)
    assert scores
    assert all(value == 1.0 for value in scores.values())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("seq_length", "error", "match"),
    [
        (0, ValueError, "seq_length must be >= 1, got 0"),
        (-1, ValueError, "seq_length must be >= 1, got -1"),
        ("10", TypeError, "seq_length"),
        (True, TypeError, "seq_length must be an int, got bool True"),
        (2.0, TypeError, "seq_length"),
    ],
)
def test_bad_seq_length(name, seq_length, error, match):
    with pytest.raises(error, match=match):
        TASKS.get(name)(seq_length)


def test_bad_batch_arguments(task):
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'val'\], got 'test'"):
        task.batch("test", 4, _gen(0))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        task.batch("train", 0, _gen(0))
    with pytest.raises(TypeError, match="batch_size"):
        task.batch("train", "4", _gen(0))
    with pytest.raises(TypeError, match="generator"):
        task.batch("train", 4, 0)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        task.examples("train", -1, seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0, got -2"):
        task.examples("train", 1, seed=-2)
    with pytest.raises(ValueError, match="text must"):
        task.encode_input("")
