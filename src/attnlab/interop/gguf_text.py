"""A GGUF file's tokenizer and chat template.

**Tokenizer.** A GGUF stores no ``tokenizer.json``: it stores the vocabulary
(``tokenizer.ggml.tokens``), the BPE merges, each token's type (3 = control,
4 = user-defined) and the special ids, under llama.cpp's names. For a
byte-level BPE vocabulary (``tokenizer.ggml.model == "gpt2"``: GPT-2, Llama 3,
SmolLM...) that is rebuilt here with the ``tokenizers`` library: the BPE
model from tokens and merges, the pre-tokenizer that ``tokenizer.ggml.pre``
names (how text is split before merging), the byte-level decoder, and the
control tokens as special tokens, matched whole in the text.

**Chat template.** ``tokenizer.chat_template`` is a Jinja template turning
``[{"role": ..., "content": ...}, ...]`` into the prompt the model was tuned
on. It is data from a file, so it is rendered in Jinja's immutable sandbox:
it can loop and format strings, but reaching for Python (``__class__``,
``__globals__``, mutating lists) raises an error.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from .gguf_file import GGUFFile

CONTROL, USER_DEFINED = 3, 4

# How each ``tokenizer.ggml.pre`` splits text before BPE (llama.cpp's llama-vocab.cpp).
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZERS = {
    # SmolLM (StarCoder's vocabulary): every digit alone, then GPT-2's split
    "smollm": ("digits", GPT2_SPLIT),
    "gpt2": (None, GPT2_SPLIT),
    "default": (None, GPT2_SPLIT),
    "llama3": (None, LLAMA3_SPLIT),
    "llama-bpe": (None, LLAMA3_SPLIT),
}


class GGUFTokenizer:
    """Text <-> token ids for a GGUF's byte-level BPE vocabulary.

    Args:
        tokenizer: The built ``tokenizers.Tokenizer``.
        bos_id: Beginning-of-sequence id (or None).
        eos_id: End-of-sequence id (or None).
        pad_id: Padding id (or None).
        add_bos: Whether :meth:`encode` puts ``bos_id`` first (``tokenizer.ggml.add_bos_token``).
    """

    def __init__(self, tokenizer: Tokenizer, *, bos_id: int | None, eos_id: int | None,
                 pad_id: int | None, add_bos: bool) -> None:
        self.backend = tokenizer
        self.bos_id, self.eos_id, self.pad_id, self.add_bos = bos_id, eos_id, pad_id, add_bos

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; special tokens written in it stay whole."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return [self.bos_id, *ids] if self.add_bos and self.bos_id is not None else ids

    def decode(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """The text of ``ids`` (special tokens kept unless ``skip_special``)."""
        return self.backend.decode(list(ids), skip_special_tokens=skip_special)

    def token_text(self, ids: Sequence[int]) -> list[str]:
        """Each id's own text, readable (``"Ġthe"`` shows as ``" the"``), for labels."""
        return [self.backend.decode([i], skip_special_tokens=False) for i in ids]

    def id_of(self, token: str) -> int | None:
        """The id of a token spelled as in the vocabulary (``"<|im_end|>"``), or None."""
        return self.backend.token_to_id(token)

    @property
    def vocab_size(self) -> int:
        """Number of ids (special tokens included)."""
        return self.backend.get_vocab_size(with_added_tokens=True)


def build_tokenizer(file: GGUFFile) -> GGUFTokenizer:
    """The tokenizer a GGUF file describes.

    Raises:
        ValueError: If the file's tokenizer is not byte-level BPE (``gpt2``) or
            its pre-tokenizer is unknown, or the vocabulary is missing.
    """
    kind = file.require("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ValueError(f"{file.path.name}: tokenizer.ggml.model={kind!r} is not supported "
                         "(attnlab reads byte-level BPE vocabularies: 'gpt2')")
    pre = file.metadata.get("tokenizer.ggml.pre", "default")
    if pre not in PRE_TOKENIZERS:
        raise ValueError(f"{file.path.name}: tokenizer.ggml.pre={pre!r} is not supported; "
                         f"supported: {', '.join(PRE_TOKENIZERS)}")
    tokens: list[str] = file.require("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in file.require("tokenizer.ggml.merges")]
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(models.BPE(vocab, merges, fuse_unk=False))
    digits, split = PRE_TOKENIZERS[pre]
    steps = [pre_tokenizers.Digits(individual_digits=True)] if digits else []
    steps += [pre_tokenizers.Split(Regex(split), behavior="isolated"),
              pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    backend.pre_tokenizer = pre_tokenizers.Sequence(steps)
    backend.decoder = decoders.ByteLevel()
    types = file.metadata.get("tokenizer.ggml.token_type") or []
    special = [AddedToken(tokens[i], special=True, normalized=False)
               for i, t in enumerate(types) if t == CONTROL]
    added = [AddedToken(tokens[i], special=False, normalized=False)
             for i, t in enumerate(types) if t == USER_DEFINED]
    backend.add_special_tokens(special)
    backend.add_tokens(added)
    meta = file.metadata
    return GGUFTokenizer(backend, bos_id=meta.get("tokenizer.ggml.bos_token_id"),
                         eos_id=meta.get("tokenizer.ggml.eos_token_id"),
                         pad_id=meta.get("tokenizer.ggml.padding_token_id"),
                         add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)))


class ChatTemplate:
    """A chat template (Jinja source) rendered in Jinja's immutable sandbox.

    Args:
        source: The template text (``tokenizer.chat_template``).
        special_tokens: Names the template may use (``bos_token``, ``eos_token``...).

    Example:
        >>> t = ChatTemplate("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}"
        ...                  "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
        >>> t.render([{"role": "user", "content": "hi"}], add_generation_prompt=True)
        '<user>hi<assistant>'
    """

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        from jinja2 import TemplateError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        if not isinstance(source, str):
            raise TypeError(f"chat template must be a str, got {type(source).__name__}")
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        # the options transformers renders chat templates with
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[loopcontrols])
        env.globals["raise_exception"] = _raise_exception
        try:
            self._template = env.from_string(source)
        except TemplateError as exc:
            raise ValueError(f"the chat template does not parse: {exc}") from None

    def render(self, messages: Sequence[Mapping[str, str]], *,
               add_generation_prompt: bool = False) -> str:
        """The prompt text for ``messages`` (``{"role", "content"}`` dicts, oldest first).

        Raises:
            ValueError: If a message is malformed, or the template fails or tries
                to reach outside the sandbox (the message says which).
        """
        from jinja2 import TemplateError
        from jinja2.exceptions import SecurityError

        for index, message in enumerate(messages):
            if not isinstance(message, Mapping) or not {"role", "content"} <= set(message):
                raise ValueError(f"messages[{index}] must be a dict with 'role' and 'content', "
                                 f"got {message!r}")
        try:
            return self._template.render(messages=[dict(m) for m in messages],
                                         add_generation_prompt=add_generation_prompt,
                                         **self.special_tokens)
        except SecurityError as exc:
            raise ValueError(f"the chat template tried to reach outside the sandbox: {exc}") \
                from None
        except TemplateError as exc:
            raise ValueError(f"the chat template failed: {exc}") from None


def _raise_exception(message: str) -> Any:
    from jinja2 import TemplateError

    raise TemplateError(message)


def chat_template(file: GGUFFile, tokenizer: GGUFTokenizer) -> ChatTemplate | None:
    """The file's chat template with its special tokens, or None if it has none."""
    source = file.metadata.get("tokenizer.chat_template")
    if source is None:
        return None
    names = {"bos_token": tokenizer.bos_id, "eos_token": tokenizer.eos_id,
             "pad_token": tokenizer.pad_id,
             "unk_token": file.metadata.get("tokenizer.ggml.unknown_token_id")}
    tokens = {name: tokenizer.decode([i]) for name, i in names.items() if i is not None}
    return ChatTemplate(source, tokens)
