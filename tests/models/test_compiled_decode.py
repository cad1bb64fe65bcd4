"""The compiled decode step (models/compiled.py) against the eager lean step and the forward.

Each model compiles once (module-scoped models; the compiled step is kept per model and
cache size), so the whole file costs a few compiles of a 2-layer model.
"""

import copy
import warnings

import pytest
import torch
from torch._dynamo.utils import counters

import attnlab.models.lean as lean_module
from attnlab.config import ModelConfig
from attnlab.models.compiled import static_positions
from attnlab.models.decoder import DecoderLM
from attnlab.models.lean import LeanDecoder

KINDS = {
    "learned": ({}, torch.float32),
    "rotary-gqa-llama": ({"positions": "rotary", "num_kv_heads": 2, "norm": "rmsnorm",
                          "ffn": "swiglu", "bias": False, "tie_embeddings": False},
                         torch.float32),
    "rotary-gqa-llama-f64": ({"positions": "rotary", "num_kv_heads": 2, "norm": "rmsnorm",
                              "ffn": "swiglu", "bias": False}, torch.float64),
    "alibi": ({"positions": "alibi"}, torch.float32),
    "mqa-window-partial-parallel": ({"attention": "mqa", "window": 3, "positions": "rotary",
                                     "rotary_dim": 2, "residual": "parallel"}, torch.float32),
    "postnorm-qkv-bias-sinusoidal": ({"prenorm": False, "attention": "qkv_bias",
                                      "positions": "sinusoidal"}, torch.float64),
}
MAX_LEN = 64


def tiny(seed: int, dtype: torch.dtype, **kw) -> DecoderLM:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=37, embed_dim=24, num_heads=4, num_layers=2, max_len=MAX_LEN,
                      embed_std=1.0, **kw)
    return DecoderLM(cfg).to(dtype).eval()


@pytest.fixture(scope="module")
def models() -> dict[str, DecoderLM]:
    return {kind: tiny(i, dtype, **kw) for i, (kind, (kw, dtype)) in enumerate(KINDS.items())}


def graphs() -> int:
    return counters["stats"]["unique_graphs"]


def compiled(lm: DecoderLM, ids: torch.Tensor, new: int, **kw) -> torch.Tensor:
    """``generate(..., compile=True)``, failing on the fallback's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return lm.generate(ids, new, temperature=0, compile=True, **kw)


@pytest.mark.parametrize("kind", list(KINDS))
def test_greedy_tokens_equal_the_eager_and_uncached_paths(models, kind: str) -> None:
    lm = models[kind]
    ids = torch.randint(0, 37, (3, 5), generator=torch.Generator().manual_seed(1))
    new = MAX_LEN - 5  # prompt + new tokens == the context: the buffer's last position is used
    got = compiled(lm, ids, new)
    assert torch.equal(got, lm.generate(ids, new, temperature=0))
    assert torch.equal(got, lm.generate(ids, new, temperature=0, use_cache=False))

    def sample(**kw) -> torch.Tensor:  # the same draws iff the same probabilities
        g = torch.Generator().manual_seed(3)
        return lm.generate(ids, new, temperature=4.0, generator=g, **kw)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sampled = sample(compile=True)
    assert torch.equal(sampled, sample(use_cache=False))
    assert sampled[:, 5:].unique().numel() > 8  # varied tokens: a test that can fail
    before = graphs()
    other = torch.randint(0, 37, (3, 9), generator=torch.Generator().manual_seed(2))
    again = compiled(lm, other, new - 4)  # same batch and cache size: no new compile
    assert graphs() == before
    assert torch.equal(again, lm.generate(other, new - 4, temperature=0, use_cache=False))


@pytest.mark.parametrize("kind", ["rotary-gqa-llama", "rotary-gqa-llama-f64", "alibi",
                                  "postnorm-qkv-bias-sinusoidal"])
def test_step_logits_match_the_float64_forward(models, kind: str) -> None:
    lm = models[kind]
    dtype = lm.lm_head.weight.dtype
    reference = copy.deepcopy(lm).double()
    ids = torch.randint(0, 37, (3, 5), generator=torch.Generator().manual_seed(3))
    steps = torch.randint(0, 37, (3, 6), generator=torch.Generator().manual_seed(4))
    lean = LeanDecoder(lm, MAX_LEN, compile=True)
    with torch.no_grad():
        lean(ids)  # the prefill
        assert lean.compiled is not None
        for t in range(steps.shape[1]):
            got = lean(steps[:, t : t + 1])[:, -1]  # (B, V)
            want = reference(torch.cat([ids, steps[:, : t + 1]], dim=1))[:, -1]
            err = (got.double() - want).abs().max() / want.abs().max()
            assert err <= (1e-6 if dtype == torch.float64 else 1e-5), (t, float(err))


def test_one_compile_serves_every_cache_size() -> None:
    kw, _ = KINDS["mqa-window-partial-parallel"]
    torch.manual_seed(16)
    lm = DecoderLM(ModelConfig(vocab_size=37, embed_dim=24, num_heads=4, num_layers=2,
                               max_len=300, embed_std=1.0, **kw)).eval()
    ids = torch.randint(0, 37, (2, 5), generator=torch.Generator().manual_seed(10))
    before = graphs()
    for new in (10, 100, 295, 40):  # caches of 64, 128, 300 and 64 positions
        got = compiled(lm, ids, new)
        assert torch.equal(got, lm.generate(ids, new, temperature=0, use_cache=False))
    assert graphs() == before + 1


def test_eos_stops_rows_and_the_loop(models) -> None:
    lm = models["learned"]
    ids = torch.randint(0, 37, (3, 4), generator=torch.Generator().manual_seed(5))
    free = lm.generate(ids, 16, temperature=0, use_cache=False)
    eos = int(free[0, 6])
    got = compiled(lm, ids, 16, eos_id=eos)
    assert torch.equal(got, lm.generate(ids, 16, temperature=0, eos_id=eos, use_cache=False))
    assert got.shape[1] <= 4 + 16


def test_batch_one_and_a_one_token_prompt(models) -> None:
    lm = models["rotary-gqa-llama"]
    ids = torch.tensor([[7]])
    assert torch.equal(compiled(lm, ids, 20), lm.generate(ids, 20, temperature=0,
                                                          use_cache=False))


def test_stream_with_compile_yields_what_generate_returns(models) -> None:
    lm = models["alibi"]
    ids = torch.randint(0, 37, (3, 5), generator=torch.Generator().manual_seed(6))
    tokens = torch.stack(list(lm.stream(ids, 12, temperature=0, compile=True)), dim=1)
    assert torch.equal(tokens, lm.generate(ids, 12, temperature=0, use_cache=False)[:, 5:])


def test_changed_weights_are_used_without_a_recompile() -> None:
    kw, _ = KINDS["rotary-gqa-llama"]
    lm = tiny(11, torch.float32, **kw)
    ids = torch.randint(0, 37, (2, 5), generator=torch.Generator().manual_seed(7))
    before = compiled(lm, ids, 12)
    graphs_before = graphs()
    lm.load_state_dict(tiny(12, torch.float32, **kw).state_dict())  # copies in place
    loaded = compiled(lm, ids, 12)
    assert torch.equal(loaded, lm.generate(ids, 12, temperature=0, use_cache=False))
    assert not torch.equal(loaded, before)
    lm.train()
    opt = torch.optim.SGD(lm.parameters(), lr=20.0)
    torch.nn.functional.cross_entropy(lm(ids)[:, -1], loaded[:, 5] * 0 + 3).backward()
    opt.step()
    lm.eval()
    trained = compiled(lm, ids, 12)
    assert torch.equal(trained, lm.generate(ids, 12, temperature=0, use_cache=False))
    assert not torch.equal(trained, loaded)
    assert graphs() == graphs_before


def test_a_failing_compile_warns_once_and_decodes_eagerly(monkeypatch) -> None:
    import attnlab.models.compiled as compiled_module

    def broken(lm, key):  # noqa: ANN001, ANN202
        def step(*args):  # noqa: ANN002, ANN202
            raise RuntimeError("no C++ compiler")
        return step

    monkeypatch.setattr(compiled_module, "compiled_step", broken)
    monkeypatch.setattr(compiled_module, "_WARNED", [])
    lm = tiny(13, torch.float32)
    ids = torch.randint(0, 37, (2, 5), generator=torch.Generator().manual_seed(8))
    with pytest.warns(RuntimeWarning, match=r"no C\+\+ compiler.*eager lean step"):
        got = lm.generate(ids, 10, temperature=0, compile=True)
    assert torch.equal(got, lm.generate(ids, 10, temperature=0, use_cache=False))
    monkeypatch.setattr(compiled_module, "compile_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="not available"):
        got = lm.generate(ids, 10, temperature=0, compile=True)
    assert torch.equal(got, lm.generate(ids, 10, temperature=0, use_cache=False))


def test_a_long_bias_table_keeps_the_eager_step(monkeypatch) -> None:
    monkeypatch.setattr(lean_module, "MAX_BIAS_TABLE", 10)
    import attnlab.models.compiled as compiled_module

    monkeypatch.setattr(compiled_module, "_WARNED", [])
    lm = tiny(14, torch.float32, positions="alibi")
    ids = torch.randint(0, 37, (1, 5), generator=torch.Generator().manual_seed(9))
    with pytest.warns(RuntimeWarning, match="score-bias table"):
        got = lm.generate(ids, 6, temperature=0, compile=True)
    assert torch.equal(got, lm.generate(ids, 6, temperature=0, use_cache=False))


def test_static_positions_round_up_to_a_power_of_two_within_the_context() -> None:
    assert [static_positions(n, 1000) for n in (1, 64, 65, 300, 513, 999, 1000)] == \
        [64, 64, 128, 512, 1000, 1000, 1000]
    assert static_positions(10, 32) == 32


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_compile_must_be_a_bool(value: object) -> None:
    lm = tiny(15, torch.float32)
    with pytest.raises(TypeError, match="compile"):
        lm.generate(torch.tensor([[1, 2]]), 3, compile=value)
    with pytest.raises(TypeError, match="compile"):
        lm.stream(torch.tensor([[1, 2]]), 3, compile=value)


def test_decode_threads_takes_the_cores_the_load_leaves_free(monkeypatch) -> None:
    import os

    from attnlab.models.generation import decode_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    for load, want in ((0.2, 4), (1.3, 3), (2.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert decode_threads("auto") == (want, f"auto: 4 cores, load average {load:.1f}")
    assert decode_threads(3) == (3, "as asked")
    with pytest.raises(ValueError, match="threads"):
        decode_threads(0)
