import itertools

import pytest
import torch

from attnlab.tasks.sequences import ALPHABET, CopyTask, ReverseTask, SortTask

EXPECTED = {
    CopyTask: lambda s: s,
    ReverseTask: lambda s: "".join(reversed(list(s))),
    SortTask: lambda s: "".join(sorted(s, key=ALPHABET.index)),
}


def _pairs(task, split, n, seed=0):
    batch = task.batch(split, n, torch.Generator().manual_seed(seed))
    return [
        (task.vocab.decode(s), task.decode_output(t))
        for s, t in zip(batch.src, batch.tgt, strict=True)
    ], batch


@pytest.mark.parametrize("cls", list(EXPECTED))
@pytest.mark.parametrize("split", ["train", "val"])
def test_targets_are_correct(cls, split):
    pairs, _ = _pairs(cls(seq_length=12), split, 200)
    assert all(target == EXPECTED[cls](source) for source, target in pairs)
    assert all(set(source) <= set(ALPHABET) for source, _ in pairs)


@pytest.mark.parametrize("seq_length", [1, 2, 3, 9, 10])
def test_lengths_are_variable_in_documented_range(seq_length):
    _, batch = _pairs(CopyTask(seq_length), "train", 400)
    lengths = set(batch.src_lengths.tolist())
    assert lengths == set(range(max(1, seq_length // 2), seq_length + 1))
    assert torch.equal(batch.tgt_lengths, batch.src_lengths + 2)


def test_alphabet_is_used_uniformly_enough():
    pairs, _ = _pairs(CopyTask(10), "train", 300)
    counts = {c: sum(s.count(c) for s, _ in pairs) for c in ALPHABET}
    assert min(counts.values()) > 0.5 * max(counts.values())


@pytest.mark.parametrize("seq_length", [2, 3])
def test_splits_are_disjoint_and_split_of_is_pure(seq_length):
    # Few enough sequences (272 and 4368) that samples would collide without the split.
    task = CopyTask(seq_length)
    train = {s for s, _ in _pairs(task, "train", 3000, seed=1)[0]}
    val = {s for s, _ in _pairs(task, "val", 600, seed=2)[0]}
    assert train
    assert val
    assert not train & val
    fresh = CopyTask(seq_length)
    assert all(fresh.split_of(s) == "train" for s in train)
    assert all(fresh.split_of(s) == "val" for s in val)
    assert all(ReverseTask(seq_length).split_of(s) == "val" for s in val)


def test_val_is_about_a_tenth_of_all_sources():
    task = CopyTask(3)
    sources = ["".join(p) for n in (1, 2, 3) for p in itertools.product(ALPHABET, repeat=n)]
    fraction = sum(task.split_of(s) == "val" for s in sources) / len(sources)
    assert 0.08 < fraction < 0.12


def test_tiny_space_keeps_both_splits():
    # seq_length 1: only 16 sources; a plain 10% hash threshold could leave val empty.
    task = CopyTask(1)
    val_sources = [c for c in ALPHABET if task.split_of(c) == "val"]
    assert len(val_sources) == 2
    train = {s for s, _ in _pairs(task, "train", 300)[0]}
    val = {s for s, _ in _pairs(task, "val", 100)[0]}
    assert val == set(val_sources)
    assert train == set(ALPHABET) - val


def test_sort_keeps_duplicates():
    assert SortTask.transform("fa0a") == "0aaf"
    assert ReverseTask.transform("ab1") == "1ba"


def test_encode_input_checks_length_and_characters():
    task = CopyTask(4)
    assert task.encode_input("0af").tolist() == task.vocab.encode("0af")
    with pytest.raises(ValueError, match="text must have 1 to 4 characters, got 5"):
        task.encode_input("01234")
    with pytest.raises(ValueError, match="characters not in the vocabulary: 'g', 'z'"):
        task.encode_input("zg")
