"""``attnlab models``: every registered name, with its line, in-process and as a real command."""

import subprocess
import sys

import pytest

from attnlab.cli.main import main
from attnlab.cli.model_ref import SHORT_NAMES
from attnlab.cli.models import sections
from attnlab.interop.hf import ARCHITECTURES
from attnlab.registry import ATTENTION, FFNS, NORMS, POSITIONS, PRESETS, TASKS
from attnlab.training.recipes import RECIPES


def _expected_rows():
    rows = [(e.name, f"{e.help} [{e.obj.summary()}]") for e in ATTENTION.entries()]
    rows += [(name, choice.help) for name, choice in RECIPES.items()]
    for registry in (TASKS, POSITIONS, NORMS, FFNS, PRESETS):
        rows += [(entry.name, entry.help) for entry in registry.entries()]
    rows += [(arch.model_type, f"{', '.join(arch.heads)}: {arch.features}")
             for arch in ARCHITECTURES.values()]
    return rows + [(name, f"{ref.help} [{ref.package}]") for name, ref in SHORT_NAMES.items()]


def test_sections_cover_every_registry():
    sections()  # imports the modules that fill the registries
    listed = [row for _, rows in sections() for row in rows]
    assert sorted(listed) == sorted(_expected_rows())
    assert all(help_text for _, help_text in listed)
    for registry in (ATTENTION, TASKS, POSITIONS, NORMS, FFNS, PRESETS):
        assert len(registry) > 0


def test_prints_every_name_with_its_help(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, help_text in _expected_rows():
        assert any(line.split() and line.split()[0] == name and line.endswith(help_text)
                   for line in lines), name
    for title in ("recipes", "tasks", "positional schemes", "attention mechanisms", "norms",
                  "feed-forward", "model presets", "pretrained models"):
        assert any(line.startswith(title) for line in lines), title


def test_extra_arguments_are_an_error(capsys):
    assert main(["models", "extra"]) == 2
    assert "unrecognized arguments: extra" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["models"]])
def test_python_dash_m_attnlab(argv):
    result = subprocess.run([sys.executable, "-m", "attnlab", *argv], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for name in ("multihead", "gqa", "causal", "reverse", "dates", "rotary", "rmsnorm", "swiglu",
                 "llama"):
        assert name in result.stdout
