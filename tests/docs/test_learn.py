"""docs/learn: every page's example runs and prints what the page says; every picture exists
and is drawn by docs/learn/make_pictures.py."""

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

LEARN = Path(__file__).resolve().parents[2] / "docs" / "learn"
PAGES = sorted(LEARN.glob("[0-9][0-9]-*.md"))
TOPICS = ["soft lookup", "√D", "Weightless", "projections", "Causal", "Cross-attention",
          "Multi-head", "Grouped-query", "Sliding-window", "Positions", "Transformer block",
          "Additive"]


def example(page: Path) -> tuple[str, str]:
    text = page.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```", text, re.S)
    assert match, f"{page.name} has no example followed by its output"
    return match.group(1), match.group(2)


def make_pictures():
    spec = importlib.util.spec_from_file_location("make_pictures", LEARN / "make_pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_path_has_every_idea_in_order_and_the_index_links_them():
    assert len(PAGES) == len(TOPICS)
    for page, topic in zip(PAGES, TOPICS, strict=True):
        assert topic in page.read_text(encoding="utf-8").splitlines()[0], page.name
    index = (LEARN / "README.md").read_text(encoding="utf-8")
    assert [m for m in re.findall(r"\]\((\d\d-[^)]+\.md)\)", index)] == [p.name for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_has_formula_shapes_and_its_example_prints_what_it_says(page):
    text = page.read_text(encoding="utf-8")
    assert "## The formula" in text
    assert "## Shapes" in text
    assert "| letter | meaning |" in text
    code, expected = example(page)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(page.name), "exec"), {"__name__": "__learn__"})
    assert out.getvalue().rstrip() == expected.rstrip()


def test_every_picture_exists_and_the_script_draws_it(tmp_path, monkeypatch):
    used = sorted({name for page in PAGES for name in
                   re.findall(r"\(images/([^)]+\.png)\)", page.read_text(encoding="utf-8"))})
    assert len(used) == len(PAGES)
    for name in used:
        assert (LEARN / "images" / name).is_file(), name
    module = make_pictures()
    assert sorted(module.PICTURES) == used
    monkeypatch.setattr(module, "HERE", tmp_path)
    module.main(["03", "09"])  # two cheap ones, redrawn from scratch
    assert sorted(p.name for p in tmp_path.iterdir()) == ["03-weightless.png", "09-window.png"]
