import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.tasks.base import BOS, EOS, PAD, Batch, Task, Vocab, pad_rows, split_hash
from attnlab.tasks.sequences import CopyTask

SYMBOLS = "abcXYZ019 .\n"


def test_vocab_layout():
    vocab = Vocab("abc")
    assert vocab.tokens == ("<pad>", "<bos>", "<eos>", "a", "b", "c")
    assert len(vocab) == 6
    assert (PAD, BOS, EOS) == (0, 1, 2)
    assert vocab.encode("cab") == [5, 3, 4]
    assert vocab.encode(["<bos>", "a", "<eos>"]) == [1, 3, 2]
    assert vocab.decode([1, 5, 3, 4, 2, 0, 0]) == "cab"
    assert vocab.decode(torch.tensor([1, 5, 2, 0]), strip_special=False) == "<bos>c<eos><pad>"


def test_vocab_unknown_characters_are_named_sorted():
    with pytest.raises(ValueError, match=re.escape("characters not in the vocabulary: '~', 'é'")):
        Vocab("abc").encode("a~éb~")


def test_vocab_unknown_tokens():
    with pytest.raises(ValueError, match=re.escape("tokens not in the vocabulary: '<foo>'")):
        Vocab("abc").encode(["a", "<foo>"])


def test_vocab_decode_out_of_range():
    with pytest.raises(ValueError, match=re.escape("ids not in the vocabulary of size 6: [-1, 6]")):
        Vocab("abc").decode([3, 6, -1])


@pytest.mark.parametrize(
    ("symbols", "error", "message"),
    [
        ("abca", ValueError, "symbols must be distinct, repeated: 'a'"),
        (["a", "bc"], ValueError, "symbols must be single characters, got 'bc'"),
        (iter(["a", 1]), TypeError, "symbols must be strings, got int 1"),
        (["<pad>"], ValueError, "symbols must be single characters"),
    ],
)
def test_vocab_bad_symbols(symbols, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Vocab(symbols)


@settings(database=None, max_examples=60, deadline=None)
@given(st.text(alphabet=SYMBOLS))
def test_vocab_roundtrip(text):
    vocab = Vocab(SYMBOLS)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert vocab.encode(list(text)) == ids
    assert all(3 <= i < len(vocab) for i in ids)
    assert vocab.decode([BOS, *ids, EOS, PAD]) == text


@settings(database=None, max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(SYMBOLS) + 2)))
def test_vocab_decode_strips_only_specials(ids):
    vocab = Vocab(SYMBOLS)
    assert vocab.decode(ids) == vocab.decode([i for i in ids if i > EOS])
    assert len(vocab.decode(ids)) == sum(i > EOS for i in ids)


def test_split_hash_is_stable_and_spread():
    assert split_hash("abc") == split_hash("abc")
    values = [split_hash(str(i)) for i in range(2000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.07 < sum(v < 0.1 for v in values) / len(values) < 0.13


def test_pad_rows():
    padded, lengths = pad_rows([[5, 6, 7], [8]])
    assert padded.tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert lengths.tolist() == [3, 1]
    assert padded.dtype == lengths.dtype == torch.long


def test_bits_per_char():
    assert Task.bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert Task.bits_per_char(0.0) == 0.0
    assert Task.bits_per_char(2.0) == pytest.approx(2.0 / math.log(2))


def test_batch_to_and_frozen():
    batch = Batch(
        torch.ones(2, 3, dtype=torch.long),
        torch.ones(2, 4, dtype=torch.long),
        torch.tensor([3, 3]),
        torch.tensor([4, 4]),
    )
    moved = batch.to("cpu")
    assert torch.equal(moved.src, batch.src)
    assert torch.equal(moved.tgt, batch.tgt)
    assert Batch(None, batch.tgt, None, batch.tgt_lengths).to("cpu").src is None
    with pytest.raises(AttributeError):
        batch.tgt = batch.src


# Hand-made batch: targets "abc" and "d" for the copy vocabulary.
def _batch():
    task = CopyTask(seq_length=3)
    a, b, c, d = task.vocab.encode("abcd")
    tgt, tgt_lengths = pad_rows([[BOS, a, b, c, EOS], [BOS, d, EOS]])
    src, src_lengths = pad_rows([[a, b, c], [d]])
    return task, Batch(src, tgt, src_lengths, tgt_lengths), (a, b, c, d)


def _score(rows, width=None):
    task, batch, _ = _batch()
    width = width if width is not None else max(len(r) for r in rows)
    pred = torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)
    return task.score(pred.reshape(2, width), batch)


def test_score_perfect_ignores_tokens_after_eos():
    _, _, (a, b, c, d) = _batch()
    assert _score([[a, b, c, EOS, d], [d, EOS, a, b, c]]) == {"token_acc": 1.0, "seq_acc": 1.0}


def test_score_one_wrong_token():
    _, _, (a, b, c, d) = _batch()
    # Reference positions: 4 (a b c EOS) + 2 (d EOS); one miss.
    assert _score([[a, d, c, EOS], [d, EOS]]) == {"token_acc": 5 / 6, "seq_acc": 0.5}


def test_score_early_eos_misses_the_rest():
    _, _, (a, b, c, d) = _batch()
    assert _score([[a, EOS, c, EOS], [d, EOS]]) == {"token_acc": 3 / 6, "seq_acc": 0.5}


def test_score_missing_eos_is_wrong():
    _, _, (a, b, c, d) = _batch()
    assert _score([[a, b, c], [d, EOS, PAD]]) == {"token_acc": 5 / 6, "seq_acc": 0.5}
    assert _score([[a, b, c, d, EOS], [d, d, EOS]]) == {"token_acc": 4 / 6, "seq_acc": 0.0}


def test_score_empty_prediction():
    assert _score([[], []], width=0) == {"token_acc": 0.0, "seq_acc": 0.0}


def test_score_bad_predictions():
    task, batch, _ = _batch()
    with pytest.raises(TypeError, match="pred_ids must be an integer tensor, got torch.float32"):
        task.score(torch.zeros(2, 4), batch)
    with pytest.raises(ValueError, match=re.escape(r"pred_ids must have shape (2, L), got (3, 4)")):
        task.score(torch.zeros(3, 4, dtype=torch.long), batch)
    with pytest.raises(ValueError, match=re.escape(r"got (2,)")):
        task.score(torch.zeros(2, dtype=torch.long), batch)


def test_decode_output():
    task, _, (a, b, c, d) = _batch()
    assert task.decode_output([BOS, a, b, EOS, c]) == "ab"
    assert task.decode_output(torch.tensor([d, c, PAD])) == "dc"
