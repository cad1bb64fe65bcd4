"""The explanation page: self-contained, every step in order, and a slider that is softmax(S·t + M).

The browser tests run in headless Chromium (``.ci/install-browser``) like
``tests/visualize/test_page.py``.
"""

import io
import json
import re

import numpy as np
import pytest
import torch
from matplotlib.image import imread

import attnlab as al
from attnlab.config import ModelConfig
from attnlab.explanation.page import explanation_page, write_explanation_page
from attnlab.models import DecoderLM

TOKENS = ["<s>", "the", "cat", " ", "sat"]


@pytest.fixture(scope="module")
def made():
    torch.manual_seed(0)
    lm = DecoderLM(ModelConfig(vocab_size=9, embed_dim=12, num_heads=3, num_layers=2,
                               positions="alibi")).double()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    ex = al.explain(lm, ids, layer=1, head=2)
    ex = ex.with_tokens(TOKENS)
    with torch.no_grad(), al.capture_attention(lm) as maps:
        lm(ids)
    return ex, dict(maps)


def embedded(page):
    match = re.search(r'<script type="application/json" id="explain-data">(.*?)</script>', page,
                      re.DOTALL)
    return json.loads(match.group(1))


def test_page_embeds_every_step_and_is_self_contained(made):
    ex, maps = made
    page = explanation_page(ex, grid=maps, command="attnlab explain m --layer {layer} "
                                                   "--head {head}", title="<b>t</b>")
    data = embedded(page)
    assert [s["name"] for s in data["steps"]] == ex.names
    assert data["steps"][ex.names.index("scores")]["values"] == ex["scores"].tolist()
    mask = data["steps"][ex.names.index("mask")]["values"]
    assert mask[0][1] is None  # -inf (hidden by causality) is null in JSON
    assert mask[1][0] == float(ex["mask"][1, 0]) < 0  # an ALiBi bias
    assert len(data["grid"]) == 2
    assert len(data["grid"][0]["heads"]) == 3
    assert "<b>t</b>" not in page
    for external in ("http:", "https:", "//cdn", "src=", "@import", "url(", "<link"):
        assert external not in page


def test_write_refuses_to_overwrite(made, tmp_path):
    ex, _ = made
    path = write_explanation_page(ex, tmp_path / "e.html")
    first = path.read_text(encoding="utf-8")
    with pytest.raises(FileExistsError, match="already exists"):
        write_explanation_page(ex, path, title="other")
    assert path.read_text(encoding="utf-8") == first
    write_explanation_page(ex, path, title="other", force=True)
    assert "<title>other</title>" in path.read_text(encoding="utf-8")


@pytest.fixture
def tab(browser, made, tmp_path):
    ex, maps = made
    path = write_explanation_page(ex, tmp_path / "explain.html", grid=maps,
                                  command="attnlab explain m --layer {layer} --head {head}")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.requests, page.messages = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda message: page.messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.messages.append(f"pageerror: {error}"))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-ready=true]")
    page.uri = path.resolve().as_uri()
    yield page
    page.close()


def live(tab):
    return np.array(json.loads(tab.get_attribute("#live", "data-values")))


def set_t(tab, t):
    tab.eval_on_selector("#temp", "(e, t) => { e.value = String(t); "
                                  "e.dispatchEvent(new Event('input')); }", t)


def test_steps_in_order_offline_without_errors(tab, made):
    ex, _ = made
    names = tab.eval_on_selector_all("section.step", "ss => ss.map(s => s.dataset.step)")
    assert names == ex.names
    assert tab.requests == [tab.uri]
    assert tab.messages == []
    shape = tab.eval_on_selector("section.step[data-step=weights] canvas.heat",
                                 "c => [+c.dataset.rows, +c.dataset.cols]")
    assert shape == [5, 5]


def test_slider_recomputes_softmax_of_scores_times_t(tab, made):
    ex, _ = made
    np.testing.assert_allclose(live(tab), ex["weights"].numpy(), atol=1e-12)  # the model's t
    scores, mask = ex["scores"], ex["mask"]
    for t in (0.0, 0.05, 1.0, 1.9):
        set_t(tab, t)
        expected = torch.softmax(scores * t + mask, dim=-1).numpy()
        np.testing.assert_allclose(live(tab), expected, atol=1e-12)
        assert float(tab.get_attribute("#live", "data-t")) == t
    tab.click("text=t = 1 (no scaling)")
    np.testing.assert_allclose(live(tab), torch.softmax(scores + mask, -1).numpy(), atol=1e-12)
    tab.click("text=model's scale")
    np.testing.assert_allclose(live(tab), ex["weights"].numpy(), atol=1e-12)
    assert tab.messages == []


def test_hover_gives_the_value_and_a_thumbnail_gives_its_command(tab, made, tmp_path):
    ex, _ = made
    canvas = tab.locator("section.step[data-step=weights] canvas.heat").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    # the last cell of the last row is at the bottom-right corner (2 px margin)
    tab.mouse.move(box["x"] + box["width"] - 6, box["y"] + box["height"] - 6)
    text = tab.inner_text("#tooltip")
    assert text == f"sat · sat: {float(ex['weights'][4, 4]):.4f}"
    tab.click("#grid canvas.thumb[data-layer='0'][data-head='1']")
    assert "attnlab explain m --layer 0 --head 1" in tab.inner_text("#pick")
    selected = tab.eval_on_selector_all("#grid canvas.thumb.selected",
                                        "cs => cs.map(c => [+c.dataset.layer, +c.dataset.head])")
    assert selected == [[1, 2]]
    png = tab.screenshot(full_page=True)
    (tmp_path / "explain.png").write_bytes(png)
    pixels = imread(io.BytesIO(png), format="png")
    assert pixels[..., :3].var() > 0.002
    assert tab.messages == []
