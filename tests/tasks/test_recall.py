import string
from collections import Counter

import pytest
import torch

from attnlab.tasks.recall import RecallTask


def _pairs(task, split, n, seed=0):
    batch = task.batch(split, n, torch.Generator().manual_seed(seed))
    return [
        (task.vocab.decode(s), task.decode_output(t))
        for s, t in zip(batch.src, batch.tgt, strict=True)
    ]


@pytest.mark.parametrize("split", ["train", "val"])
def test_source_structure_and_answer(split):
    task = RecallTask(seq_length=8)
    query_positions, pair_counts = Counter(), Counter()
    for source, target in _pairs(task, split, 300):
        body, query = source.split("?")
        keys, values = body[0::2], body[1::2]
        assert 1 <= len(keys) == len(values) <= 8
        pair_counts[len(keys)] += 1
        assert len(set(keys)) == len(keys)
        assert set(keys) <= set(string.ascii_lowercase)
        assert set(values) <= set(string.digits)
        assert len(query) == 1
        assert query in keys
        assert target == values[keys.index(query)]
        query_positions[keys.index(query)] += 1
    assert set(query_positions) == set(range(8))
    assert set(pair_counts) == set(range(1, 9))  # k uniform in [1, seq_length]


def test_lengths():
    task = RecallTask(seq_length=26)
    assert task.max_src_len == 54
    assert task.max_tgt_len == 3
    lengths = set(task.batch("train", 300, torch.Generator().manual_seed(0)).src_lengths.tolist())
    assert lengths <= set(range(4, 54 + 1, 2))
    assert 54 in lengths
    assert 4 in lengths


def test_too_many_pairs():
    with pytest.raises(ValueError, match="seq_length must be <= 26, got 27"):
        RecallTask(27)


def test_splits_are_disjoint():
    # Two pairs at most: 130,260 sources, so 3000 x 600 samples would collide without the split.
    task = RecallTask(2)
    train = {s for s, _ in _pairs(task, "train", 3000, seed=1)}
    val = {s for s, _ in _pairs(task, "val", 600, seed=2)}
    assert not train & val
    fresh = RecallTask(2)
    assert all(fresh.split_of(s) == "val" for s in val)
    assert all(fresh.split_of(s) == "train" for s in train)


def test_tiny_space():
    task = RecallTask(1)
    sources = [f"{k}{v}?{k}" for k in string.ascii_lowercase for v in string.digits]
    val_sources = {s for s in sources if task.split_of(s) == "val"}
    assert len(val_sources) == 26
    val = {s for s, _ in _pairs(task, "val", 400)}
    assert val <= val_sources
    assert len(val) > 10
    assert not {s for s, _ in _pairs(task, "train", 400)} & val_sources
