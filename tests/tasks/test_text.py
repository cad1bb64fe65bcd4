import math
import time
from pathlib import Path

import pytest
import torch

from attnlab.tasks.text import (
    CORPUS_CHARS,
    REPLACEMENT,
    SKIP_DIRS,
    TextTask,
    load_corpus,
    stdlib_files,
)

LINES = [f"line {i:04d}: the quick brown fox {'ü' if i < 5 else ''}\n" for i in range(1000)]
TEXT = "é" + "".join(LINES) + "é"


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _expected_split():
    cut = TEXT.index("\n", int(len(TEXT) * 0.9)) + 1
    clean = TEXT.replace("é", REPLACEMENT)
    return clean[:cut], clean[cut:]


def test_custom_file_vocab_replaces_rare_characters(data):
    task = TextTask(8, data=data)
    assert task.vocab.tokens[3] == REPLACEMENT
    assert "ü" in task.vocab.tokens
    assert "é" not in task.vocab.tokens
    assert task.encode_input("fé~ü").tolist() == [
        task.vocab.encode("f")[0],
        3,
        3,
        task.vocab.encode("ü")[0],
    ]


@pytest.mark.parametrize("split", ["train", "val"])
def test_chunks_come_from_their_split(data, split):
    train, val = _expected_split()
    task = TextTask(30, data=str(data))
    batch = task.batch(split, 64, torch.Generator().manual_seed(0))
    assert tuple(batch.tgt.shape) == (64, 31)
    assert batch.tgt_lengths.tolist() == [31] * 64
    text = train if split == "train" else val
    chunks = [task.vocab.decode(row) for row in batch.tgt]
    assert all(len(c) == 31 and c in text for c in chunks)
    starts = {text.index(c) for c in chunks}
    assert len(starts) > 50


def test_examples_are_consecutive(data):
    train, _ = _expected_split()
    task = TextTask(12, data=data)
    for prompt, continuation in task.examples("train", 20, seed=3):
        assert len(prompt) == len(continuation) == 12
        assert prompt + continuation in train


def test_determinism(data):
    task = TextTask(10, data=data)
    first = task.batch("train", 8, torch.Generator().manual_seed(1)).tgt
    assert torch.equal(first, task.batch("train", 8, torch.Generator().manual_seed(1)).tgt)
    assert not torch.equal(first, task.batch("train", 8, torch.Generator().manual_seed(2)).tgt)


def test_score_and_bits_per_char(data):
    task = TextTask(4, data=data)
    batch = task.batch("train", 2, torch.Generator().manual_seed(0))
    pred = batch.tgt[:, 1:].clone()
    pred[0, :2] = 0
    assert task.score(pred, batch) == {"next_char_acc": 0.75}
    with pytest.raises(ValueError, match=r"pred_ids must have shape \(2, 4\), got \(2, 5\)"):
        task.score(batch.tgt, batch)
    assert task.bits_per_char(math.log(4)) == pytest.approx(2.0)
    assert (task.primary_metric, task.higher_is_better) == ("bits_per_char", False)


def test_bad_data(tmp_path, data):
    with pytest.raises(ValueError, match="data must be a readable UTF-8 file, got '.*missing"):
        TextTask(10, data=tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1") * 100)
    with pytest.raises(ValueError, match="data must be a readable UTF-8 file"):
        TextTask(10, data=latin)
    with pytest.raises(TypeError, match="data"):
        TextTask(10, data=5)
    with pytest.raises(ValueError, match="seq_length must be at most half the val text's"):
        TextTask(3000, data=data)


def test_stdlib_corpus_selection():
    files = stdlib_files()
    paths = [path for path, _ in files]
    assert paths == sorted(paths)
    assert len(paths) > 20
    assert not any(set(Path(p).parts[:-1]) & SKIP_DIRS for p in paths)
    assert not any(Path(p).name.startswith("test_") for p in paths)
    total = sum(len(text) for _, text in files)
    assert CORPUS_CHARS <= total < CORPUS_CHARS + max(len(text) for _, text in files)


def test_stdlib_split_is_every_tenth_file():
    vocab, train_ids, val_ids = load_corpus(None)
    texts = [text for _, text in stdlib_files()]
    known = set(vocab.tokens[3:])

    def clean(parts):
        return "".join(c if c in known else REPLACEMENT for c in "".join(parts))

    assert vocab.decode(val_ids) == clean(texts[9::10])
    assert vocab.decode(train_ids) == clean(t for i, t in enumerate(texts) if i % 10 != 9)


def test_stdlib_loads_fast_and_is_cached():
    load_corpus.cache_clear()
    start = time.perf_counter()
    TextTask(10)
    assert time.perf_counter() - start < 2.0
    hits = load_corpus.cache_info().hits
    TextTask(64)
    assert load_corpus.cache_info().hits == hits + 1
