"""A decoder-only language model (GPT-, Llama-like) with generation, and its body alone.

Tokens are embedded, run through causal layers, normed, and projected back to
the vocabulary: ``logits[b, t]`` scores the token after ``input_ids[b, :t+1]``
(Radford et al. 2019; Touvron et al. 2023).

Shape letters: B batch, L new tokens, S all tokens (cached + new), E width, V vocabulary.
"""

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .._validate import check_bool, check_choice, check_float
from ..attention.cache import KVCache
from ..config import ModelConfig
from .embeddings import Embeddings
from .generation import check_generation_args, decode_stream
from .lean import LeanDecoder, lean_supported
from .quantized import QUANTIZATIONS
from .stack import LayerStack, check_caches, check_ids, init_weights, new_caches, self_mask


class DecoderLM(nn.Module):
    """Decoder-only Transformer language model.

    Args:
        config: A :class:`~attnlab.config.ModelConfig` (``arch="decoder"``).

    Example:
        >>> import torch
        >>> from attnlab.config import ModelConfig
        >>> lm = DecoderLM(ModelConfig(vocab_size=11, embed_dim=12, num_heads=3, num_layers=1))
        >>> lm(torch.tensor([[1, 2, 3]])).shape
        torch.Size([1, 3, 11])
        >>> lm.generate(torch.tensor([[1, 2]]), 4, temperature=0).shape
        torch.Size([1, 6])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        _add_body(self, config)
        self.lm_head = nn.Linear(config.embed_dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed.tokens.weight
        init_weights(self, config)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, *,
                cache: list[KVCache] | None = None) -> Tensor:
        """Next-token logits.

        Args:
            input_ids: ``(B, L)`` token ids.
            attention_mask: ``(B, S)`` 1/True = real token, 0/False = padding,
                covering cached and new tokens (as in Hugging Face).
            cache: Per-layer caches from :meth:`new_cache`; positions continue
                after what they hold.

        Returns:
            ``(B, L, V)`` logits.
        """
        cfg = self.config
        cache = check_caches("cache", cache, cfg.num_layers)
        offset = 0 if cache is None else len(cache[0])
        check_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_len, offset)
        B, L = input_ids.shape
        dtype = self.embed.tokens.weight.dtype  # the mask is checked before it numbers positions
        mask = self_mask(self.embed, attention_mask, L, offset + L, dtype, input_ids.device, B=B)
        x = self.embed(input_ids, offset=offset, attention_mask=attention_mask)  # (B, L, E)
        x = self.decoder(x, mask=mask, cache=cache)  # (B, L, E)
        return self.lm_head(x)  # (B, L, V)

    def new_cache(self, max_len: int | None = None) -> list[KVCache]:
        """Empty per-layer KV caches (preallocated to ``max_len`` positions)."""
        return new_caches(self.config.num_layers, max_len)

    def generate(self, input_ids: Tensor, max_new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, use_cache: bool = True, eos_id: int | None = None,
                 generator=None, compile: bool = False,
                 quantize: str | None = None) -> Tensor:  # noqa: ANN001
        """Continue ``input_ids`` ``(B, T)``; returns ``(B, T + new)`` ids.

        Greedy when ``temperature=0``; otherwise sampling (from the ``top_k``
        most likely tokens if given). Stops early once every row produced
        ``eos_id``. Rows must be the same length (no padding).

        With the cache the prompt runs once through :meth:`forward` (checked
        there, once) and each new token through the lean step of
        :class:`~attnlab.models.lean.LeanDecoder` (fused QKV, in-place static
        cache, no per-step checks); models it cannot run (attention other than
        the multi-head family, or while ``capture_attention`` records) keep the
        plain cached forward. Both give the tokens of ``use_cache=False``.

        ``compile=True`` runs the lean step under ``torch.compile``
        (:mod:`attnlab.models.compiled`): about 2-2.5x faster per token than the
        eager step (a GPT-2-shaped model and SmolLM2, docs/benchmarks.md), after a
        one-off compile of seconds to a minute per model (kept for the process's
        later calls, whatever their lengths); off by default because a short
        answer does not pay it back. If compiling fails, a warning says so and the
        eager step runs (same tokens).

        ``quantize="int8"`` (opt-in, approximate) makes each step after the prompt
        read int8 copies of the weights, one scale per row
        (:mod:`attnlab.models.quantized`); with ``compile=True`` about 2.3x faster
        per token than the compiled float32 step on SmolLM2 (6.3 against 14.4 ms,
        2 CPU threads), and slower than float32 without it. Its tokens may differ
        from the float model's (agreement measured in docs/benchmarks.md).

        Raises:
            ValueError: If the prompt plus ``max_new_tokens`` exceeds ``max_len``,
                or ``quantize`` is not a known name, or is asked for without the
                cache or for a model the lean step cannot run.
        """
        check_generation_args(max_new_tokens, temperature, top_k, use_cache)
        check_bool("compile", compile)
        check_quantize(self, quantize, use_cache)
        was_training = self.training
        self.eval()
        try:
            stream = self._stream(input_ids, max_new_tokens, use_cache=use_cache,
                                  temperature=temperature, top_k=top_k, eos_id=eos_id,
                                  generator=generator, compile=compile, quantize=quantize)
            tokens = [t[:, None] for t in stream]
            return torch.cat([input_ids, *tokens], dim=1)  # (B, T + new)
        finally:
            self.train(was_training)

    def stream(self, input_ids: Tensor, max_new_tokens: int, *, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
               generator=None, compile: bool = False,
               quantize: str | None = None) -> Iterator[Tensor]:  # noqa: ANN001
        """Yield the ``(B,)`` next tokens one step at a time (as :meth:`generate` picks them).

        The same cached, lean decode path as :meth:`generate`; the model must be
        in eval mode (``model.eval()``). Arguments are checked before the first
        token; ``top_p`` keeps the fewest most likely tokens holding that much
        probability. Stop iterating whenever you like (a chat's stop token).
        ``compile`` and ``quantize`` as in :meth:`generate`.
        """
        check_generation_args(max_new_tokens, temperature, top_k)
        check_bool("compile", compile)
        check_quantize(self, quantize, True)
        if top_p is not None:
            check_float("top_p", top_p, minimum=0.0, maximum=1.0, min_inclusive=False)
        return self._stream(input_ids, max_new_tokens, use_cache=True, temperature=temperature,
                            top_k=top_k, top_p=top_p, eos_id=eos_id, generator=generator,
                            compile=compile, quantize=quantize)

    def _stream(self, input_ids: Tensor, max_new_tokens: int, *, use_cache: bool,
                temperature: float, top_k: int | None, eos_id: int | None,
                generator, top_p: float | None = None,
                compile: bool = False,
                quantize: str | None = None) -> Iterator[Tensor]:  # noqa: ANN001
        """Check the prompt, pick the decode step, return the token stream."""
        cfg = self.config
        check_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_len)
        total = input_ids.shape[1] + max_new_tokens
        if total > cfg.max_len:
            raise ValueError(
                f"prompt of {input_ids.shape[1]} tokens + max_new_tokens={max_new_tokens} "
                f"exceeds the model's context max_len={cfg.max_len}"
            )
        if not use_cache:
            step, cache = (lambda ids, c: self(ids)), None
        elif input_ids.shape[0] > 0 and not self.training and lean_supported(self):
            step = LeanDecoder(self, total, compile=compile, quantize=quantize)
            cache = step.caches
        else:
            cache = self.new_cache(total)
            step = lambda ids, c: self(ids, cache=c)  # noqa: E731
        return decode_stream(step, input_ids, max_new_tokens, cache=cache,
                             temperature=temperature, top_k=top_k, top_p=top_p, eos_id=eos_id,
                             generator=generator)


def check_quantize(lm: DecoderLM, quantize: object, use_cache: bool) -> None:
    """``quantize`` is None or a known name, and the lean cached step can honour it."""
    if quantize is None:
        return
    check_choice("quantize", quantize, list(QUANTIZATIONS))
    if not use_cache:
        raise ValueError(f"quantize={quantize!r} applies to the cached decode step; "
                         "it cannot be used with use_cache=False")
    if not lean_supported(lm):
        raise ValueError(f"quantize={quantize!r} needs the lean decode step, which this model "
                         "cannot run (attention other than the multi-head family, or "
                         "capture_attention recording)")


class DecoderModel(nn.Module):
    """The body of a :class:`DecoderLM` without the output head: causal hidden states.

    What Hugging Face's base classes (``GPT2Model``, ``LlamaModel``...) return:
    the last layer's output after the final norm, one vector per token.

    Args:
        config: A :class:`~attnlab.config.ModelConfig` (``arch="decoder"``).

    Example:
        >>> import torch
        >>> from attnlab.config import ModelConfig
        >>> body = DecoderModel(ModelConfig(vocab_size=11, embed_dim=12, num_heads=3))
        >>> body(torch.tensor([[1, 2, 3]])).shape
        torch.Size([1, 3, 12])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        _add_body(self, config)
        init_weights(self, config)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Hidden states ``(B, L, E)``; ``attention_mask`` ``(B, L)`` 1/True = real token."""
        cfg = self.config
        check_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_len)
        B, L = input_ids.shape
        dtype = self.embed.tokens.weight.dtype  # the mask is checked before it numbers positions
        mask = self_mask(self.embed, attention_mask, L, L, dtype, input_ids.device, B=B)
        x = self.embed(input_ids, attention_mask=attention_mask)  # (B, L, E)
        return self.decoder(x, mask=mask)  # (B, L, E)


def _add_body(model: nn.Module, config: ModelConfig) -> None:
    """The part both decoders share: ``config``, ``embed`` and the causal ``decoder`` stack."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    model.config = config
    model.embed = Embeddings(config)
    model.decoder = LayerStack(config, causal=True, rotary=model.embed.rotary)
