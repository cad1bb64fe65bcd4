import io
import json
import os
import re

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from attention_maps import CROSS, SELF, SRC, TGT, TOKENS, H, S, make_maps
from attnlab.visualize import attention_page, write_page


def embedded(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="attn-data">(.*?)</script>', page,
                      re.DOTALL)
    return json.loads(match.group(1))


# --- the HTML text -------------------------------------------------------------------


def test_page_embeds_every_module_with_its_own_labels_and_rounded_weights():
    maps = make_maps()
    data = embedded(attention_page(maps, TOKENS, batch_index=1))
    assert data["batch_index"] == 1
    assert [m["name"] for m in data["modules"]] == [SELF, CROSS]
    self_mod, cross_mod = data["modules"]
    assert (self_mod["queries"], self_mod["keys"]) == (TGT, TGT)
    assert (cross_mod["queries"], cross_mod["keys"]) == (TGT, SRC)
    for module in data["modules"]:
        weights = np.array(module["weights"])
        expected = maps[module["name"]][1].double().numpy()  # (H, L, S)
        assert weights.shape == expected.shape
        np.testing.assert_allclose(weights, expected, atol=5e-5 + 1e-12)
        np.testing.assert_allclose(weights * 1e4, np.round(weights * 1e4), atol=1e-6)


def test_page_is_self_contained():
    page = attention_page(make_maps(), TOKENS)
    assert page.startswith("<!DOCTYPE html>")
    for external in ("http:", "https:", "//cdn", "src=", "href=", "@import", "url(", "<link"):
        assert external not in page


def test_title_and_tokens_cannot_inject_markup():
    nasty = "</script><script>alert(1)</script>"
    page = attention_page(torch.eye(2), [nasty, "<b>"], title="<i>t</i>")
    assert "<i>t</i>" not in page
    assert "&lt;i&gt;t&lt;/i&gt;" in page
    assert page.count("</script>") == 2  # the data block and the code block, nothing more
    assert embedded(page)["modules"][0]["queries"] == [nasty, "<b>"]


def test_write_page_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "attn.html"
    assert write_page(make_maps(), TOKENS, path) == path
    first = path.read_text(encoding="utf-8")
    assert first == attention_page(make_maps(), TOKENS)
    with pytest.raises(FileExistsError, match=r"attn\.html already exists; pass force=True"):
        write_page(make_maps(), TOKENS, path, title="other")
    assert path.read_text(encoding="utf-8") == first
    write_page(make_maps(), TOKENS, path, title="other", force=True)
    assert "<title>other</title>" in path.read_text(encoding="utf-8")
    assert os.listdir(tmp_path) == ["attn.html"]


def test_a_failing_write_keeps_the_old_page_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "attn.html"
    path.write_text("the page the user kept", encoding="utf-8")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the writer flushes to disk before renaming
    with pytest.raises(OSError, match=r"No space left on device: .*attn\.html"):
        write_page(make_maps(), TOKENS, path, force=True)
    assert path.read_text(encoding="utf-8") == "the page the user kept"
    assert os.listdir(tmp_path) == ["attn.html"]


@pytest.mark.parametrize(("tokens", "key_tokens", "message"), [
    ({SELF: TGT}, None, r"tokens has no labels for modules \['decoder.layers.1.cross_attn'\]"),
    (TGT, None, r"tokens \(used as key_tokens\) has 7 labels but .*cross_attn' has S=11"),
    (TOKENS, SRC, r"key_tokens must be None when tokens is a dict"),
    ({SELF: TGT[:3], CROSS: (TGT, SRC)}, None, r"tokens\['decoder.layers.0.self_attn'\] "
                                               r"queries has 3 labels but .* L=7"),
])
def test_label_errors_name_the_argument(tokens, key_tokens, message):
    with pytest.raises(ValueError, match=message):
        attention_page(make_maps(), tokens, key_tokens=key_tokens)


def test_batch_index_out_of_range():
    with pytest.raises(ValueError, match=r"batch_index 2 is out of range for batch size 2"):
        attention_page(make_maps(), TOKENS, batch_index=2)


# --- the page in a real browser --------------------------------------------------------

@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    return write_page(make_maps(), TOKENS, tmp_path_factory.mktemp("page") / "attn.html")


@pytest.fixture
def page(browser, page_file):
    tab = browser.new_page(viewport={"width": 1280, "height": 800})
    tab.requests, tab.messages = [], []
    tab.on("request", lambda request: tab.requests.append(request.url))
    tab.on("console", lambda message: tab.messages.append(f"{message.type}: {message.text}"))
    tab.on("pageerror", lambda error: tab.messages.append(f"pageerror: {error}"))
    tab.goto(page_file.resolve().as_uri())
    tab.wait_for_selector("body[data-ready=true]")
    yield tab
    tab.close()


def matrix(tab) -> np.ndarray:
    cells = tab.eval_on_selector_all(
        "#matrix td.cell",
        "cs => cs.map(c => [+c.dataset.row, +c.dataset.col, +c.dataset.weight])")
    rows, cols = max(c[0] for c in cells) + 1, max(c[1] for c in cells) + 1
    out = np.full((rows, cols), np.nan)
    for i, j, w in cells:
        out[i, j] = w
    return out


def test_page_loads_offline_without_errors(page, page_file):
    assert page.requests == [page_file.resolve().as_uri()]
    assert page.messages == []
    assert page.title() == "attnlab"
    options = page.eval_on_selector_all("#layer option", "os => os.map(o => o.textContent)")
    assert [o.split()[0] for o in options] == [SELF, CROSS]


def test_switching_layer_and_head_redraws_the_weights(page):
    maps = make_maps()
    np.testing.assert_allclose(matrix(page), maps[SELF][0, 0].numpy(), atol=1e-3)
    seen = []
    for layer, name in enumerate((SELF, CROSS)):
        page.select_option("#layer", str(layer))
        for head in range(H):
            page.select_option("#head", str(head))
            drawn = matrix(page)
            np.testing.assert_allclose(drawn, maps[name][0, head].numpy(), atol=1e-3)
            seen.append(drawn.tobytes())
            keys = page.eval_on_selector_all(".key-token", "ks => ks.map(k => k.textContent)")
            assert keys == (SRC if name == CROSS else TGT)
    assert len(set(seen)) == 2 * H  # every head drew something different
    assert page.messages == []


def test_hovering_a_query_draws_its_row_and_highlights_its_top_keys(page):
    maps = make_maps()
    page.select_option("#layer", "1")
    page.select_option("#head", "2")
    for i in (0, 4):
        page.hover(f".query-token[data-index='{i}']")
        row = maps[CROSS][0, 2, i].numpy()
        lines = page.eval_on_selector_all(
            "#lines line.attn-line",
            "ls => ls.map(l => [+l.dataset.query, +l.dataset.key, +l.dataset.weight])")
        assert [(q, k) for q, k, _ in lines] == [(i, j) for j in range(S)]
        np.testing.assert_allclose([w for _, _, w in lines], row, atol=1e-3)
        key_weights = page.eval_on_selector_all(".key-token",
                                                "ks => ks.map(k => +k.dataset.weight)")
        np.testing.assert_allclose(key_weights, row, atol=1e-3)
        top = page.eval_on_selector_all(".key-token.top", "ks => ks.map(k => +k.dataset.index)")
        assert top == [int(row.argmax())]
        assert page.get_attribute(f".query-token[data-index='{i}']", "class").endswith("focused")
    page.mouse.move(1200, 780)  # leave: back to the overview, no key highlighted
    assert page.eval_on_selector_all(".key-token.top", "ks => ks.length") == 0


def test_matrix_tooltip_gives_the_weight_and_a_screenshot_is_not_blank(page, tmp_path):
    maps = make_maps()
    page.select_option("#layer", "1")
    page.hover("#matrix td.cell[data-row='5'][data-col='3']")
    weight = float(maps[CROSS][0, 0, 5, 3])
    assert page.inner_text("#tooltip") == f"{TGT[5]} → {SRC[3]}: {weight:.4f}"
    png = page.screenshot(full_page=True)
    (tmp_path / "page.png").write_bytes(png)
    pixels = imread(io.BytesIO(png), format="png")
    assert pixels.shape[1] == 1280
    assert pixels[..., :3].var() > 0.005
    assert page.messages == []


def test_switching_head_or_layer_hides_the_tooltip_of_the_old_map(page):
    for change in (lambda: page.select_option("#head", "1"),
                   lambda: page.select_option("#layer", "1")):
        page.hover("#matrix td.cell[data-row='2'][data-col='3']")
        assert page.is_visible("#tooltip")
        change()
        assert not page.is_visible("#tooltip")  # it described a cell that is gone
    assert page.messages == []


def alphas(tab) -> np.ndarray:
    values = tab.eval_on_selector_all(
        "#matrix td.cell", "cs => cs.map(c => [+c.dataset.weight, c.style.background])")
    return np.array([[w, float(bg.split(",")[-1].rstrip(")"))] for w, bg in values])


def test_colour_scale_is_shared_by_default_and_the_choice_is_visible(page):
    maps = make_maps()
    assert page.eval_on_selector("#scale", "s => s.value") == "shared"
    assert "shared 0–1" in page.inner_text("#scale-max")
    pairs = alphas(page)
    np.testing.assert_allclose(pairs[:, 1], 0.02 + 0.98 * pairs[:, 0], atol=1e-3)
    page.select_option("#scale", "head")
    top = float(maps[SELF][0, 0].max())
    assert "this head's maximum" in page.inner_text("#scale-max")
    assert float(page.get_attribute("#matrix", "data-max")) == pytest.approx(top, abs=1e-4)
    pairs = alphas(page)
    np.testing.assert_allclose(pairs[:, 1], 0.02 + 0.98 * pairs[:, 0] / top, atol=2e-3)
    assert page.messages == []
