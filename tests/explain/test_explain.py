"""al.explain: the steps recompose to the model's own output, and equal a hand computation."""

import math

import pytest
import torch
from torch import nn

import attnlab as al
from attnlab.config import ModelConfig
from attnlab.models import DecoderLM, EncoderDecoder, TransformerEncoder
from attnlab.registry import ATTENTION

F64 = torch.float64
TOL = 1e-10


def _check(ex):
    assert ex.error <= TOL, (ex.module, ex.error)
    assert not any(step.value.requires_grad for step in ex.steps)
    last = ex.steps[-1]
    assert last.name in ("output", "residual")
    if last.name == "output":
        assert torch.allclose(last.value, ex.output, rtol=0, atol=TOL * ex.output.abs().max())


def _all_layers(model, inputs, heads=(0, -1)):
    n = len(al.visualize.capture.attention_modules(model))
    for layer in range(n):
        module = list(al.visualize.capture.attention_modules(model).values())[layer]
        H = getattr(module, "num_heads", 1)
        for head in sorted({h % H for h in heads}):
            ex = al.explain(model, inputs, layer=layer, head=head)
            _check(ex)
            assert ex.head == head
            assert ex.layer == layer


@pytest.mark.parametrize("mechanism", ATTENTION.names())
def test_every_mechanism_in_a_decoder_lm(mechanism):
    torch.manual_seed(0)
    positions = "sinusoidal" if mechanism in ("additive", "simple") else "rotary"
    cfg = ModelConfig(vocab_size=13, embed_dim=12, num_heads=6, num_layers=2, attention=mechanism,
                      positions=positions, window=3 if mechanism == "local" else None,
                      num_kv_heads=2 if mechanism == "gqa" else None)
    lm = DecoderLM(cfg).to(F64)
    _all_layers(lm, torch.randint(0, 13, (2, 7)))


@pytest.mark.parametrize("mechanism", [m for m in ATTENTION.names() if m != "causal"])
def test_every_mechanism_in_an_encoder_decoder_with_cross_attention(mechanism):
    torch.manual_seed(1)
    cross = "additive" if mechanism in ("additive", "simple") else "multihead"
    cfg = ModelConfig(arch="encoder-decoder", vocab_size=11, embed_dim=10, num_heads=2,
                      num_layers=1, attention=mechanism, cross_attention=cross,
                      positions="learned", window=2 if mechanism == "local" else None,
                      prenorm=False)
    model = EncoderDecoder(cfg).to(F64)
    src, tgt = torch.randint(3, 11, (1, 5)), torch.randint(3, 11, (1, 3))  # L != S
    _all_layers(model, (src, tgt, torch.tensor([[1, 1, 1, 1, 0]])))
    ex = al.explain(model, (src, tgt), layer="decoder.layers.0.cross_attn", head=0)
    shown = al.explain(model, (src, tgt), layer="encoder.layers.0.self_attn", head=0)
    # the label views show works too (simple attention sits in an adapter: ...self_attn.inner)
    assert shown.module.startswith("encoder.encoder.layers.0.self_attn")
    assert "context" in ex
    assert ex["weights"].shape == (3, 5)


@pytest.mark.parametrize("positions", ["alibi", "rotary", "learned", "sinusoidal"])
@pytest.mark.parametrize("prenorm", [True, False])
def test_positions_and_norms_in_an_encoder(positions, prenorm):
    torch.manual_seed(2)
    cfg = ModelConfig(arch="encoder", vocab_size=9, embed_dim=8, num_heads=2, num_layers=2,
                      positions=positions, prenorm=prenorm, norm="rmsnorm")
    enc = TransformerEncoder(cfg).to(F64)
    ids = torch.randint(0, 9, (2, 5))
    padding = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    ex = al.explain(enc, (ids, padding), layer=1, head=1, batch=1)
    _check(ex)
    assert torch.isneginf(ex["mask"][:, 3:]).all()  # padding hides the last two keys
    assert (ex["weights"][:, 3:] == 0).all()
    if positions == "rotary":
        assert "q_raw" in ex
        assert not torch.allclose(ex["q_raw"], ex["q"])
    if positions == "alibi":  # the bias is -slope * distance (second slope of 2 heads)
        slope = float(al.positional.alibi.alibi_slopes(2)[1])
        distance = (torch.arange(5)[:, None] - torch.arange(5)[None]).abs().to(F64)
        assert torch.allclose(ex["mask"][:3, :3], -slope * distance[:3, :3], atol=1e-7)
    assert ("layer_input" in ex) == prenorm


@pytest.mark.parametrize(("make", "inputs"), [
    (lambda: al.SimpleSelfAttention(causal=True), lambda: torch.randn(2, 1, 5)),  # length 1
    (lambda: al.SimpleSelfAttention(scale=1.0), lambda: torch.randn(1, 4, 3)),
    (lambda: al.SelfAttention(6, causal=True, bias=True), lambda: torch.randn(1, 4, 6)),
    (lambda: al.CausalSelfAttention(6, num_heads=3), lambda: torch.randn(2, 5, 6)),
    (lambda: al.CrossAttention(6, context_dim=5, num_heads=2),
     lambda: (torch.randn(1, 3, 6), torch.randn(1, 7, 5))),
    (lambda: al.MultiHeadAttention(12, 6, num_kv_heads=3, window=2, causal=True),
     lambda: torch.randn(1, 9, 12)),
    (lambda: al.AdditiveAttention(6, kdim=4, hidden_dim=5),
     lambda: (torch.randn(2, 3, 6), torch.randn(2, 5, 4))),
])
def test_bare_modules(make, inputs):
    torch.manual_seed(3)
    module = make().to(F64)
    x = inputs()
    x = tuple(t.to(F64) for t in x) if isinstance(x, tuple) else x.to(F64)
    H = getattr(module, "num_heads", 1)
    for head in range(H):
        ex = al.explain(module, x, layer=0, head=head, batch=0)
        _check(ex)
        assert ex.module == ""
    real = module(*x) if isinstance(x, tuple) else module(x)
    assert torch.allclose(ex.output, real[0], atol=1e-12)


def test_weights_equal_captured_weights_and_the_output_is_the_models_own():
    torch.manual_seed(4)
    mha = al.MultiHeadAttention(10, 5, num_kv_heads=1).to(F64)
    x = torch.randn(3, 4, 10, dtype=F64)
    with al.capture_attention(mha) as maps:
        mha(x)
    with torch.no_grad():
        y = mha(x)  # the fused path, as explain ran it
    ex = al.explain(mha, x, layer="", head=2, batch=2)
    assert torch.allclose(ex["weights"], maps[""][2, 2], atol=1e-14)
    assert torch.equal(ex.output, y[2])
    assert ex.kind == "multi-query"
    assert ex.kv_head == 0


def test_float32_model():
    torch.manual_seed(5)
    lm = DecoderLM(ModelConfig(vocab_size=7, embed_dim=8, num_heads=2, num_layers=1))
    ex = al.explain(lm, torch.tensor([[1, 2, 3]]), layer=0, head=1)
    assert ex.error < 1e-5
    assert ex["weights"].dtype == F64


def test_scores_scale_mask_equal_a_hand_computation_on_three_tokens():
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]], dtype=F64)  # (1, 3, 2)
    ex = al.explain(al.SimpleSelfAttention(causal=True), x, layer=0, head=0)
    hand = [[1.0, 0.0, 1.0], [0.0, 4.0, 2.0], [1.0, 2.0, 2.0]]  # x_i . x_j by hand
    assert ex["scores"].tolist() == hand
    assert ex["scale"].item() == pytest.approx(1 / math.sqrt(2), rel=1e-15)
    inf = float("-inf")
    assert ex["mask"].tolist() == [[0.0, inf, inf], [0.0, 0.0, inf], [0.0, 0.0, 0.0]]
    row = torch.tensor([0.0, 4.0]) / math.sqrt(2)
    assert torch.allclose(ex["weights"][1, :2], torch.softmax(row.to(F64), 0))
    assert ex["weights"][0].tolist() == [1.0, 0.0, 0.0]

    # one head with weights: every number by loops over plain Python floats
    torch.manual_seed(6)
    mha = al.MultiHeadAttention(4, 2, window=2).to(F64)
    x = torch.randn(1, 3, 4, dtype=F64)
    ex = al.explain(mha, x, layer=0, head=1)
    Wq, bq = mha.q_proj.weight.tolist(), mha.q_proj.bias.tolist()
    Wk, bk = mha.k_proj.weight.tolist(), mha.k_proj.bias.tolist()
    rows = x[0].tolist()

    def proj(W, b, r, d):
        return sum(W[d][e] * r[e] for e in range(4)) + b[d]

    q = [[proj(Wq, bq, r, d) for d in (2, 3)] for r in rows]  # head 1: dims 2 and 3
    k = [[proj(Wk, bk, r, d) for d in (2, 3)] for r in rows]
    scores = [[q[i][0] * k[j][0] + q[i][1] * k[j][1] for j in range(3)] for i in range(3)]
    assert torch.allclose(ex["scores"], torch.tensor(scores, dtype=F64), atol=1e-13)
    assert ex["scale"].item() == 2 ** -0.5
    assert ex["mask"].tolist() == [[0.0, 0.0, inf], [0.0, 0.0, 0.0], [inf, 0.0, 0.0]]


def test_bad_layer_head_batch_and_models_without_attention():
    mha = al.MultiHeadAttention(6, 3)
    x = torch.randn(2, 4, 6)
    with pytest.raises(ValueError, match=r"head 3 is out of range.*valid heads are 0\.\.2"):
        al.explain(mha, x, layer=0, head=3)
    with pytest.raises(ValueError, match=r"layer 1 is out of range.*valid layers are 0\.\.0"):
        al.explain(mha, x, layer=1, head=0)
    with pytest.raises(ValueError, match=r"layer 'nope' is not an attention module"):
        al.explain(mha, x, layer="nope", head=0)
    with pytest.raises(ValueError, match=r"batch 2 is out of range.*valid: 0\.\.1"):
        al.explain(mha, x, layer=0, head=0, batch=2)
    with pytest.raises(TypeError, match="head"):
        al.explain(mha, x, layer=0, head=1.5)
    with pytest.raises(ValueError, match="has no attention module"):
        al.explain(nn.Linear(3, 3), torch.randn(1, 3), layer=0, head=0)
    with pytest.raises(TypeError, match="model must be"):
        al.explain("gpt", x, layer=0, head=0)


def test_step_metadata_reads_well():
    ex = al.explain(al.MultiHeadAttention(8, 2).to(F64), torch.randn(1, 3, 8, dtype=F64),
                    layer=0, head=0)
    step = ex.step("weights")
    assert step.shape == "(L, S) = (3, 3)"
    assert step.formula
    assert step.text
    assert ex.step("scale").shape == "scalar"
    with pytest.raises(KeyError, match="steps: input"):
        ex.step("nope")
    labelled = ex.with_tokens(["a", "b", "c"])
    assert labelled.key_tokens == ["a", "b", "c"]
    assert ex.query_tokens == []
    with pytest.raises(ValueError, match=r"L=3 query and S=3 key labels, got 2 and 3"):
        ex.with_tokens(["a", "b"], ["a", "b", "c"])


def test_formulas_name_where_keys_and_values_come_from():
    torch.manual_seed(0)
    mha = al.MultiHeadAttention(8, 2).double()
    x = torch.randn(1, 3, 8, dtype=torch.float64)
    self_steps = al.explain(mha, x, layer=0, head=0)
    assert self_steps.step("k").formula == "Kₕ = X W_Kₕ"
    assert self_steps.step("v").formula == "Vₕ = X W_Vₕ"
    cross = al.CrossAttention(8, context_dim=6, num_heads=2).double()
    ctx = torch.randn(1, 5, 6, dtype=torch.float64)
    cross_steps = al.explain(cross, (x, ctx), layer=0, head=1)
    assert cross_steps.step("k").formula == "Kₕ = C W_Kₕ"
