"""Int8 weights for the decode step (models/quantized.py): the format, its product, the step.

The quantized step is approximate by design, so its logits are checked two ways: on a model
whose weights are already int8-representable (quantizing again must change nothing: logits
equal the float step's to float32 rounding), and on a random model (logits close, not equal:
the int8 weights are really used).
"""

import copy
import gc
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.config import ModelConfig
from attnlab.models.decoder import DecoderLM
from attnlab.models.lean import LeanDecoder
from attnlab.models.quantized import _CACHE, QMAX, int8_rows, quantize_rows


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 9), k=st.integers(1, 13), seed=st.integers(0, 2**16),
       spread=st.floats(1e-3, 1e3))
def test_rows_round_to_the_nearest_multiple_of_their_scale(n, k, seed, spread) -> None:
    w = torch.randn(n, k, generator=torch.Generator().manual_seed(seed)).double() * spread
    rows = quantize_rows(w)
    assert rows.q.dtype == torch.int8
    assert rows.q.shape == (n, k)
    assert rows.scale.shape == (n,)
    assert rows.scale.dtype == torch.float64
    assert int(rows.q.abs().max()) <= QMAX
    assert torch.equal(rows.q.abs().amax(1), torch.full((n,), QMAX, dtype=torch.int8))
    err = (w - rows.dequantized()).abs()
    assert bool((err <= rows.scale[:, None] / 2 * (1 + 1e-9)).all())  # round to nearest


def test_a_row_of_zeros_gets_scale_one() -> None:
    w = torch.randn(3, 5)
    w[1] = 0
    rows = quantize_rows(w)
    assert float(rows.scale[1]) == 1.0
    assert not rows.q[1].any()
    assert torch.isfinite(rows.dequantized()).all()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-6)])
@pytest.mark.parametrize("lead", [(1,), (1, 1), (3, 7), (2, 1, 5)])
def test_the_product_equals_x_times_the_dequantized_weight(dtype, tol, lead) -> None:
    g = torch.Generator().manual_seed(len(lead))
    rows = quantize_rows(torch.randn(37, 29, generator=g, dtype=dtype))
    x = torch.randn(*lead, 29, generator=g, dtype=dtype)
    got = rows.matmul(x)
    assert got.shape == (*lead, 37)
    assert got.dtype == dtype
    want = x.double() @ rows.dequantized().double().t()  # float64 reference
    assert rel(got, want) <= tol


def test_the_cache_keeps_one_copy_until_the_weight_changes() -> None:
    w = torch.nn.Parameter(torch.randn(6, 4))
    first = int8_rows(w)
    assert int8_rows(w) is first  # cached
    with torch.no_grad():
        w.mul_(3.0)  # in place: an optimizer step, load_state_dict
    second = int8_rows(w)
    assert second is not first
    assert torch.allclose(second.dequantized(), w.detach(), atol=float(second.scale.max()))
    w.data = torch.randn(6, 4)  # a swapped storage
    assert int8_rows(w) is not second
    count = len(_CACHE)
    del w
    gc.collect()
    assert len(_CACHE) == count - 1  # weak: a dropped weight frees its int8 copy


def llama(seed: int, dtype: torch.dtype = torch.float32) -> DecoderLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=41, embed_dim=36, num_heads=6, num_layers=2, max_len=48,
                      positions="rotary", num_kv_heads=2, norm="rmsnorm", ffn="swiglu",
                      bias=False, embed_std=1.0)
    return DecoderLM(cfg).to(dtype).eval()


def gpt2ish(seed: int) -> DecoderLM:  # biases, MLP, learned positions, untied head
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=23, embed_dim=18, num_heads=3, num_layers=2, max_len=48,
                      tie_embeddings=False, embed_std=1.0)
    return DecoderLM(cfg).eval()


def pre_quantized(lm: DecoderLM) -> DecoderLM:
    """``lm`` with every projection's weight replaced by its own int8 rounding (untied)."""
    lm = copy.deepcopy(lm)
    with torch.no_grad():
        for module in lm.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight = torch.nn.Parameter(quantize_rows(module.weight).dequantized())
    return lm


def forced_logits(lm: DecoderLM, ids: torch.Tensor, feed: torch.Tensor, **kw) -> torch.Tensor:
    """The step's logits for each token of ``feed`` ``(B, F)`` after the prompt ``ids``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback from a failed compile
        step = LeanDecoder(lm, ids.shape[1] + feed.shape[1], **kw)
        with torch.no_grad():
            step(ids)
            return torch.cat([step(feed[:, t:t + 1]) for t in range(feed.shape[1])], dim=1)


@pytest.mark.parametrize("make", [llama, gpt2ish])
@pytest.mark.parametrize("compile", [False, True])
def test_int8_of_int8_representable_weights_is_the_float_step(make, compile) -> None:
    lm = pre_quantized(make(3))
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(0, lm.config.vocab_size, (2, 5), generator=g)
    feed = torch.randint(0, lm.config.vocab_size, (2, 9), generator=g)
    want = forced_logits(lm, ids, feed, compile=compile)
    got = forced_logits(lm, ids, feed, compile=compile, quantize="int8")
    assert rel(got, want) <= 1e-5
    greedy = lm.generate(ids, 20, temperature=0, compile=compile, quantize="int8")
    assert torch.equal(greedy, lm.generate(ids, 20, temperature=0))


@pytest.mark.parametrize("compile", [False, True])
def test_int8_of_random_weights_is_close_but_not_equal(compile) -> None:
    lm = llama(5)
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(0, 41, (1, 4), generator=g)
    feed = torch.randint(0, 41, (1, 7), generator=g)
    want = forced_logits(lm, ids, feed, compile=compile)
    got = forced_logits(lm, ids, feed, compile=compile, quantize="int8")
    assert 1e-5 < rel(got, want) < 5e-2  # the int8 weights are used, and they are close


def test_float64_models_quantize_too() -> None:
    lm = pre_quantized(llama(7, torch.float64))
    ids = torch.randint(0, 41, (1, 3), generator=torch.Generator().manual_seed(8))
    feed = torch.randint(0, 41, (1, 4), generator=torch.Generator().manual_seed(9))
    got = forced_logits(lm, ids, feed, quantize="int8")
    assert got.dtype == torch.float64
    assert rel(got, forced_logits(lm, ids, feed)) <= 1e-10


def test_a_changed_weight_is_quantized_again() -> None:
    lm = llama(10)
    ids = torch.randint(0, 41, (1, 4), generator=torch.Generator().manual_seed(11))
    lm.generate(ids, 6, temperature=0, quantize="int8")  # fills the cache
    with torch.no_grad():
        for p in lm.parameters():
            p.mul_(-1.5)
    fresh = copy.deepcopy(lm)  # new tensors: nothing cached for them
    assert torch.equal(lm.generate(ids, 12, temperature=0, quantize="int8"),
                       fresh.generate(ids, 12, temperature=0, quantize="int8"))


def test_bad_quantize_arguments_are_refused_before_any_work() -> None:
    lm = llama(12)
    ids = torch.randint(0, 41, (1, 3))
    with pytest.raises(ValueError, match=r"quantize must be one of \['int8'\], got 'int4'"):
        lm.generate(ids, 2, quantize="int4")
    with pytest.raises(ValueError, match=r"quantize must be one of \['int8'\], got 8"):
        lm.stream(ids, 2, quantize=8)
    with pytest.raises(ValueError, match="quantize='int8' .*use_cache=False"):
        lm.generate(ids, 2, quantize="int8", use_cache=False)
    torch.manual_seed(0)
    additive = DecoderLM(ModelConfig(vocab_size=11, embed_dim=8, num_heads=1, num_layers=1,
                                     max_len=16, attention="additive")).eval()
    with pytest.raises(ValueError, match="quantize='int8' needs the lean decode step"):
        additive.generate(torch.tensor([[1, 2]]), 2, quantize="int8")
