"""Every attnlab module imports on its own, first, in a fresh interpreter state.

An import cycle inside the package shows up only for some import orders (a
module that is imported first while its package is half-initialised). So each
module is imported *first* in a process of its own: the test process loads the
heavy third-party libraries once (torch, numpy, matplotlib...), then forks one
child per module; in the child no ``attnlab`` module is loaded yet, so the
module under test starts the package's import chain itself.
"""

import importlib
import os
import pkgutil
import sys
import traceback

import pytest

import attnlab

MODULES = sorted(  # (``attnlab.__main__`` is the ``python -m attnlab`` script: it runs)
    info.name for info in pkgutil.walk_packages(attnlab.__path__, prefix="attnlab.")
    if info.name != "attnlab.__main__"
)
HEAVY = ("torch", "numpy", "matplotlib.pyplot", "safetensors.torch", "jinja2.sandbox",
         "tokenizers", "gguf")


def _import_first(name: str) -> str:
    """Import ``name`` in a forked child with no attnlab module loaded: '' or the traceback."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        status = 0
        try:
            for loaded in [m for m in sys.modules if m == "attnlab" or m.startswith("attnlab.")]:
                del sys.modules[loaded]
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001  (report any failure to the parent)
            os.write(write, traceback.format_exc().encode())
            status = 1
        os.close(write)
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return message or ("" if status == 0 else f"exit status {status}")


@pytest.fixture(scope="module", autouse=True)
def heavy_libraries_loaded():
    for name in HEAVY:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional one: the modules that need it will say so
            pass


def test_the_package_has_its_modules():
    assert len(MODULES) > 100
    assert {"attnlab.blocks.layers", "attnlab.config", "attnlab.models.layer"} <= set(MODULES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_first_on_its_own():
    failures = {name: error for name in MODULES if (error := _import_first(name))}
    assert not failures, "\n\n".join(f"{name}:\n{error}" for name, error in failures.items())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_an_import_cycle_would_be_caught(tmp_path, monkeypatch):
    """The check itself can fail: a package whose two modules import each other's names."""
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("from cyclepkg.a import A\n")
    (package / "a.py").write_text("from cyclepkg.b import B\nA = 1\n")
    (package / "b.py").write_text("from cyclepkg.a import A\nB = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ImportError" in _import_first("cyclepkg.b")


#: attnlab's layers, lowest first: a module may import only from its own layer's
#: package or from a lower layer (see the package docstring of ``attnlab``).
LAYERS = [
    {"_validate", "_io", "_openmp", "registry", "__version__"},
    {"functional", "positional", "tasks"},
    {"attention"},
    {"blocks"},
    {"config"},
    {"models", "visualize"},
    {"interop", "explanation", "training"},
    {"bench", "compat"},
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _imports_between_parts() -> list[tuple[str, str, str]]:
    """``(importing part, imported part, importing module)`` for every attnlab import."""
    import ast
    import pathlib

    root = pathlib.Path(attnlab.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        part = module.split(".")[1] if "." in module else "__init__"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                targets = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.ImportFrom):
                targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target.startswith("attnlab.") or (target == "attnlab" and node.level):
                    names = [target] if target != "attnlab" else \
                        [f"attnlab.{a.name}" for a in node.names]
                    for name in names:
                        imported = name.split(".")[1]
                        if imported != part and part != "__init__":
                            found.append((part, imported, module))
    return found


def test_parts_import_only_downward():
    edges = _imports_between_parts()
    assert edges, "the scan found no imports at all"
    unknown = {p for edge in edges for p in edge[:2]} - set(RANK)
    assert not unknown, f"parts missing from LAYERS: {unknown}"
    upward = [f"{module} ({part}) imports {imported}" for part, imported, module in edges
              if RANK[imported] >= RANK[part]]  # (parts of one layer do not import each other)
    assert not upward, "\n".join(upward)


def test_an_upward_import_would_be_caught():
    assert ("config", "attention", "attnlab.config") in _imports_between_parts()
    assert RANK["attention"] < RANK["config"]
