"""A conversation with a chat model: its turns, its context budget, streamed answers.

:class:`ChatSession` keeps the messages, renders them with the model's chat
template, drops the oldest turns when the prompt would not fit the context
(and says so), and streams the answer token by token through the model's
own decode path, ``DecoderLM.stream`` (prefill once, then the lean one-token
step, as ``DecoderLM.generate`` does). After each answer it keeps the token ids, so
``:attn`` and ``:show`` can look at what the answer attended to.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..interop import GGUFModel


@dataclass
class Sampling:
    """How answers are picked: greedy at ``temperature == 0``, else sampled."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    max_new_tokens: int = 256
    seed: int | None = None
    compile: bool = False  # the decode step under torch.compile
    quantize: str | None = None  # int8 weights after the prompt (models.quantized)


@dataclass
class Exchange:
    """The last answer: the ids the model read and wrote (for ``:attn``/``:show``)."""

    ids: list[int]
    prompt_len: int
    question: str
    answer: str


@dataclass
class ChatSession:
    """A multi-turn conversation with a :class:`~attnlab.interop.GGUFModel`.

    Args:
        loaded: The model with its tokenizer and chat template.
        sampling: Temperature, top-k/top-p, answer length, seed.
        system: A system prompt (None: the template's own default, if any).
    """

    loaded: GGUFModel
    sampling: Sampling = field(default_factory=Sampling)
    system: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    last: Exchange | None = None

    def __post_init__(self) -> None:
        if self.loaded.chat_template is None:
            raise ValueError(f"{self.loaded.path.name} has no chat template: it is not a chat "
                             "model (use 'attnlab generate' to continue text)")
        device = next(self.loaded.model.parameters()).device
        self.generator = torch.Generator(device=device)
        if self.sampling.seed is not None:
            self.generator.manual_seed(self.sampling.seed)
        tok = self.loaded.tokenizer
        stops = [tok.eos_id, tok.id_of("<|im_end|>"), tok.id_of("<|endoftext|>"),
                 tok.id_of("<|eot_id|>")]
        self.stop_ids = {i for i in stops if i is not None}

    @property
    def context(self) -> int:
        """The model's context (tokens)."""
        return self.loaded.model.config.max_len

    def prompt(self, question: str) -> tuple[list[int], list[str]]:
        """The prompt ids for ``question`` after the kept turns, and notes on what was dropped.

        The oldest user/assistant pairs are dropped (from ``self.messages`` too)
        until the prompt plus ``max_new_tokens`` fits the context.

        Raises:
            ValueError: If the question alone (with the system prompt) does not fit.
        """
        budget = self.context - self.sampling.max_new_tokens
        dropped, dropped_tokens, notes = 0, 0, []
        while True:
            ids = self._encode([*self.messages, {"role": "user", "content": question}])
            if len(ids) <= budget:
                break
            if not self.messages:
                raise ValueError(
                    f"the message is {len(ids)} tokens with the chat template; with "
                    f"max_new_tokens={self.sampling.max_new_tokens} it exceeds the model's "
                    f"context of {self.context} tokens")
            before = len(self._encode(self.messages))
            self.messages = self.messages[2:]
            dropped += 1
            dropped_tokens += before - (len(self._encode(self.messages)) if self.messages else 0)
        if dropped:
            notes.append(f"dropped the {dropped} oldest exchange{'s' * (dropped > 1)} "
                         f"(~{dropped_tokens} tokens) to fit the context of {self.context} "
                         "tokens")
        return ids, notes

    def _encode(self, messages: list[dict[str, str]]) -> list[int]:
        head = [{"role": "system", "content": self.system}] if self.system is not None else []
        return self.loaded.tokenizer.encode(self.loaded.render([*head, *messages]))

    def reply(self, question: str, ids: list[int]) -> Iterator[str]:
        """Stream the answer to ``question`` (prompt ``ids`` from :meth:`prompt`) as text pieces.

        The turn is recorded when the stream ends, also when it is stopped early
        (``KeyboardInterrupt`` or ``close()``): the partial answer is kept.
        """
        tok, written, shown = self.loaded.tokenizer, [], ""
        try:
            for token in self._tokens(ids):
                if token in self.stop_ids:
                    break
                written.append(token)
                text = tok.decode(written)
                if text.endswith("\ufffd"):  # a character split across tokens: wait for it
                    continue
                piece, shown = text[len(shown):], text
                if piece:
                    yield piece
        finally:
            answer = tok.decode(written)
            self.messages += [{"role": "user", "content": question},
                              {"role": "assistant", "content": answer}]
            self.last = Exchange(ids + written, len(ids), question, answer)

    def _tokens(self, ids: list[int]) -> Iterator[int]:
        """The answer's tokens through the model's own decode path (``DecoderLM.stream``)."""
        model, s = self.loaded.model, self.sampling
        device = next(model.parameters()).device
        prompt = torch.tensor([ids], device=device)  # (1, T)
        stream = model.stream(prompt, s.max_new_tokens, temperature=s.temperature, top_k=s.top_k,
                              top_p=s.top_p, generator=self.generator if s.temperature else None,
                              compile=s.compile, quantize=s.quantize)
        for token in stream:  # (1,) each: the prefill once, then the lean one-token step
            yield int(token)
