"""Parity checks of ``from_hf`` conversions against ``transformers`` (shared by the interop tests).

Every check runs the Hugging Face model and the attnlab model on the same ids
and compares what both return, on the real (unpadded) positions only.
"""

import torch
from torch import Tensor, nn

import attnlab as al
from interop_helpers import rel_error


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Norm gains and biases start at 1 and 0: draw them so that loading them matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name.lower() or name.endswith("bias"):
                noise = torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.3
                p.add_(noise.to(p.dtype))
    return model


def ids_and_masks(vocab: int, seed: int = 1, B: int = 3, L: int = 11, low: int = 3
                  ) -> tuple[Tensor, dict[str, Tensor | None]]:
    """``(B, L)`` ids in ``[low, vocab)`` and masks: none, right-padded and left-padded rows."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, vocab, (B, L), generator=g)
    right = torch.ones(B, L, dtype=torch.long)
    right[1, 6:] = 0
    right[2, 9:] = 0
    left = torch.ones(B, L, dtype=torch.long)
    left[1, :5] = 0
    left[2, :2] = 0
    return ids, {"none": None, "right": right, "left": left}


def hf_output(hf: nn.Module, ids: Tensor, mask: Tensor | None, **kw: object) -> Tensor:
    """Logits, or the last hidden states of a base model."""
    out = hf(ids, attention_mask=mask, **kw)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def max_errors(hf: nn.Module, ours: nn.Module, ids: Tensor, masks: dict[str, Tensor | None],
               **decoder: Tensor) -> dict[str, float]:
    """Relative error of ours vs HF per mask kind, on real positions."""
    errors = {}
    with torch.no_grad():
        for kind, mask in masks.items():
            ref = hf_output(hf, ids, mask, **decoder)
            got = ours(ids, mask, *decoder.values()) if not decoder else \
                ours(ids, decoder_input_ids=decoder["decoder_input_ids"], attention_mask=mask)
            assert got.shape == ref.shape, (got.shape, ref.shape)
            real = torch.ones(got.shape[:2], dtype=torch.bool) if mask is None or decoder \
                else mask.bool()  # seq2seq: every target position is real
            errors[kind] = rel_error(got[real], ref[real])
    return errors


def greedy_equal(hf: nn.Module, ours: nn.Module, ids: Tensor, n: int = 8) -> Tensor:
    """HF's greedy tokens; asserts ours (cached and uncached) are identical and not trivial."""
    ref = hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                      max_new_tokens=n, min_new_tokens=n)
    new = ref[:, -n:]
    assert len(set(new.flatten().tolist())) > 2, new  # a test that could tell tokens apart
    assert torch.equal(ours.generate(ids, n, temperature=0.0), ref)
    assert torch.equal(ours.generate(ids, n, temperature=0.0, use_cache=False), ref)
    return ref


def attention_maps_equal(hf: nn.Module, ours: nn.Module, ids: Tensor, mask: Tensor | None,
                         names: list[str], tol: float = 1e-5, **decoder: Tensor) -> int:
    """``capture_attention`` maps equal HF's eager ``output_attentions`` per layer and head.

    ``names`` pairs with HF's attention tuples in order: for seq2seq, encoder
    layers, then decoder self-attention, then cross-attention. Only rows of real
    queries count. Returns the number of maps compared.
    """
    hf.set_attn_implementation("eager")
    with torch.no_grad():
        out = hf(ids, attention_mask=mask, output_attentions=True, **decoder)
        with al.capture_attention(ours) as maps:
            if decoder:
                ours(ids, decoder_input_ids=decoder["decoder_input_ids"], attention_mask=mask)
            else:
                ours(ids, mask)
    if decoder:
        ref_maps = [*out.encoder_attentions, *out.decoder_attentions, *out.cross_attentions]
    else:
        ref_maps = list(out.attentions)
    assert len(ref_maps) == len(names) == len(maps), (len(ref_maps), names, list(maps))
    for name, ref in zip(names, ref_maps, strict=True):
        got = maps[name]
        assert got.shape == ref.shape, (name, got.shape, ref.shape)
        rows = torch.ones(ref.shape[0], ref.shape[2], dtype=torch.bool)
        if mask is not None and ref.shape[2] == mask.shape[1]:
            rows = mask.bool()
        err = (got - ref).abs().permute(0, 2, 1, 3)[rows].max().item()
        assert err <= tol, (name, err)
    return len(names)


def float64_throughout(hf: nn.Module) -> nn.Module:
    """Run the steps Hugging Face keeps in float32 inside a float64 model in float64 too.

    Its rotary angles, RMSNorm mean squares (Llama, Gemma, T5 kin) and Gemma's
    embedding scale are float32 even in a float64 model, which limits a float64
    comparison to ~1e-7. Patched here (on this instance only) to show that
    attnlab's float64 result is exact to rounding.
    """
    for module in hf.modules():
        kind = type(module).__name__
        if kind.endswith("RotaryEmbedding"):
            module.forward = _rotary64(module)
        elif kind.endswith(("RMSNorm", "T5LayerNorm")):
            module.forward = _rmsnorm64(module, offset=kind.startswith("Gemma"))
        elif hasattr(module, "scalar_embed_scale"):
            module.embed_scale = torch.tensor(module.scalar_embed_scale, dtype=torch.float64)
    return hf


def _rotary64(module: nn.Module):  # noqa: ANN202
    params = module.config.rope_parameters
    dim = module.inv_freq.shape[0] * 2

    def forward(x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        inv_freq = 1.0 / params["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64)
                                                  / dim)
        angles = position_ids[..., None].double() * inv_freq  # (B, L, D/2)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)

    return forward


def _rmsnorm64(module: nn.Module, offset: bool):  # noqa: ANN202
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))

    def forward(x: Tensor) -> Tensor:
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y * (1.0 + module.weight) if offset else module.weight * y

    return forward
