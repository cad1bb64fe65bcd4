"""torch.compile runs the models (``attnlab train --compile``) and changes no number.

Every ``--model`` kind was checked by hand this way (forward and backward, every position
kind that fits: float64 relative differences ≤ 5e-16); these three cover the encoder-decoder,
the banded kernel (an autograd.Function) and grouped heads with rotary positions.
"""

import pytest
import torch

from attnlab.models import build_model
from attnlab.training.recipes import model_config


# Dynamo itself warns while it traces the argument checks (it inspects the tensors they are
# given); nothing in attnlab reads a non-leaf's .grad.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize(("model", "kind", "positions"), [("multihead", "seq2seq", None),
                                                          ("local", "lm", None),
                                                          ("gqa", "lm", "rotary")])
def test_compiled_model_matches_eager_forward_and_backward(model, kind, positions):
    torch._dynamo.reset()
    config = model_config(model, kind, vocab_size=11, max_len=24, embed_dim=16, num_heads=4,
                          num_layers=2, dropout=0.0, positions=positions)
    torch.manual_seed(0)
    net = build_model(config).double()
    ids = torch.randint(0, 11, (3, 13))
    args = (ids, torch.randint(0, 11, (3, 7))) if kind == "seq2seq" else (ids,)

    def run(fn):
        net.zero_grad()
        out = fn(*args)  # (B, L, V) logits
        (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
        grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        return out.detach(), grads

    out, grads = run(net)
    compiled_out, compiled_grads = run(torch.compile(net))
    assert (compiled_out - out).norm() / out.norm() <= 1e-12
    assert (compiled_grads - grads).norm() / grads.norm() <= 1e-12
    torch._dynamo.reset()


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("model", ["multihead", "local"])
def test_a_decoder_lm_step_compiles_to_one_graph(model):
    """No graph break: the id range check stays inside the graph, the dispatch log is skipped."""
    torch._dynamo.reset()
    config = model_config(model, "lm", vocab_size=11, max_len=24, embed_dim=16, num_heads=4,
                          num_layers=2, dropout=0.0, positions=None)
    net = build_model(config)
    explained = torch._dynamo.explain(lambda ids: net(ids).logsumexp(-1).mean())(
        torch.randint(0, 11, (2, 9)))
    assert explained.graph_break_count == 0, explained.break_reasons
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 11\), got values from 0 "
                                         r"to 11"):
        net(torch.tensor([[0, 11]]))  # eager: the clear error, before any work
