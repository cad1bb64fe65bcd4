"""``explain(model, inputs, layer=..., head=...)``: one head's computation, every number of it.

The model runs once, as it always does, while hooks record what the chosen
attention module was called with and what it returned (and, inside a
Transformer layer, the residual stream around it). The steps are then recomputed
in float64 from the module's own weights, and the recomposed output is compared
with the module's real output: if they differ beyond rounding, ``explain`` raises
instead of showing numbers that are not the model's.

Example:
    >>> import torch, attnlab as al
    >>> mha = al.MultiHeadAttention(8, 2, causal=True).double()
    >>> ex = al.explain(mha, torch.randn(1, 3, 8, dtype=torch.float64), layer=0, head=1)
    >>> ex.names[:4]
    ['input', 'q', 'k', 'v']
    >>> ex["weights"].shape, ex.error < 1e-12
    (torch.Size([3, 3]), True)
"""

import copy
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._validate import check_int
from ..attention import MultiHeadAttention
from ..blocks.layers import TransformerLayer
from ..visualize.capture import attention_modules
from ..visualize.inputs import display_name
from .compute import F64, Call, recompute
from .steps import Explanation, Step

#: Largest relative difference accepted between the recomposition and the model, by dtype.
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}
LOOSE = 3e-2  # half precision


def explain(model: nn.Module, inputs: Any, *, layer: int | str = 0, head: int = 0,
            batch: int = 0) -> Explanation:
    """Explain one head of one attention module of ``model`` on ``inputs``.

    Args:
        model: Any module holding attnlab attention modules (a bare mechanism,
            a model from ``attnlab.models``, a loaded run, ``from_hf`` output...).
        inputs: What ``model`` is called with: a tensor (``model(inputs)``), a tuple
            or list (``model(*inputs)``) or a dict (``model(**inputs)``).
        layer: The attention module: its index among ``model``'s attention modules
            (``named_modules()`` order; negative counts from the end) or its name.
        head: The query head to explain.
        batch: The batch item to explain.

    Returns:
        The :class:`Explanation`; its last step (``"output"``, or ``"residual"``
        inside a Transformer layer) is the model's own number, checked.

    Raises:
        ValueError: If the model has no attention module, ``layer``, ``head`` or
            ``batch`` is out of range (the message gives the valid range), or the
            module did not run on ``inputs``.
        TypeError: If ``model`` is not a module.
        RuntimeError: If the recomposition differs from the model's output (a bug).
    """
    index, name, module = _chosen(model, layer, head, batch)
    parent = _parent_layer(model, module)
    seen = _run_recorded(model, module, parent, inputs)
    if "args" not in seen:
        raise ValueError(f"attention module {_label(name)} did not run on these inputs")
    call = _resolve(module, seen["args"], seen["kwargs"])
    B = call.query.shape[0]
    if batch >= B:
        raise ValueError(f"batch {batch} is out of range: the input has {B} item(s) "
                         f"(valid: 0..{B - 1})")
    with torch.no_grad():
        done = recompute(module, call, batch, head)
        real = seen["output"][batch].detach().to("cpu", F64)
        dtype = seen["output"].dtype
        errors = [_relative(done.output, real)]
        steps = list(done.steps)
        if parent is not None and "residual" in seen:
            steps, error = _residual(steps, parent, module, call, seen, batch, done.output)
            errors.append(error)
    error = max(errors)
    if error > TOLERANCE.get(dtype, LOOSE):
        raise RuntimeError(f"the explained steps of {_label(name)} differ from the model's "
                           f"own output (relative {error:.2e}): please report this bug")
    return Explanation(
        module=name, kind=done.kind, layer=index, head=head, kv_head=done.kv_head,
        num_heads=done.num_heads, num_kv_heads=done.num_kv_heads, batch=batch, steps=steps,
        output=real, error=error, causal=bool(getattr(module, "causal", False)),
        window=getattr(module, "window", None),
    )


def _chosen(model: nn.Module, layer: int | str, head: int,
            batch: int) -> tuple[int, str, nn.Module]:
    """``(index, name, module)`` of the attention module asked for, arguments checked."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    modules = attention_modules(model)
    if not modules:
        raise ValueError(f"model ({type(model).__name__}) has no attention module to explain")
    names = list(modules)
    index = _layer_index(layer, names)
    name, module = names[index], modules[names[index]]
    heads = module.num_heads if isinstance(module, MultiHeadAttention) else 1
    check_int("head", head)
    if not 0 <= head < heads:
        raise ValueError(f"head {head} is out of range for {_label(name)}: valid heads are "
                         f"0..{heads - 1}")
    check_int("batch", batch, minimum=0)
    return index, name, module


def _run_recorded(model: nn.Module, module: nn.Module,
                  parent: tuple[TransformerLayer, str] | None, inputs: Any) -> dict[str, Any]:
    """Run ``model`` on ``inputs`` in eval mode, recording ``module``'s call (and its layer's)."""
    seen: dict[str, Any] = {}
    handles = _hooks(module, parent, seen)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            _call(model, inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return seen


def _label(name: str) -> str:
    return repr(name) if name else "the model itself"


def _layer_index(layer: object, names: list[str]) -> int:
    if isinstance(layer, str):
        shown = [name for name in names if display_name(name) == layer]
        if layer not in names and len(shown) == 1:  # the label the views show
            return names.index(shown[0])
        if layer not in names:
            raise ValueError(f"layer {layer!r} is not an attention module of the model; "
                             f"names: {', '.join(names)}")
        return names.index(layer)
    check_int("layer", layer)
    assert isinstance(layer, int)
    if not -len(names) <= layer < len(names):
        raise ValueError(f"layer {layer} is out of range: the model has {len(names)} attention "
                         f"module(s), valid layers are 0..{len(names) - 1}")
    return layer % len(names)


def _call(model: nn.Module, inputs: Any) -> None:
    if isinstance(inputs, Mapping):
        model(**inputs)
    elif isinstance(inputs, Sequence) and not isinstance(inputs, str):
        model(*inputs)
    else:
        model(inputs)


def _parent_layer(model: nn.Module, module: nn.Module) -> tuple[TransformerLayer, str] | None:
    """The Transformer layer holding ``module`` and which sub-block it is (self or cross)."""
    for sub in model.modules():
        if not isinstance(sub, TransformerLayer):
            continue
        for role in ("self_attn", "cross_attn"):
            attn = getattr(sub, role)
            if attn is module or getattr(attn, "inner", None) is module:
                return sub, role
    return None


def _hooks(module: nn.Module, parent: tuple[TransformerLayer, str] | None,
           seen: dict[str, Any]) -> list[Any]:
    """Record the first call of ``module`` and the residual stream around it."""

    def before(_m: nn.Module, args: tuple, kwargs: dict) -> None:
        if "args" not in seen:
            seen["args"], seen["kwargs"] = args, kwargs

    def after(_m: nn.Module, _args: tuple, _kwargs: dict, output: Tensor) -> None:
        if "output" not in seen:
            seen["output"] = output

    handles = [module.register_forward_pre_hook(before, with_kwargs=True),
               module.register_forward_hook(after, with_kwargs=True)]
    if parent is None:
        return handles
    layer, role = parent
    norm = layer.self_norm if role == "self_attn" else layer.cross_norm

    def keep(key: str, value: Tensor) -> None:
        if "output" in seen and key not in seen:
            seen[key] = value

    if layer.prenorm:
        after_norm = layer.cross_norm if role == "self_attn" and layer.cross_norm is not None \
            else layer.ffn_norm
        def stream(_m: nn.Module, args: tuple) -> None:
            seen.setdefault("stream", args[0])

        handles.append(norm.register_forward_pre_hook(stream))
        handles.append(after_norm.register_forward_pre_hook(
            lambda _m, args: keep("residual", args[0])))
    else:
        handles.append(norm.register_forward_hook(
            lambda _m, _args, output: keep("residual", output)))
    return handles


def _resolve(module: nn.Module, args: tuple, kwargs: dict) -> Call:
    """The call's query, key, value and mask, whatever the module names them."""
    bound = inspect.signature(module.forward).bind(*args, **kwargs)
    given = dict(bound.arguments)
    cache = given.get("cache")
    if cache is not None and len(cache) > 0:
        raise ValueError("explain runs the model without a KV cache; the module was called "
                         "with a non-empty cache")
    query = given.get("query", given.get("x"))
    key = given.get("key", given.get("context"))
    value = given.get("value", given.get("context"))
    is_self = key is None
    key = query if key is None else key
    value = key if value is None else value
    return Call(query, key, value, given.get("mask"), is_self)


def _residual(steps: list[Step], parent: tuple[TransformerLayer, str], module: nn.Module,
              call: Call, seen: dict[str, Any], b: int, out: Tensor) -> tuple[list[Step], float]:
    """Add the layer's input (pre-norm) and the residual sum, checked against the model."""
    layer, role = parent
    norm = layer.self_norm if role == "self_attn" else layer.cross_norm
    real = seen["residual"][b].detach().to("cpu", F64)
    if layer.prenorm:
        stream = seen["stream"][b].detach().to("cpu", F64)
        residual = stream + out
        first = Step("layer_input", "Input to the layer (the residual stream)", "x",
                     "The layer's input, before its norm; the norm rescales each row and "
                     "hands the result to the attention.", stream, ("L", "E"))
        steps = [first, *steps]
        formula, text = "x + Y", "The attention's output is added to the layer's input " \
            "(a residual connection): the layer only has to learn a change."
    else:
        stream = call.query[b].detach().to("cpu", F64)
        norm64 = copy.deepcopy(norm).to("cpu", F64)
        residual = norm64(stream + out)
        formula, text = "norm(x + Y)", "The output is added to the input (a residual " \
            "connection) and the sum is normalised (post-norm, as in BERT)."
    steps.append(Step("residual", "Residual", formula, text, residual, ("L", "E")))
    return steps, _relative(residual, real)


def _relative(mine: Tensor, real: Tensor) -> float:
    scale = real.abs().max().item()
    return (mine - real).abs().max().item() / max(scale, 1e-300)

