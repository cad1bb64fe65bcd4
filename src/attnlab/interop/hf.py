"""``from_hf``: the attnlab model equal to a Hugging Face ``transformers`` model.

Dispatch is by class (the model's class or a base class of it, from the
``transformers`` package); each architecture lives in its own module with its
config translation and key table. ``transformers`` itself is never imported
here: the function reads the model it is given.

Supported:

* ``GPT2LMHeadModel`` -> :class:`~attnlab.models.decoder.DecoderLM` (:mod:`.hf_gpt2`)
* ``BertModel`` -> :class:`~attnlab.models.encoder.TransformerEncoder` (:mod:`.hf_bert`)
* ``LlamaForCausalLM`` -> :class:`~attnlab.models.decoder.DecoderLM` (:mod:`.hf_llama`)
"""

import importlib
from collections.abc import Collection, Mapping
from typing import Any

from torch import Tensor, nn

from ..config import ModelConfig
from ..models.decoder import DecoderLM
from ..models.encoder import TransformerEncoder
from .state_dict import Mapper, Table, copy_weights

# class name -> "module:function" (imported on first use)
CONVERTERS = {
    "GPT2LMHeadModel": "hf_gpt2:from_gpt2",
    "BertModel": "hf_bert:from_bert",
    "LlamaForCausalLM": "hf_llama:from_llama",
}

# Hugging Face activation names -> attnlab MLP activations (same function)
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


def from_hf(model: nn.Module) -> DecoderLM | TransformerEncoder:
    """Build the attnlab model that computes what a Hugging Face model computes.

    The result has the source's weights (copied), dtype, device and train/eval
    mode. LMs return logits from ``forward(input_ids, attention_mask=None)`` and
    have ``generate``; ``BertModel`` becomes an encoder returning the last
    hidden states (and taking ``token_type_ids=``).

    Args:
        model: A ``GPT2LMHeadModel``, ``BertModel`` or ``LlamaForCausalLM``
            (or a subclass).

    Returns:
        A :class:`~attnlab.models.decoder.DecoderLM` or
        :class:`~attnlab.models.encoder.TransformerEncoder`.

    Raises:
        TypeError: If the model's class is not supported (the message lists
            the supported ones).
        ValueError: If its configuration uses an option attnlab cannot
            reproduce exactly (named with its value).
    """
    for cls in type(model).__mro__:
        target = CONVERTERS.get(cls.__name__)
        if target is not None and cls.__module__.startswith("transformers."):
            module_name, function = target.split(":")
            module = importlib.import_module(f"{__package__}.{module_name}")
            return getattr(module, function)(model)
    raise TypeError(
        f"from_hf supports {', '.join(sorted(CONVERTERS))} from transformers; "
        f"got {type(model).__module__}.{type(model).__name__}"
    )


def activation(name: object, field: str) -> str:
    """Translate a Hugging Face activation name into attnlab's name for the same function.

    Args:
        name: The Hugging Face name (``"gelu_new"``, ``"gelu"``, ...).
        field: The config key it came from, for the error message.

    Returns:
        An :data:`attnlab.blocks.feedforward.ACTIVATIONS` key.

    Raises:
        ValueError: If the activation has no exact attnlab counterpart.
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{field}={name!r} is not supported; choose from {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def reject(config: Mapping[str, Any], **unsupported: object) -> None:
    """Raise if any ``config[key]`` differs from the value attnlab supports.

    Args:
        config: The Hugging Face config as a dict; absent keys pass.
        **unsupported: ``key=supported value`` pairs.

    Raises:
        ValueError: Naming every offending key, its value and the supported value.
    """
    bad = [f"{key}={config[key]!r} (supported: {ok!r})" for key, ok in unsupported.items()
           if key in config and config[key] != ok]
    if bad:
        raise ValueError("unsupported configuration: " + ", ".join(bad))


def one_dropout(config: Mapping[str, Any], *keys: str) -> float:
    """The single dropout rate attnlab uses, from HF's separate ones (which must agree).

    Args:
        config: The Hugging Face config as a dict.
        *keys: The dropout-rate keys (absent or None count as 0).

    Returns:
        The common rate.

    Raises:
        ValueError: If the rates differ (set them equal on the HF config first).
    """
    rates = {key: float(config.get(key) or 0.0) for key in keys}
    if len(set(rates.values())) > 1:
        raise ValueError(f"attnlab models have one dropout rate; got {rates}. Set them equal "
                         "in the source model first (they only matter in training)")
    return next(iter(rates.values()))


def build(cls: type[nn.Module], config: ModelConfig, like: nn.Module,
          source: Mapping[str, Tensor], table: Table | Mapper, *,
          transpose: Collection[str] = (), ignore_source: Collection[str] = ()) -> nn.Module:
    """Make ``cls(config)`` with ``like``'s dtype, device and mode, and copy ``source`` in.

    Args:
        cls: The attnlab model class (``DecoderLM``, ``TransformerEncoder``).
        config: Its configuration.
        like: The source model, whose dtype, device and train/eval mode are copied.
        source: The source's ``state_dict()`` (fused tensors already split).
        table: The key table (see :func:`~attnlab.interop.state_dict.copy_weights`).
        transpose: Source keys stored transposed.
        ignore_source: Patterns of source keys that may stay unused.

    Returns:
        The loaded model.

    Raises:
        ValueError: From :func:`~attnlab.interop.state_dict.copy_weights`.
    """
    reference = next(like.parameters())
    model = cls(config).to(device=reference.device, dtype=reference.dtype)
    copy_weights(model, source, table, transpose=transpose, ignore_source=ignore_source)
    return model.train(like.training)


def as_dict(config: object) -> dict[str, Any]:
    """A Hugging Face config (or a plain mapping) as a dict.

    Args:
        config: A ``PretrainedConfig`` (anything with ``to_dict()``) or a mapping.

    Returns:
        A new dict.
    """
    if isinstance(config, Mapping):
        return dict(config)
    return config.to_dict()  # type: ignore[attr-defined]
