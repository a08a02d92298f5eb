"""The dashboard in a real browser: JupyterLab 4 on loopback, Debian's Chromium via Playwright.

The test starts its own demo fleet and a JupyterLab server (127.0.0.1, a token, a free port,
`--allow-root`) whose kernels see the fleet's KUBECONFIG; opens a notebook (with kernelspec
metadata, so no "Select Kernel" dialog) that runs `%sky_dashboard`; and checks what a person
sees: one grid cell per GPU node, a filter narrowing the grid, and a cordon in the fleet showing
after a click on Refresh. A screenshot goes to artifacts/ (git-ignored).

Skips, saying why, where chromium, Playwright or JupyterLab is missing (`.ci/run` installs
Debian's chromium; `pip install -e '.[browser]'` the rest). Never `playwright install`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from skymagic.core.client import ClientSettings
from skymagic.core.targets import Settings
from skymagic.gpus.inventory import show_gpus
from skymagic.sim import Fleet

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (Debian: apt-get install -y chromium; .ci/run does it)"
    if importlib.util.find_spec("playwright") is None:
        return "playwright (Python) is not installed: pip install -e '.[browser]'"
    if importlib.util.find_spec("jupyterlab") is None:
        return "jupyterlab is not installed: pip install -e '.[browser]'"
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(_missing() is not None, reason=_missing() or ""),
    pytest.mark.timeout(120),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _notebook(path: Path) -> None:
    source = "%load_ext skymagic\ndash = %sky_dashboard --no-auto --interval 60\ndash"
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "dashboard",
                "metadata": {},
                "outputs": [],
                "source": source,
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))


@pytest.fixture
def lab(make_fleet: Callable[..., Fleet], tmp_path: Path) -> Iterator[tuple[str, Fleet, Path]]:
    """(URL of the notebook, the fleet, the server log): JupyterLab serving a dashboard notebook."""
    fleet = make_fleet("demo")
    home = tmp_path / "home"
    (home / ".sky").mkdir(parents=True)
    (home / ".sky" / "config.yaml").write_text("kubernetes:\n  allowed_contexts: all\n")
    work = tmp_path / "notebooks"
    work.mkdir()
    _notebook(work / "dashboard.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "HOME": str(home),
        "KUBECONFIG": fleet.kubeconfig,
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    env.pop("SKYPILOT_CONFIG", None)
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={work}",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {log_path.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r,
            ):
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"{base}/lab/tree/dashboard.ipynb?token={token}", fleet, log_path
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def _run_first_cell(page: Any) -> None:
    """Shift+Enter in the first cell until the kernel takes it ([*] or [1] in its prompt).

    The execution indicator can say idle a moment before the kernel's session is connected;
    a Shift+Enter then is dropped, so try again (with a deadline).
    """
    prompt = page.locator(".jp-Cell .jp-InputPrompt").first
    deadline = time.monotonic() + 40
    while True:
        page.locator(".jp-Cell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "el => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                arg=prompt.element_handle(),
                timeout=5_000,
            )
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def test_dashboard_in_jupyterlab(lab: tuple[str, Fleet, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=45_000)

    url, fleet, log_path = lab
    inv = show_gpus(
        Settings(
            client=ClientSettings(request_timeout=5.0),
            kubeconfig=(fleet.kubeconfig,),
            allowed_contexts="all",
        )
    )
    gpu_nodes = inv.nodes[inv.nodes["gpu"].notna()]
    expected_cells = gpu_nodes["node"].nunique()
    a100 = "my-a100-cluster"
    a100_cells = int((gpu_nodes["context"] == a100).sum())
    h100 = "my-h100-cluster"
    target = str(gpu_nodes[gpu_nodes["context"] == h100]["node"].iloc[0])
    assert 0 < a100_cells < expected_cells

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(45_000)
            try:
                page.goto(url)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                _run_first_cell(page)
                cells = page.locator(".sky-grid .sky-node")
                expect(cells).to_have_count(expected_cells)
                expect(page.locator(".sky-card")).to_have_count(len(inv.contexts))
                assert page.locator(".sky-card .sky-gpu-row").count() == len(inv.by_context)

                # a filter narrows the grid (the standard ipywidgets dropdown)
                context = page.locator(".widget-dropdown", has_text="context").locator("select")
                context.select_option(label=a100)
                expect(cells).to_have_count(a100_cells)
                expect(page.locator(".sky-grid-section")).to_have_count(1)
                context.select_option(label="all contexts")
                expect(cells).to_have_count(expected_cells)

                # a change in the fleet shows after Refresh
                node = page.locator(f".sky-node[data-context='{h100}'][data-node='{target}']")
                expect(node).not_to_have_class("sky-node sky-cordoned")
                fleet.cordon(h100, target)
                page.locator("button", has_text="Refresh").click()
                expect(node).to_have_attribute("data-status", "Cordoned")
                expect(node).to_have_class("sky-node sky-cordoned")

                # details on click
                node.click()
                expect(page.locator(".sky-details")).to_contain_text(target)
                page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            except Exception:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(ARTIFACTS / "dashboard-failure.png"), full_page=True)
                print(log_path.read_text()[-3000:])
                raise
        finally:
            browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
