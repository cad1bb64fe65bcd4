"""The original projects' entry point: ``uv run main.py [options]`` runs ``attnlab train``.

Their commands keep working as they were typed::

    uv run main.py
    uv run main.py --interactive
    uv run main.py --model selfhead --embed_dim 64 --epochs 100
    uv run main.py --model multihead --embed_dim 128 --num_heads 8 --save_path models/m.pth

Every option of ``attnlab train`` works here (``uv run main.py --help`` lists them).
"""

import importlib.util
import sys
from pathlib import Path

HOW = ("attnlab needs PyTorch, which this Python does not have. From the repository, run\n"
       "    uv run main.py {args}\n"
       "(uv installs everything from uv.lock; 'pip install uv' if you don't have it), or\n"
       "install the project into your environment first: pip install -e .")


def main(argv: list[str]) -> int:
    """Run ``attnlab train`` with ``argv``; explain what to do if torch is missing."""
    if importlib.util.find_spec("torch") is None:
        print(HOW.format(args=" ".join(argv)).replace(" \n", "\n"), file=sys.stderr)
        return 2
    source = Path(__file__).resolve().parent / "src"
    if source.is_dir() and str(source) not in sys.path:
        sys.path.insert(0, str(source))  # a plain `python main.py` in a fresh clone
    from attnlab.cli.main import main as attnlab

    return attnlab(["train", *argv])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
