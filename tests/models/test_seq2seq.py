"""The encoder–decoder: greedy generation, its cache, and source padding."""

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.models import EncoderDecoder


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("scheme", ["sinusoidal", "learned", "rotary", "alibi"])
@pytest.mark.parametrize("prenorm", [True, False])
def test_encoder_decoder_generation_and_padding(scheme, prenorm):
    torch.manual_seed(1)
    cfg = ModelConfig(arch="encoder-decoder", vocab_size=11, embed_dim=12, num_heads=3,
                      positions=scheme, prenorm=prenorm, max_len=30)
    model = EncoderDecoder(cfg).double().eval()
    src = torch.randint(3, 11, (2, 7))
    out = model.generate(src, 6, bos_id=1, temperature=0)
    assert torch.equal(out, model.generate(src, 6, bos_id=1, temperature=0, use_cache=False))
    for t in range(1, 7):  # each greedy token is the argmax of the teacher-forced forward
        assert torch.equal(out[:, t], model(src, out[:, :t])[:, -1].argmax(-1))
    # a padded source gives the same result as the unpadded one
    padded = torch.cat([src, torch.zeros(2, 2, dtype=torch.long)], dim=1)
    src_mask = torch.tensor([[1] * 7 + [0] * 2] * 2)
    assert rel_err(model(padded, out, src_mask), model(src, out)) < 1e-10
