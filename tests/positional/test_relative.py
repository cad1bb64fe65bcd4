"""T5's bucketed relative position bias as an attnlab positional scheme."""

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.models.decoder import DecoderLM
from attnlab.models.seq2seq_lm import Seq2SeqLM
from attnlab.positional import RelativePositionBias, relative_buckets
from attnlab.registry import POSITIONS


def reference_bucket(relative: int, bidirectional: bool, num_buckets: int, max_distance: int
                     ) -> int:
    """The bucket of one distance, written out from the T5 paper's description."""
    import math

    bucket = 0
    if bidirectional:
        num_buckets //= 2
        if relative > 0:
            bucket += num_buckets
        distance = abs(relative)
    else:
        distance = max(-relative, 0)
    exact = num_buckets // 2
    if distance < exact:
        return bucket + distance
    far = exact + int(math.log(distance / exact) / math.log(max_distance / exact)
                      * (num_buckets - exact))
    return bucket + min(far, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (8, 20)])
def test_buckets_match_the_definition(bidirectional, num_buckets, max_distance):
    relative = torch.arange(-300, 301)
    got = relative_buckets(relative, bidirectional=bidirectional, num_buckets=num_buckets,
                           max_distance=max_distance)
    want = [reference_bucket(int(r), bidirectional, num_buckets, max_distance) for r in relative]
    assert got.tolist() == want
    assert int(got.min()) >= 0
    assert int(got.max()) == num_buckets - 1


def test_bias_is_bottom_right_aligned_and_registered():
    assert POSITIONS.get("t5") is RelativePositionBias
    bias = RelativePositionBias(3, causal=True)
    full = bias(7, 7)  # (H, L, S)
    assert full.shape == (3, 7, 7)
    assert torch.equal(bias(2, 7), full[:, 5:])  # the last two queries after 5 cached keys
    with pytest.raises(ValueError, match="S must be"):
        bias(4, 3)


def test_t5_positions_in_attnlabs_own_decoder_with_a_cache():
    torch.manual_seed(0)
    lm = DecoderLM(ModelConfig(vocab_size=23, embed_dim=12, num_heads=3, positions="t5",
                               max_len=40)).eval()
    with torch.no_grad():
        lm.embed.score_bias.embedding.weight.normal_(0.0, 1.0)
    ids = torch.randint(0, 23, (2, 9))
    cache = lm.new_cache()
    with torch.no_grad():
        full = lm(ids)
        steps = [lm(ids[:, :5], cache=cache)] + [lm(ids[:, t:t + 1], cache=cache)
                                                   for t in range(5, 9)]
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-5
    assert torch.equal(lm.generate(ids[:, :3], 6, temperature=0.0),
                       lm.generate(ids[:, :3], 6, temperature=0.0, use_cache=False))


def test_seq2seq_sides_get_their_own_tables_and_learn():
    model = Seq2SeqLM(ModelConfig(arch="encoder-decoder", vocab_size=11, embed_dim=8,
                                  num_heads=2, positions="t5"), decoder_start_id=0)
    assert (model.encoder.embed.score_bias.causal, model.decoder_embed.score_bias.causal) == (
        False, True)
    loss = model(torch.tensor([[3, 4, 5]]), torch.tensor([[0, 6, 7]])).logsumexp(-1).sum()
    loss.backward()
    assert model.encoder.embed.score_bias.embedding.weight.grad.abs().sum() > 0
    assert model.decoder_embed.score_bias.embedding.weight.grad.abs().sum() > 0
