"""Sentence embeddings from a sentence-transformers directory, without sentence-transformers.

A sentence-transformers model directory (e.g. all-MiniLM-L6-v2) is a pipeline
listed in ``modules.json``:

1. ``Transformer``: a BERT encoder (``config.json``, ``model.safetensors``),
   its tokenizer (``tokenizer.json``) and ``sentence_bert_config.json``
   (``max_seq_length``: longer inputs are truncated);
2. ``Pooling`` (``1_Pooling/config.json``): token states -> one vector, by the
   [CLS] token, the max, the mean, and/or the mean scaled by sqrt(length),
   concatenated in the order listed (Reimers & Gurevych 2019);
3. optionally ``Normalize``: unit L2 norm.

Everything is read with ``json``, ``safetensors`` and ``tokenizers``; weights
are never unpickled, so a directory with only ``pytorch_model.bin`` is refused.

Shape letters: N sentences, B batch, L tokens, E width.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import Tensor, nn

from ..models.encoder import TransformerEncoder
from .hf_bert import IGNORED, bert_config, bert_table
from .state_dict import copy_weights

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")
MODULE_TYPES = ("Transformer", "Pooling", "Normalize")
LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
}


class SentenceEncoder(nn.Module):
    """A BERT encoder, its tokenizer, a pooling and an optional normalisation.

    Args:
        encoder: The attnlab encoder with the checkpoint's weights.
        tokenizer: A ``tokenizers.Tokenizer`` (padding and truncation are set here).
        max_seq_length: Longest input in tokens, special tokens included.
        pooling: Pooling modes among :data:`POOLING_MODES`, concatenated in this order.
        normalize: Scale every embedding to unit L2 norm.
        lowercase: Lowercase texts before tokenising (``do_lower_case``).
    """

    def __init__(self, encoder: TransformerEncoder, tokenizer: Tokenizer, *,
                 max_seq_length: int, pooling: tuple[str, ...], normalize: bool,
                 lowercase: bool = False) -> None:
        super().__init__()
        unknown = [mode for mode in pooling if mode not in POOLING_MODES]
        if unknown or not pooling:
            raise ValueError(f"pooling must be a non-empty subset of {POOLING_MODES}, "
                             f"got {pooling}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.normalize = normalize
        self.lowercase = lowercase
        tokenizer.enable_truncation(max_length=max_seq_length)
        pad = tokenizer.padding or {}
        tokenizer.enable_padding(pad_id=pad.get("pad_id", 0),
                                 pad_token=pad.get("pad_token", "[PAD]"))

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Tensor | None = None) -> Tensor:
        """Pooled (and maybe normalised) embeddings of a tokenised batch.

        Args:
            input_ids: ``(B, L)`` token ids.
            attention_mask: ``(B, L)`` 1 = real token, 0 = padding.
            token_type_ids: ``(B, L)`` segment ids (default all 0).

        Returns:
            ``(B, len(pooling) * E)`` embeddings.
        """
        hidden = self.encoder(input_ids, attention_mask, token_type_ids=token_type_ids)  # (B, L, E)
        real = attention_mask[..., None].to(hidden.dtype)  # (B, L, 1)
        count = real.sum(dim=1).clamp(min=1e-9)  # (B, 1)
        parts = []
        for mode in self.pooling:
            if mode == "cls":
                parts.append(hidden[:, 0])  # (B, E)
            elif mode == "max":
                floor = torch.finfo(hidden.dtype).min
                parts.append(hidden.masked_fill(real == 0, floor).amax(dim=1))  # (B, E)
            else:
                total = (hidden * real).sum(dim=1)  # (B, E)
                scale = count if mode == "mean" else count.sqrt()
                parts.append(total / scale)
        out = torch.cat(parts, dim=-1)  # (B, P·E)
        return nn.functional.normalize(out, p=2, dim=-1) if self.normalize else out

    @torch.no_grad()
    def encode(self, sentences: Sequence[str], batch_size: int = 32) -> Tensor:
        """Embed sentences, ``batch_size`` at a time, in eval mode.

        Args:
            sentences: Texts (a list, not one str); each is truncated to
                ``max_seq_length`` tokens.
            batch_size: Sentences per forward pass.

        Returns:
            ``(N, D)`` float32 embeddings, in the order given.

        Raises:
            TypeError: If ``sentences`` is a single str or holds a non-str.
            ValueError: If ``batch_size`` < 1.
        """
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise TypeError("sentences must be a list of str, got "
                            + ("one str" if isinstance(sentences, str) else repr(sentences)[:80]))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        try:
            for start in range(0, len(sentences), batch_size):
                batch = list(sentences[start : start + batch_size])
                if self.lowercase:
                    batch = [s.lower() for s in batch]
                encodings = self.tokenizer.encode_batch(batch)
                ids, mask, types = (
                    torch.tensor([getattr(e, name) for e in encodings], device=device)
                    for name in ("ids", "attention_mask", "type_ids")
                )  # (B, L) each
                out.append(self(ids, mask, types).float())
        finally:
            self.train(was_training)
        if not out:
            return torch.zeros(0, self.embedding_dim)
        return torch.cat(out)  # (N, D)

    @property
    def embedding_dim(self) -> int:
        """Width D of the embeddings."""
        return len(self.pooling) * self.encoder.config.embed_dim


def load_sentence_encoder(path: str | Path) -> SentenceEncoder:
    """Load a sentence-transformers directory (Transformer [+ Pooling] [+ Normalize]).

    Args:
        path: The model directory (with ``modules.json``).

    Returns:
        A :class:`SentenceEncoder` in eval mode, float32, on the CPU.

    Raises:
        FileNotFoundError: If ``modules.json`` or a needed file is missing.
        ValueError: For a module type other than Transformer/Pooling/Normalize,
            a non-BERT transformer, weights only in pickle form
            (``pytorch_model.bin``), an unsupported pooling mode, or weights
            that do not fit the BERT table.
    """
    root = Path(path)
    modules = _read_json(root / "modules.json")
    kinds = {}
    for entry in modules:
        kind = entry["type"].rsplit(".", 1)[-1]
        if kind not in MODULE_TYPES:
            raise ValueError(f"module {entry['type']!r} in {root / 'modules.json'} is not "
                             f"supported; supported: {MODULE_TYPES}")
        kinds[kind] = root / entry.get("path", "")
    if "Transformer" not in kinds:
        raise ValueError(f"{root / 'modules.json'} lists no Transformer module")
    encoder, tokenizer, settings = _load_transformer(kinds["Transformer"])
    pooling = _pooling(kinds["Pooling"]) if "Pooling" in kinds else ("mean",)
    model = SentenceEncoder(encoder, tokenizer, max_seq_length=settings["max_seq_length"],
                            pooling=pooling, normalize="Normalize" in kinds,
                            lowercase=settings["lowercase"])
    return model.eval()


def _load_transformer(folder: Path) -> tuple[TransformerEncoder, Tokenizer, dict[str, Any]]:
    config = bert_config(_read_json(folder / "config.json"))
    weights = folder / "model.safetensors"
    if not weights.exists():
        if (folder / "pytorch_model.bin").exists():
            raise ValueError(f"{folder} has only pytorch_model.bin; attnlab does not unpickle "
                             "weights: convert it to model.safetensors first")
        raise FileNotFoundError(f"no model.safetensors in {folder}")
    state = load_file(str(weights))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in state else ""
    encoder = TransformerEncoder(config)
    copy_weights(encoder, state, bert_table(prefix, token_types=config.type_vocab_size > 0),
                 ignore_source=[prefix + p for p in IGNORED])
    st_config = folder / "sentence_bert_config.json"
    st = _read_json(st_config) if st_config.exists() else {}
    max_seq_length = st.get("max_seq_length") or config.max_len
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    settings = {"max_seq_length": min(int(max_seq_length), config.max_len),
                "lowercase": bool(st.get("do_lower_case", False))}
    return encoder, tokenizer, settings


def _pooling(folder: Path) -> tuple[str, ...]:
    """Pooling modes from ``pooling_mode`` (str or list) or the legacy boolean keys."""
    config = _read_json(folder / "config.json")
    modes = config.get("pooling_mode")
    if modes is None:  # legacy: pooling_mode_cls_token: true, ... in this order
        modes = [LEGACY_POOLING.get(k, k) for k, on in config.items()
                 if k.startswith("pooling_mode_") and on]
        modes.sort(key=lambda m: list(LEGACY_POOLING.values()).index(m)
                   if m in LEGACY_POOLING.values() else len(LEGACY_POOLING))
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unsupported = [m for m in modes if m not in POOLING_MODES]
    if unsupported or not modes:
        raise ValueError(f"pooling {unsupported or 'none'} in {folder / 'config.json'} is not "
                         f"supported; supported: {POOLING_MODES}")
    return modes


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    return json.loads(path.read_text(encoding="utf-8"))

