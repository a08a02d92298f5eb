"""The node grid's JavaScript (widgets/node_grid.js) drawing the view's cells, in Chromium.

view.py decides what a cell says; this checks that the browser draws it: a blank page with
dashboard.css, the module loaded as anywidget loads it, and a stand-in for anywidget's model
holding the traits `view.frame` gives (no kernel, no Jupyter); then the DOM is read back.
Skips where chromium or Playwright is missing, as the browser test does (never
`playwright install`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from dashkit import jobs_inventory

from skymagic.ui.dashboard.view import Filters, build_view, frame
from skymagic.ui.dashboard.widgets import widget_asset

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
_MISSING = (
    "chromium is not installed (Debian: apt-get install -y chromium)"
    if CHROMIUM is None
    else "playwright (Python) is not installed: pip install -e '.[browser]'"
    if importlib.util.find_spec("playwright") is None
    else None
)
pytestmark = [pytest.mark.browser, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

# anywidget's part: import the module, hand `render` a model and an element.
_LOAD = """async (src) => {
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  window.skyGrid = (await import(url)).default;
}"""
_RENDER = """(traits) => {
  const state = { ...traits, selected: {}, rendered: 0 };
  const handlers = {};
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; for (const f of handlers["change:" + k] || []) f(); },
    save_changes() {},
    on(e, f) { (handlers[e] = handlers[e] || []).push(f); },
    off() {},
  };
  window.skyState = state;
  window.skyGrid.render({ model, el: document.getElementById("el") });
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            css = widget_asset("dashboard.css").read_text(encoding="utf-8")
            page.set_content(f"<style>{css}</style><div id='el'></div>")
            page.evaluate(_LOAD, widget_asset("node_grid.js").read_text(encoding="utf-8"))
            yield page
            assert not errors, errors
        finally:
            browser.close()


def draw(page: Any, filters: Filters) -> list[dict[str, Any]]:
    out = frame(build_view(jobs_inventory(), {}, all_nodes=False, took_s=0.0), filters)
    page.evaluate("() => { document.getElementById('el').replaceChildren(); }")
    page.evaluate(_RENDER, {"sections": out.sections, "nodes": out.nodes})
    return out.nodes


def test_a_cell_held_by_managed_jobs_shows_their_tag_and_how_to_stop_them(page: Any) -> None:
    cells = draw(page, Filters())
    grid = page.locator(".sky-grid .sky-node")
    assert grid.count() == len(cells) == 3  # the tag is no cell of its own
    held = page.locator(".sky-node[data-node='a-0']")
    assert held.locator(".sky-node-job").inner_text() == "5"
    assert held.get_attribute("title").splitlines()[-1] == (
        "managed job 5: %sky_jobs_cancel 5 stops it"
    )
    several = page.locator(".sky-node[data-node='b-mix']")
    assert several.locator(".sky-node-job").inner_text() == "3+"
    assert "managed jobs 3, 12: %sky_jobs_cancel 3 12 stops them" in several.get_attribute("title")
    free = page.locator(".sky-node[data-node='a-1']")
    assert free.locator(".sky-node-job").count() == 0 and "managed" not in free.get_attribute(
        "title"
    )
    assert "blue tag N: managed job N" in page.locator(".sky-legend").inner_text()
    # A small tag on the cell's top-right corner: the free count stays readable beside it.
    cell, tag = held.bounding_box(), held.locator(".sky-node-job").bounding_box()
    assert tag["width"] < cell["width"] and tag["height"] < cell["height"] / 2
    assert tag["x"] > cell["x"] + cell["width"] / 2 and tag["y"] < cell["y"]
    # A click on the tag (which juts out of the cell) is a click on its node.
    held.locator(".sky-node-job").click()
    assert page.evaluate("() => window.skyState.selected") == {"context": "a", "node": "a-0"}


def test_without_jobs_shown_there_is_no_tag_and_no_legend_for_it(page: Any) -> None:
    cells = draw(page, Filters(min_free=8))  # a-1 only
    assert [c["node"] for c in cells] == ["a-1"]
    assert page.locator(".sky-node-job").count() == 0
    assert "managed job" not in page.locator(".sky-legend").inner_text()
