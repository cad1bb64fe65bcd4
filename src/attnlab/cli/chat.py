"""``attnlab chat [MODEL]``: talk to a chat model (default: SmolLM2-135M-Instruct), see inside it.

Each line read is a message; the answer is streamed as it is written, through
the model's own chat template. In a terminal, Ctrl-C stops the current answer
(the session goes on) and Ctrl-D or ``:quit`` ends it. When standard input is
not a terminal, each line is answered in turn and the command ends with the
input. Commands:

* ``:attn [LAYER HEAD]``: which prompt tokens the last answer attended to
  (mean over the answer's tokens; over every layer and head, or one head);
* ``:show [DIR]``: write the last exchange's attention as PNG and HTML (``./chat-show``);
* ``:reset``: forget the conversation; ``:quit``: end.

Answers are greedy by default (``--temperature 0``), so the same question gets
the same answer; ``--temperature``, ``--top_k``, ``--top_p`` and ``--seed`` sample.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .chat_session import ChatSession, Sampling
from .model_ref import SHORT_NAMES, load_model, resolve_model
from .options import (
    CliParser,
    add_decode_options,
    apply_decode_options,
    float_value,
    int_value,
)

QUIT = (":quit", ":q", ":exit")
HELP = ":attn [LAYER HEAD], :show [DIR], :reset, :quit (or Ctrl-D); Ctrl-C stops an answer"


def add_parser(subparsers: Any) -> CliParser:
    """Add ``attnlab chat [MODEL]`` and its options."""
    parser = subparsers.add_parser(
        "chat", help="talk to a chat model (default: smollm2) and see what it attends to",
        description="A multi-turn chat with a language model, answers streamed as they are "
                    "written. Reads lines from standard input (a terminal or a pipe).",
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", default="smollm2",
                        help=f"a .gguf file or a short name ({', '.join(SHORT_NAMES)}); "
                             "default: smollm2")
    parser.add_option("system", metavar="TEXT", default=None,
                      help="the system prompt (default: the chat template's own)")
    parser.add_option("temperature", type=float_value("--temperature", ">= 0",
                                                      lambda v: v >= 0),
                      default=0.0, metavar="X", help="0 = greedy (default); higher samples "
                                                     "more freely")
    parser.add_option("top_k", type=int_value("--top_k"), default=None, metavar="K",
                      help="sample from the K most likely tokens")
    parser.add_option("top_p", type=float_value("--top_p", "in (0, 1]",
                                                lambda v: 0 < v <= 1),
                      default=None, metavar="P", help="sample from the most likely tokens "
                                                      "holding probability P")
    parser.add_option("max_new_tokens", type=int_value("--max_new_tokens"), default=256,
                      metavar="N", help="longest answer, in tokens (default: 256)")
    parser.add_option("seed", type=int_value("--seed", minimum=0), default=None, metavar="N",
                      help="seed of the sampler (answers repeat with the same seed)")
    parser.add_option("device", default="auto", metavar="NAME",
                      help="cpu, cuda, mps or auto (default: auto)")
    add_decode_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the model, then answer each line until the input ends or ``:quit``."""
    ref = resolve_model(args.model)
    if ref.kind != "gguf":
        raise ValueError(f"MODEL {args.model!r} is a {ref.kind} model; chat needs a language "
                         "model with a chat template (a .gguf file or 'smollm2')")
    decoding = apply_decode_options(args)  # threads: before the load raises the load average
    start = time.perf_counter()
    loaded = load_model(ref, device=args.device)
    sampling = Sampling(args.temperature, args.top_k, args.top_p, args.max_new_tokens, args.seed,
                        args.compile, args.quantize)
    session = ChatSession(loaded, sampling, args.system)
    tty = sys.stdin.isatty()
    note = f"{loaded.name}: loaded in {time.perf_counter() - start:.1f} s; {decoding}"
    print(f"{note}. Type a message and press Enter; {HELP}" if tty else note, file=sys.stderr)
    while True:
        try:
            line = input("> " if tty else "")
        except EOFError:
            if tty:
                print()
            return 0
        except KeyboardInterrupt:
            print("\n(Ctrl-D or :quit ends the chat)")
            continue
        text = line.strip()
        if not text:
            continue
        if text in QUIT:
            return 0
        if text.startswith(":"):
            _command(session, text)
            continue
        _answer(session, line)


def _answer(session: ChatSession, question: str) -> None:
    """Print the streamed answer; Ctrl-C (even before the first token) stops only the answer."""
    stream = None
    try:
        try:
            ids, notes = session.prompt(question)
        except ValueError as exc:
            print(f"error: {exc}")
            return
        for note in notes:
            print(f"note: {note}")
        stream = session.reply(question, ids)
        for piece in stream:
            print(piece, end="", flush=True)
        print()
    except KeyboardInterrupt:
        if stream is not None:
            stream.close()  # records the partial answer
        print(" [stopped]")


def _command(session: ChatSession, text: str) -> None:
    name, *rest = text.split()
    try:
        if name == ":attn":
            print_attended(session, rest)
        elif name == ":show":
            write_views(session, rest)
        elif name == ":reset":
            session.messages.clear()
            session.last = None
            print("(conversation forgotten)")
        else:
            print(f"unknown command {name}; commands: {HELP}")
    except (ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}")


def _layer_head(session: ChatSession, rest: list[str]) -> tuple[int | None, int | None]:
    if not rest:
        return None, None
    cfg = session.loaded.model.config
    if len(rest) != 2 or not all(r.lstrip("-").isdigit() for r in rest):
        raise ValueError(f"give no numbers or LAYER HEAD, e.g. ':attn {cfg.num_layers - 1} 0'")
    layer, head = int(rest[0]), int(rest[1])
    if not (-cfg.num_layers <= layer < cfg.num_layers and 0 <= head < cfg.num_heads):
        raise ValueError(f"LAYER must lie in [0, {cfg.num_layers}) and HEAD in "
                         f"[0, {cfg.num_heads}); got {layer} {head}")
    return layer % cfg.num_layers, head


def print_attended(session: ChatSession, rest: list[str], top: int = 12) -> None:
    """``:attn``: the prompt tokens the last answer attended to most, as bars."""
    from ..visualize.inspect import token_label
    from ..visualize.inspect_lm import attended_prompt, inspect_tokens

    layer, head = _layer_head(session, rest)
    last = session.last
    if last is None or len(last.ids) <= last.prompt_len:
        print("nothing answered yet: ask something first, then :attn")
        return
    only = [f"decoder.layers.{layer}.self_attn"] if layer is not None else None
    labels = session.loaded.tokenizer.token_text(last.ids)
    inspection = inspect_tokens(session.loaded.model, last.ids, labels, text=last.question,
                                only=only)
    weights = attended_prompt(inspection.maps, last.prompt_len, head=head)  # (P,)
    where = "every layer and head" if layer is None else f"layer {layer}, head {head}"
    print(f"what the answer ({len(last.ids) - last.prompt_len} tokens) attended to in the "
          f"prompt ({last.prompt_len} tokens), mean over {where}:")
    order = weights.argsort(descending=True)[:top].tolist()
    scale = float(weights.max()) or 1.0
    for index in order:
        share = float(weights[index])
        bar = "█" * max(1, round(24 * share / scale))
        print(f"  {share:6.3f} {bar:<24} #{index:<4} {token_label(labels[index])!r}")
    if order and order[0] == 0:
        print("  (token #0 is the usual 'attention sink': heads with nothing to do look there)")


def write_views(session: ChatSession, rest: list[str]) -> None:
    """``:show [DIR]``: the last exchange's attention as PNG and ``attention.html``."""
    from ..visualize.inspect_lm import inspect_tokens
    from .show import write_views as write

    last = session.last
    if last is None:
        print("nothing answered yet: ask something first, then :show")
        return
    out = Path(rest[0]) if rest else Path("chat-show")
    labels = session.loaded.tokenizer.token_text(last.ids)
    inspection = inspect_tokens(session.loaded.model, last.ids, labels, text=last.question,
                                output=last.answer)
    for path in write(inspection, out, title=f"attnlab chat · {session.loaded.name}",
                      png=True, html=True, force=True):
        print(path)
