"""Run a model on one input inside ``capture_attention``: its maps and their token labels.

This is the glue between a trained model and the plotters. It runs the model
once, with the weights captured, and returns every attention module's map with
the tokens for both of its axes:

* a sequence-to-sequence run (encoder–decoder): the source is encoded and a
  target is generated greedily; then one teacher-forced pass over that target
  records the encoder self-attention (source × source), the decoder
  self-attention (target × target) and the cross-attention (target × source).
  Each decoder position is labelled with the token it *writes* (the generated
  target, then ``<eos>``), so a cross-attention row reads "to write this token,
  the model looked at these source tokens";
* a language-model run (decoder only): the prompt is continued greedily and the
  whole text (prompt + continuation) is run once; every position is labelled
  with its own character. What does not fit the context is cut, the
  continuation first (``Inspection.notes`` says so);
* a sentence encoder (e.g. all-MiniLM-L6-v2 from ``attnlab.interop``): the
  text's wordpieces, ``[CLS]`` and ``[SEP]`` included.

Shape letters: B batch (always 1 here), H heads, L queries, S keys.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..tasks.base import BOS, EOS, PAD, Task
from .capture import attention_modules, capture_attention

#: Characters that would be invisible (or break a line) as tick labels.
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "": "∅"}
INVISIBLE = {" ", "\n", "\t"}
#: Held-out prompts a language-model picture chooses its input from.
LM_CANDIDATES = 16

ENCODER_SELF = "encoder self-attention"
DECODER_SELF = "decoder self-attention"
CROSS = "cross-attention"
SELF = "self-attention"


@dataclass(frozen=True)
class Inspection:
    """What a model attended to on one input.

    Attributes:
        maps: ``{module name: (1, H, L, S) weights}``, every attention module of
            the model in ``named_modules()`` order (the keys ``capture_attention``
            uses).
        tokens: ``{module name: (query labels, key labels)}``, lengths L and S;
            pass it as ``tokens`` to ``plot_attention``, ``attention_page`` or
            ``render_terminal``.
        roles: ``{module name: role}``, one of ``"encoder self-attention"``,
            ``"decoder self-attention"``, ``"cross-attention"``, ``"self-attention"``.
        input: The text the model read.
        output: The text it generated ("" for an encoder).
        kind: ``"seq2seq"``, ``"lm"`` or ``"encoder"``.
        notes: What was cut to fit the model's context, in words.
    """

    maps: dict[str, Tensor]
    tokens: dict[str, tuple[list[str], list[str]]]
    roles: dict[str, str]
    input: str
    output: str
    kind: str
    notes: list[str] = field(default_factory=list)

    @property
    def cross(self) -> list[str]:
        """Names of the cross-attention modules (empty unless ``kind == "seq2seq"``)."""
        return [name for name, role in self.roles.items() if role == CROSS]

    def default_layer(self) -> str:
        """The module worth a first look: the last cross-attention, else the first module."""
        return self.cross[-1] if self.cross else next(iter(self.maps))


def token_label(token: str) -> str:
    r"""A printable tick label for one token: spaces and line breaks made visible.

    Example:
        >>> [token_label(t) for t in ["a", " ", "\n", "<eos>"]]
        ['a', '␣', '↵', '<eos>']
    """
    return VISIBLE.get(token, token)


def held_out_input(task: Task, seed: int = 0) -> str:
    """One held-out ("val") input of ``task``, the same for the same ``seed``.

    For a language-model task (``kind == "lm"``) it is, of ``LM_CANDIDATES``
    held-out prompts, the one with the most distinct visible characters: a
    chunk of source code can be indentation alone, and a picture whose every
    tick reads ␣ shows nothing.
    """
    if task.kind != "lm":
        return task.examples("val", 1, seed=seed)[0][0]
    prompts = [prompt for prompt, _ in task.examples("val", LM_CANDIDATES, seed=seed)]
    return max(prompts, key=lambda p: len(set(p) - INVISIBLE))  # the first of the best


@torch.no_grad()
def inspect_run(model: nn.Module, task: Task, text: str,
                max_new_tokens: int | None = None) -> Inspection:
    """Answer ``text`` with a trained model of ``task`` and capture its attention.

    Args:
        model: The task's model (``EncoderDecoder`` for seq2seq tasks, ``DecoderLM``
            for lm tasks), e.g. from ``attnlab.training.run.load_run``.
        task: The run's task (its vocabulary and kind).
        text: The input: a source for seq2seq tasks, a prompt for lm tasks.
        max_new_tokens: Tokens to generate; the task's target length by default.

    Returns:
        The :class:`Inspection` (greedy decoding, so the same every call).

    Raises:
        ValueError: If ``text`` holds characters outside the vocabulary (the
            message names them), is empty or too long for the task.
        TypeError: If ``text`` is not a str.
    """
    ids = task.encode_input(text)[None].to(_device(model))  # (1, S)
    was_training = model.training
    model.eval()
    try:
        if task.kind == "seq2seq":
            return _inspect_seq2seq(model, task, text, ids, max_new_tokens)
        return _inspect_lm(model, task, text, ids, max_new_tokens)
    finally:
        model.train(was_training)


def _inspect_seq2seq(model: nn.Module, task: Task, text: str, ids: Tensor,
                     max_new_tokens: int | None) -> Inspection:
    src_mask = ids != PAD  # (1, S)
    new = max_new_tokens or task.max_tgt_len - 1
    out = model.generate(ids, new, bos_id=BOS, eos_id=EOS, src_mask=src_mask,
                         temperature=0.0)  # (1, 1 + T): BOS, then what was written
    with capture_attention(model) as captured:
        model(ids, out[:, :-1], src_mask)  # position t reads out[t] and writes out[t + 1]
    vocab = task.vocab.tokens
    source = [token_label(vocab[i]) for i in ids[0].tolist()]
    written = [token_label(vocab[i]) for i in out[0, 1:].tolist()]
    names = attention_modules(model)
    roles: dict[str, str] = {}
    tokens: dict[str, tuple[list[str], list[str]]] = {}
    encoder = {id(m) for m in model.encoder.modules()}
    cross = {id(layer.cross_attn) for layer in model.decoder.layers}
    for name, module in names.items():
        if id(module) in encoder:
            roles[name], tokens[name] = ENCODER_SELF, (source, source)
        elif id(module) in cross:
            roles[name], tokens[name] = CROSS, (written, source)
        else:
            roles[name], tokens[name] = DECODER_SELF, (written, written)
    return Inspection(_ordered(captured, names), tokens, roles, text,
                      task.decode_output(out[0, 1:].cpu()), "seq2seq")


def _inspect_lm(model: nn.Module, task: Task, text: str, ids: Tensor,
                max_new_tokens: int | None) -> Inspection:
    max_len = model.config.max_len
    asked = max_new_tokens or task.seq_length
    new = min(asked, max(max_len - ids.shape[1], 1))  # the prompt comes first
    notes = []
    if new < asked:
        notes.append(f"the continuation was cut to {new} character{'s' * (new != 1)} "
                     f"(context {max_len})")
    if ids.shape[1] + new > max_len:
        keep = max_len - new
        notes.append(f"the prompt was cut to its last {keep} characters (context {max_len})")
        ids = ids[:, -keep:]  # (1, keep)
    out = model.generate(ids, new, temperature=0.0)  # (1, T)
    with capture_attention(model) as captured:
        model(out)
    vocab = task.vocab.tokens
    labels = [token_label(vocab[i]) for i in out[0].tolist()]
    names = attention_modules(model)
    return Inspection(_ordered(captured, names), {n: (labels, labels) for n in names},
                      dict.fromkeys(names, DECODER_SELF), text,
                      task.vocab.decode(out[0, ids.shape[1]:].cpu()), "lm", notes)


@torch.no_grad()
def inspect_sentence_encoder(encoder: nn.Module, text: str) -> Inspection:
    """Capture a sentence encoder's attention on ``text``, labelled with its wordpieces.

    Args:
        encoder: A ``SentenceEncoder`` from ``attnlab.interop.load_sentence_encoder``
            (its ``tokenizer``, ``lowercase`` and ``encoder`` attributes are used).
        text: One sentence; truncated like ``encode`` does (``max_seq_length``).

    Returns:
        The :class:`Inspection`; ``maps`` keys are the encoder's attention modules
        (``encoder.encoder.layers.<i>.self_attn``).

    Raises:
        TypeError: If ``text`` is not a str.
        ValueError: If ``text`` is empty or only whitespace.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text must not be empty")
    encoding = encoder.tokenizer.encode(text.lower() if encoder.lowercase else text)
    device = _device(encoder)
    ids, mask, types = (torch.tensor([getattr(encoding, name)], device=device)
                        for name in ("ids", "attention_mask", "type_ids"))  # (1, L) each
    was_training = encoder.training
    encoder.eval()
    try:
        with capture_attention(encoder) as captured:
            encoder(ids, mask, types)
    finally:
        encoder.train(was_training)
    labels = [token_label(t) for t in encoding.tokens]
    names = attention_modules(encoder)
    return Inspection(_ordered(captured, names), {n: (labels, labels) for n in names},
                      dict.fromkeys(names, SELF), text, "", "encoder")


def _ordered(captured: Mapping[str, Tensor], names: Mapping[str, nn.Module]) -> dict[str, Tensor]:
    """The captured maps, on the CPU, in module order; every module must have run."""
    missing = [name for name in names if name not in captured]
    if missing:
        raise ValueError(f"attention modules did not run on this input: {', '.join(missing)}")
    return {name: captured[name].float().cpu() for name in names}


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
