"""``attnlab explain MODEL --input TEXT``: one head's attention, every number of it.

The model reads TEXT once; ``attnlab.explain`` recomputes one head of one
attention module step by step (input, Q, K, V, scores, scale, mask, softmax,
the head's output, the concatenation, the output projection, the residual) and
checks the result against the model's own output. The steps are printed as
rounded tables (large matrices summarised), or with ``--html`` written as one
self-contained page with heatmaps, a live scale slider and a model view of every
module × head.

MODEL is a run directory (``attnlab train``), a sentence-transformers directory,
a ``.gguf`` file, or a short name of a model a package ships (``minilm``,
``smollm2``); it is turned into a model by :func:`load_model` alone (language
models read the raw text, without their chat template). Pages go to ``RUN_DIR/explain/``
(``./explain/`` otherwise) or ``--out DIR``; an existing file is never replaced
without ``--force``.
"""

import argparse
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..explanation import explain
from ..explanation.page import write_explanation_page
from ..explanation.terminal import format_explanation
from ..interop import load_sentence_encoder
from ..tasks.base import BOS, EOS, PAD
from ..training import run as training_run
from ..training.train_config import DEVICES
from ..visualize.capture import attention_modules, capture_attention
from ..visualize.inspect import token_label
from .model_ref import ModelRef, resolve_model
from .model_ref import load_model as load_ref
from .options import CliParser, choice_value, int_value

Labels = dict[str, tuple[list[str], list[str]]]


@dataclass
class Subject:
    """A model ready to explain.

    Attributes:
        model: The model (any module holding attnlab attention modules).
        prepare: ``text -> (inputs, labels)``: what ``model`` is called with and
            ``{module name: (query labels, key labels)}``.
        out: Default directory for pages.
    """

    model: nn.Module
    prepare: Callable[[str], tuple[Any, Labels]]
    out: Path


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab explain MODEL`` and its options."""
    parser = subparsers.add_parser(
        "explain", help="one head's attention step by step: Q, K, V, scores, softmax, output",
        description="Run MODEL on TEXT and show every step of one attention head's "
                    "computation, checked against the model's own output.",
        usage="attnlab explain MODEL --input TEXT [--layer L] [--head H] [--html] [options]",
    )
    parser.add_argument("model", metavar="MODEL",
                        help="a run directory, a sentence-transformers directory, a .gguf "
                             "file, or a short name (smollm2, minilm)")
    parser.add_option("input", metavar="TEXT", default=None, help="the text the model reads")
    parser.add_option("layer", metavar="L", type=_layer_value, default=0,
                      help="attention module: its index (0 = first) or its name")
    parser.add_option("head", metavar="H", type=int_value("--head", minimum=0), default=0,
                      help="the head to explain (default 0)")
    parser.add_option("html", action="store_true",
                      help="write one self-contained HTML page instead of printing tables")
    parser.add_option("out", metavar="DIR", default=None,
                      help="where the page goes (default: RUN_DIR/explain or ./explain)")
    parser.add_option("force", action="store_true", help="overwrite an existing page")
    parser.add_option("device", type=choice_value("--device", DEVICES), default="cpu",
                      metavar="NAME", help=f"one of: {', '.join(DEVICES)} (default: cpu)")
    return parser


def _layer_value(text: str) -> str | int:
    stripped = text.strip()
    return int(stripped) if stripped.lstrip("-").isdigit() else stripped


def run(args: argparse.Namespace) -> int:
    """Explain the head and print it, or write the page."""
    if args.input is None:
        raise ValueError("--input TEXT is required: the text the model reads")
    subject = load_model(args.model, args.device)
    path = None
    if args.html:
        out = Path(args.out) if args.out is not None else subject.out
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a directory")
        path = out / f"explain-{_slug(args.layer)}-head{args.head}.html"
        if path.exists() and not args.force:
            return _fail(f"{path} already exists; pass --force to overwrite it")
    inputs, labels = subject.prepare(args.input)
    ex = explain(subject.model, inputs, layer=args.layer, head=args.head)
    if ex.module in labels:
        ex = ex.with_tokens(*labels[ex.module])
    if path is None:
        print(format_explanation(ex))
        return 0
    grid = _all_weights(subject.model, inputs)
    command = (f"attnlab explain {shlex.quote(args.model)} --input {shlex.quote(args.input)} "
               "--layer {layer} --head {head} --html")
    path.parent.mkdir(parents=True, exist_ok=True)
    print(write_explanation_page(ex, path, force=args.force, grid=grid, command=command,
                                 title=f"attnlab explain · {args.model}",
                                 input_text=args.input))
    return 0


def _fail(message: str) -> int:
    print(f"attnlab explain: error: {message}", file=sys.stderr)
    return 2


def _slug(layer: str | int) -> str:
    return f"layer{layer}" if isinstance(layer, int) else layer.replace(".", "-") or "module"


@torch.no_grad()
def _all_weights(model: nn.Module, inputs: Any) -> dict[str, Tensor]:
    """Every attention module's weights on ``inputs`` (for the model view)."""
    was_training = model.training
    model.eval()
    try:
        with capture_attention(model) as maps:
            if isinstance(inputs, tuple):
                model(*inputs)
            else:
                model(inputs)
    finally:
        model.train(was_training)
    return {name: maps[name].float().cpu() for name in attention_modules(model) if name in maps}


def load_model(reference: str, device: str = "cpu") -> Subject:
    """Turn a MODEL reference into a :class:`Subject` (the one place that does).

    Args:
        reference: A run directory (or saved ``.safetensors`` weights), a
            sentence-transformers directory, a ``.gguf`` file, or a short name
            (``minilm``, ``smollm2``): whatever :func:`~attnlab.cli.model_ref.resolve_model`
            accepts.
        device: Where the model runs.

    Raises:
        FileNotFoundError: If ``reference`` names nothing.
        ValueError: If ``reference`` is none of these.
    """
    ref = resolve_model(reference)
    if ref.kind == "sentence":
        return _sentence(ref.path, device, Path("explain"))
    if ref.kind == "gguf":
        return _language_model(ref, device)
    path = ref.path if ref.path.is_dir() else ref.path.parent
    config, task, model = training_run.load_run(str(ref.path), device)
    model.eval()

    def prepare(text: str) -> tuple[Any, Labels]:
        ids = task.encode_input(text)[None].to(_device(model))  # (1, S)
        vocab = task.vocab.tokens
        names = attention_modules(model)
        if task.kind != "seq2seq":
            ids = ids[:, -model.config.max_len:]
            labels = [token_label(vocab[i]) for i in ids[0].tolist()]
            return ids, {n: (labels, labels) for n in names}
        src_mask = ids != PAD
        with torch.no_grad():
            out = model.generate(ids, task.max_tgt_len - 1, bos_id=BOS, eos_id=EOS,
                                 src_mask=src_mask, temperature=0.0)  # (1, 1 + T)
        source = [token_label(vocab[i]) for i in ids[0].tolist()]
        written = [token_label(vocab[i]) for i in out[0, 1:].tolist()]
        encoder = {id(m) for m in model.encoder.modules()}
        cross = {id(layer.cross_attn) for layer in model.decoder.layers}
        labels: Labels = {}
        for name, module in names.items():
            labels[name] = (source, source) if id(module) in encoder else \
                (written, source) if id(module) in cross else (written, written)
        return (ids, out[:, :-1], src_mask), labels

    return Subject(model, prepare, path / "explain")


def _language_model(ref: ModelRef, device: str) -> Subject:
    """A packaged or GGUF language model reading the raw text (no chat template)."""
    lm = load_ref(ref, device=device)
    lm.model.eval()

    def prepare(text: str) -> tuple[Any, Labels]:
        if not text.strip():
            raise ValueError("--input must not be empty")
        ids = lm.tokenizer.encode(text)
        if len(ids) > lm.model.config.max_len:
            raise ValueError(f"--input is {len(ids)} tokens, more than the model's context "
                             f"({lm.model.config.max_len})")
        labels = [token_label(t) for t in lm.tokenizer.token_text(ids)]
        tensor = torch.tensor([ids], device=_device(lm.model))  # (1, L)
        return tensor, {n: (labels, labels) for n in attention_modules(lm.model)}

    return Subject(lm.model, prepare, Path("explain"))


def _sentence(path: str | Path, device: str, out: Path) -> Subject:
    encoder = load_sentence_encoder(path).to(training_run.resolve_device(device))
    encoder.eval()

    def prepare(text: str) -> tuple[Any, Labels]:
        if not text.strip():
            raise ValueError("--input must not be empty")
        encoding = encoder.tokenizer.encode(text.lower() if encoder.lowercase else text)
        ids, mask, types = (torch.tensor([getattr(encoding, name)], device=_device(encoder))
                            for name in ("ids", "attention_mask", "type_ids"))
        labels = [token_label(t) for t in encoding.tokens]
        return (ids, mask, types), {n: (labels, labels) for n in attention_modules(encoder)}

    return Subject(encoder, prepare, out)


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
