"""From a user's seat: a notebook run by nbclient does `%load_ext skymagic` then `%sky_check`.

The kernel is a real ipykernel process with KUBECONFIG at the demo fleet and a clean HOME, so
this is what a user of the quickstart sees, down to the text/plain and text/html outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from skymagic.sim import Fleet


def test_notebook_shows_the_check_tree(demo_fleet: Fleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".sky").mkdir()
    (home / ".sky" / "config.yaml").write_text(
        "kubernetes:\n  allowed_contexts: all\n  remote_identity: LOCAL_CREDENTIALS\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext skymagic"),
        nbformat.v4.new_code_cell("%sky_check"),
        nbformat.v4.new_code_cell("r = %sky_check\nprint(type(r).__name__, r.enabled)"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    env = {k: v for k, v in os.environ.items() if k not in ("SKYPILOT_CONFIG",)}
    env.update(HOME=str(home), KUBECONFIG=demo_fleet.kubeconfig)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)

    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    check_out = nb.cells[1].outputs
    assert len(check_out) == 1 and check_out[0]["output_type"] == "execute_result"
    text = check_out[0]["data"]["text/plain"]
    html = check_out[0]["data"]["text/html"]
    assert "Kubernetes: enabled" in text and "Allowed contexts:" in text
    for ctx in demo_fleet.contexts:
        assert f"{ctx}: enabled." in text
        assert f"{ctx}: enabled." in html
    assert "Warning" not in text  # LOCAL_CREDENTIALS set, every GPU node labelled
    assert nb.cells[2].outputs[0]["text"].strip() == "CheckReport True"
