"""The bidirectional encoder (BERT-like)."""

import torch

from attnlab.config import ModelConfig
from attnlab.models import TransformerEncoder


def test_encoder_bidirectional_and_token_types():
    torch.manual_seed(2)
    cfg = ModelConfig(arch="encoder", vocab_size=9, embed_dim=10, num_heads=2, prenorm=False,
                      embed_norm=True, type_vocab_size=2)
    enc = TransformerEncoder(cfg).eval()
    ids = torch.randint(0, 9, (2, 6))
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 9
    assert not torch.allclose(enc(ids)[:, 0], enc(changed)[:, 0])  # sees the future
    types = torch.ones_like(ids)
    assert not torch.allclose(enc(ids), enc(ids, token_type_ids=types))
