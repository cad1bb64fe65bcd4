"""``from_hf``: the attnlab model equal to a Hugging Face ``transformers`` model.

Dispatch is by ``model.config.model_type`` through :data:`ARCHITECTURES`: each
family lives in its own module (``hf_<family>.py``) with its config
translation and key table, registered here with one :func:`register` line.
The model's class (its "head") decides what comes back: a language model
(``...ForCausalLM``, ``GPT2LMHeadModel``) gives logits and ``generate``, a base
model (``GPT2Model``, ``BertModel``...) gives the last hidden states, an
encoder–decoder (``T5ForConditionalGeneration``...) gives target logits and a
seq2seq ``generate``. ``transformers`` itself is never imported here: the
function reads the model it is given.
"""

import importlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from ..config import ModelConfig
from .state_dict import Mapper, Table, copy_weights

HEADS = ("lm", "base", "seq2seq")


@dataclass(frozen=True)
class Architecture:
    """One supported Hugging Face family.

    Attributes:
        model_type: ``config.model_type`` (``"llama"``, ``"t5"``...).
        target: ``"module:function"`` of the converter, imported on first use;
            it is called as ``function(model, head)``.
        heads: Supported class name -> head kind (``"lm"``, ``"base"``, ``"seq2seq"``).
        features: The attention ideas the family uses, in a few words.
    """

    model_type: str
    target: str
    heads: Mapping[str, str]
    features: str


ARCHITECTURES: dict[str, Architecture] = {}


def register(model_type: str, target: str, heads: Mapping[str, str], features: str) -> None:
    """Add a family: ``model_type`` -> converter ``target`` for the classes in ``heads``.

    Raises:
        ValueError: If ``model_type`` is already registered or a head kind is unknown.
    """
    if model_type in ARCHITECTURES:
        raise ValueError(f"Hugging Face model_type {model_type!r} is already registered")
    bad = {name: kind for name, kind in heads.items() if kind not in HEADS}
    if bad:
        raise ValueError(f"head kinds must be one of {HEADS}, got {bad}")
    ARCHITECTURES[model_type] = Architecture(model_type, target, dict(heads), features)


register("gpt2", "hf_gpt2:from_gpt2", {"GPT2LMHeadModel": "lm", "GPT2Model": "base"},
         "learned positions, fused q/k/v (Conv1D), GELU-tanh MLP, tied head")
register("llama", "hf_llama:from_llama", {"LlamaForCausalLM": "lm", "LlamaModel": "base"},
         "rotary, grouped-query heads, RMSNorm, SwiGLU")
register("mistral", "hf_mistral:from_mistral",
         {"MistralForCausalLM": "lm", "MistralModel": "base"},
         "sliding-window attention, rotary, grouped-query heads, RMSNorm, SwiGLU")
register("qwen2", "hf_qwen2:from_qwen2", {"Qwen2ForCausalLM": "lm", "Qwen2Model": "base"},
         "q/k/v biases (no output bias), rotary, grouped-query heads, SwiGLU")
register("gemma", "hf_gemma:from_gemma", {"GemmaForCausalLM": "lm", "GemmaModel": "base"},
         "embeddings scaled by sqrt(E), RMSNorm (1 + w), GeGLU, head_dim != E/H, MQA")
register("phi3", "hf_phi3:from_phi3", {"Phi3ForCausalLM": "lm", "Phi3Model": "base"},
         "fused q/k/v and gate/up projections, rotary, grouped-query heads, SwiGLU")
register("gpt_neox", "hf_neox:from_neox",
         {"GPTNeoXForCausalLM": "lm", "GPTNeoXModel": "base"},
         "partial rotary, parallel residual, per-head fused q/k/v, LayerNorm, GELU")
register("opt", "hf_opt:from_opt", {"OPTForCausalLM": "lm", "OPTModel": "base"},
         "learned positions (offset 2), ReLU MLP, pre- or post-norm")
register("bert", "hf_bert:from_bert", {"BertModel": "base"},
         "post-norm encoder, learned positions, token types, embedding LayerNorm")
register("roberta", "hf_roberta:from_roberta", {"RobertaModel": "base"},
         "BERT with positions counted after the padding id")
register("distilbert", "hf_distilbert:from_distilbert", {"DistilBertModel": "base"},
         "post-norm encoder, no token types, learned positions")
register("t5", "hf_t5:from_t5", {"T5ForConditionalGeneration": "seq2seq"},
         "bucketed relative position bias, unscaled scores, RMSNorm, encoder-decoder")
register("bart", "hf_bart:from_bart", {"BartForConditionalGeneration": "seq2seq"},
         "learned positions per side (offset 2), post-norm, embedding LayerNorm, "
         "encoder-decoder")
register("marian", "hf_marian:from_marian", {"MarianMTModel": "seq2seq"},
         "fixed sinusoidal positions per side, scaled embeddings, post-norm, encoder-decoder")


def supported_classes() -> list[str]:
    """Every class name :func:`from_hf` converts, sorted."""
    return sorted(name for arch in ARCHITECTURES.values() for name in arch.heads)


# Hugging Face activation names -> attnlab MLP activations (same function)
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


def from_hf(model: nn.Module) -> nn.Module:
    """Build the attnlab model that computes what a Hugging Face model computes.

    The result has the source's weights (copied), dtype, device and train/eval
    mode. Language models return logits from ``forward(input_ids,
    attention_mask=None)`` and have ``generate``; base models return the last
    hidden states (BERT-like encoders also take ``token_type_ids=``);
    encoder–decoders return target logits from ``forward(input_ids,
    decoder_input_ids, attention_mask=None)`` and ``generate`` target ids.

    Args:
        model: A supported ``transformers`` model (see :data:`ARCHITECTURES`, or
            ``attnlab models``), or a subclass of one.

    Returns:
        A :class:`~attnlab.models.decoder.DecoderLM`,
        :class:`~attnlab.models.decoder.DecoderModel`,
        :class:`~attnlab.models.encoder.TransformerEncoder` or
        :class:`~attnlab.models.seq2seq_lm.Seq2SeqLM`.

    Raises:
        TypeError: If the architecture or its head class is not supported (the
            message lists the supported ones and, when the model wraps a
            supported base model, says how to convert that).
        ValueError: If its configuration uses an option attnlab cannot
            reproduce exactly (named with its value).
    """
    found = _find(model)
    if found is None:
        raise TypeError(_unsupported(model))
    arch, head = found
    module_name, function = arch.target.split(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, function)(model, head)


def _find(model: object) -> tuple[Architecture, str] | None:
    """The family and head kind of ``model``, or None if unsupported."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    arch = ARCHITECTURES.get(model_type) if isinstance(model_type, str) else None
    if arch is None:
        return None
    for cls in type(model).__mro__:
        if cls.__module__.startswith("transformers.") and cls.__name__ in arch.heads:
            return arch, arch.heads[cls.__name__]
    return None


def _unsupported(model: object) -> str:
    cls = type(model)
    message = (f"from_hf supports {', '.join(supported_classes())} from transformers; "
               f"got {cls.__module__}.{cls.__name__}")
    prefix = getattr(model, "base_model_prefix", None)
    base = getattr(model, prefix, None) if isinstance(prefix, str) and prefix else None
    if isinstance(base, nn.Module) and base is not model and _find(base) is not None:
        message += (f"; it wraps a supported {type(base).__name__}: from_hf(model.{prefix}) "
                    f"converts that (its hidden states, without the {cls.__name__} head)")
    return message


def base_state(model: nn.Module, head: str, prefix: str) -> dict[str, Tensor]:
    """The model's ``state_dict`` keyed as in the LM class (``prefix`` added for a base model).

    Lets one key table serve ``GPT2Model`` and ``GPT2LMHeadModel`` alike.
    """
    state = model.state_dict()
    return {prefix + k: v for k, v in state.items()} if head == "base" else dict(state)


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


def build_loaded(cls: type[nn.Module], config: ModelConfig, like: nn.Module,
                 source: Mapping[str, Tensor], table: Table | Mapper, *,
                 transpose: Collection[str] = (), ignore_source: Collection[str] = (),
                 **kwargs: Any) -> nn.Module:
    """Make ``cls(config, **kwargs)`` with ``like``'s dtype, device and mode; copy ``source`` in.

    Args:
        cls: The attnlab model class (``DecoderLM``, ``TransformerEncoder``).
        config: Its configuration.
        like: The source model, whose dtype, device and train/eval mode are copied.
        source: The source's ``state_dict()`` (fused tensors already split).
        table: The key table (see :func:`~attnlab.interop.state_dict.copy_weights`).
        transpose: Source keys stored transposed.
        ignore_source: Patterns of source keys that may stay unused.
        **kwargs: More constructor arguments of ``cls``.

    Returns:
        The loaded model.

    Raises:
        ValueError: From :func:`~attnlab.interop.state_dict.copy_weights`.
    """
    reference = next(like.parameters())
    model = cls(config, **kwargs).to(device=reference.device, dtype=reference.dtype)
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


def build_decoder(model: nn.Module, head: str, config: ModelConfig, source: Mapping[str, Tensor],
                  table: Table, *, transpose: Collection[str] = (),
                  ignore_source: Collection[str] = ()) -> nn.Module:
    """A decoder family's result: ``DecoderLM`` for an LM head, ``DecoderModel`` for a base model.

    Args:
        model: The Hugging Face model (dtype, device and mode are copied from it).
        head: ``"lm"`` or ``"base"``.
        config: The translated configuration.
        source: The source tensors keyed as in the LM class (see :func:`base_state`).
        table: The LM's key table, without ``lm_head`` (added here when untied).
        transpose: Source keys stored transposed.
        ignore_source: Patterns of source keys that may stay unused.

    Returns:
        The loaded :class:`~attnlab.models.decoder.DecoderLM` or
        :class:`~attnlab.models.decoder.DecoderModel`.
    """
    from ..models.decoder import DecoderLM, DecoderModel

    ignored = list(ignore_source)
    if head == "base":
        return build_loaded(DecoderModel, config, model, source, table, transpose=transpose,
                            ignore_source=ignored)
    if config.tie_embeddings:
        ignored.append("lm_head.weight")
    else:
        table = [*table, ("lm_head.weight", "lm_head.weight")]
    return build_loaded(DecoderLM, config, model, source, table, transpose=transpose,
                        ignore_source=ignored)
