"""The README's Python examples run and print what they say."""

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {})
    for claim in re.findall(r"print\(.*?\)\s+# (.*)", BLOCKS[index]):
        expected = claim.split(":")[0].strip()
        assert expected in out.getvalue(), (claim, out.getvalue())
