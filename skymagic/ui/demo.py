"""`skymagic demo`: start the demo fleet and run the quickstart notebook against it.

The quickstart is the product's story end to end (check, inventory, launch with failover,
lifecycle, dashboard). It runs with nbclient in a real kernel, the rendered HTML is written
next to the notebooks, and the key outputs are echoed to the terminal, so someone who has
just cloned the repository sees the whole thing work in one command.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from skymagic.errors import SkymagicError

__all__ = ["find_notebook", "run_demo", "run_notebook"]


def find_notebook(name: str) -> Path:
    """The repository's notebooks/NAME (the demo runs from a checkout)."""
    here = Path(__file__).resolve().parent.parent / "notebooks" / name
    if here.exists():
        return here
    cwd = Path.cwd() / "notebooks" / name
    if cwd.exists():
        return cwd
    raise SkymagicError(f"notebooks/{name} not found; run `skymagic demo` from a skymagic checkout")


def _terminal_text(outputs: list[dict[str, Any]]) -> list[str]:
    """The text/plain of a cell's outputs, as a terminal would show them."""
    lines: list[str] = []
    for out in outputs:
        if out.get("output_type") == "stream":
            lines.append(str(out.get("text", "")).rstrip("\n"))
        elif out.get("output_type") in ("execute_result", "display_data"):
            data = out.get("data", {})
            text = str(data.get("text/plain") or "")
            # Rich-only outputs (live progress, widgets, figures) have nothing to say in a terminal.
            if (
                text
                and not text.startswith("<IPython.core.display")
                and "widget" not in text.lower()
            ) and not text.startswith("<Figure"):
                lines.append(text.rstrip("\n"))
        elif out.get("output_type") == "error":
            lines.append(f"ERROR {out.get('ename')}: {out.get('evalue')}")
    return lines


def run_notebook(path: Path, env: dict[str, str], *, timeout: int = 600, echo: bool = False) -> Any:
    """Execute a notebook in a fresh kernel with `env`; return the executed notebook."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        raise SkymagicError(
            "running notebooks needs nbclient: pip install 'skymagic[demo]'"
        ) from None

    nb = nbformat.read(str(path), as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
                if echo and cell.cell_type == "code":
                    print(f"\n>>> {cell.source.strip().splitlines()[0] if cell.source else ''}")
                    for line in _terminal_text(cell.get("outputs", [])):
                        print(line)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


NOTEBOOKS = (
    "quickstart.ipynb",
    "inventory-analysis.ipynb",
    "real-clusters.ipynb",
    "dev-pods-and-jobs.ipynb",
)


def run_demo(
    output_dir: str = "notebooks/rendered", notebooks: tuple[str, ...] = ("quickstart.ipynb",)
) -> int:
    """Run notebooks against the demo fleet (the quickstart by default), render them to HTML."""
    code = 0
    for name in notebooks:
        code = max(code, _run_one(output_dir, name, echo=len(notebooks) == 1))
    return code


def _run_one(output_dir: str, notebook: str, *, echo: bool) -> int:
    """Start the demo fleet, execute one notebook, write its HTML, print the key tables."""
    from skymagic.sim import Fleet

    path = find_notebook(notebook)
    out_dir = Path(output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="skymagic-demo-home-"))
    started = time.monotonic()
    print("Starting the demo fleet (3 simulated Kubernetes clusters on 127.0.0.1)...")
    with Fleet("demo") as fleet:
        print(f"  contexts: {', '.join(fleet.contexts)}")
        sky = home / ".sky"
        sky.mkdir()
        (sky / "config.yaml").write_text(
            "kubernetes:\n  allowed_contexts:\n"
            + "".join(f"    - {c}\n" for c in fleet.contexts)
            + "  remote_identity: LOCAL_CREDENTIALS\n"
        )
        env = {
            "KUBECONFIG": fleet.kubeconfig,
            "HOME": str(home),
            "SKYPILOT_CONFIG": str(sky / "config.yaml"),
            "SKYMAGIC_DEMO": "1",
        }
        print(f"Running {path.name} against it...")
        try:
            nb = run_notebook(path, env, echo=echo)
        except Exception as exc:  # nbclient's CellExecutionError carries the cell's traceback
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
            print(f"\nThe quickstart failed: {last}", file=sys.stderr)
            return 1
    import nbformat
    from nbconvert import HTMLExporter

    ipynb_out = out_dir / path.name
    nbformat.write(nb, str(ipynb_out))
    html, _ = HTMLExporter().from_notebook_node(nb)
    html_out = out_dir / (path.stem + ".html")
    html_out.write_text(html, encoding="utf-8")
    print(f"\nDone in {time.monotonic() - started:.1f} s.")
    print(f"Rendered {path.stem}: {html_out}")
    return 0
