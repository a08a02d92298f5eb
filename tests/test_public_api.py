"""skymagic's public surface: `__all__` is locked, every name in it resolves, importing is cheap.

Like httpx's tests/test_exported_members.py: a name joins or leaves the public API only by
changing the list below, on purpose. Everything under skymagic.core, .gpus, .launches and .ui is
internal and may move; these names may not.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import skymagic

PUBLIC = [
    "ApiError",
    "AuthError",
    "CheckReport",
    "ConfigError",
    "Dashboard",
    "ExecPluginError",
    "ForbiddenError",
    "Inventory",
    "InventoryWatcher",
    "KubeconfigError",
    "LaunchError",
    "LaunchResult",
    "Plan",
    "PolicyError",
    "ProvisionFailedError",
    "RequestTimeoutError",
    "Settings",
    "SimError",
    "SkymagicError",
    "Task",
    "TransportError",
    "UnauthorizedError",
    "__version__",
    "check",
    "dashboard",
    "down",
    "exec",
    "jobs",
    "launch",
    "load_ipython_extension",
    "logs",
    "show_gpus",
    "status",
    "unload_ipython_extension",
]
HEAVY = ("kubernetes", "pandas", "ipywidgets", "anywidget", "IPython", "urllib3", "yaml", "msgspec")


def test_all_is_locked() -> None:
    assert skymagic.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(skymagic, name)
    if name == "__version__":
        assert isinstance(value, str) and value
        return
    if name == "jobs":  # a namespace of operations, not a function
        assert {"launch", "queue", "logs", "cancel"} <= set(value.__all__)
        assert all(callable(getattr(value, op)) for op in ("launch", "queue", "logs", "cancel"))
        return
    assert callable(value), name
    assert value.__module__.startswith("skymagic"), (name, value.__module__)
    assert name.startswith("_") or inspect.getdoc(value), f"{name} has no docstring"


def test_every_public_attribute_is_in_all() -> None:
    """The facade defines nothing public that `__all__` leaves out (its helpers are private)."""
    extra = []
    for name in dir(skymagic):
        if name.startswith("_") or name in PUBLIC:
            continue
        value = getattr(skymagic, name)
        if inspect.ismodule(value):  # subpackages bound by `import skymagic.core...`
            continue
        if not str(getattr(value, "__module__", "")).startswith("skymagic"):
            continue  # typing helpers (Any, TYPE_CHECKING) the facade imports for itself
        extra.append(name)
    assert not extra, f"public but not in __all__: {extra}"


def _imported_after(code: str) -> dict[str, list[str]]:
    """Run `code` in a fresh interpreter; the top-level packages it imported, by origin."""
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "import json\n"
        "new = sorted({m.split('.')[0] for m in set(sys.modules) - before})\n"
        "print(json.dumps({'new': new, 'stdlib': sorted(sys.stdlib_module_names)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    stdlib = set(data["stdlib"])
    new = [m for m in data["new"] if m.lstrip("_") not in stdlib and m not in stdlib]
    return {"third_party": [m for m in new if m != "skymagic"], "all": data["new"]}


def test_import_skymagic_imports_only_the_standard_library() -> None:
    """`import skymagic` must stay cheap: kubernetes, pandas and the widgets load on first use."""
    imported = _imported_after("import skymagic")
    assert imported["third_party"] == [], imported
    assert not set(HEAVY) & set(imported["all"])


def test_load_ext_stays_light() -> None:
    """`%load_ext skymagic` registers the magics without paying for kubernetes, pandas or widgets."""
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "before = set(sys.modules)\n"
        "ip.run_line_magic('load_ext', 'skymagic')\n"
        "assert ip.find_line_magic('sky_check') is not None\n"
    )
    imported = _imported_after(code)
    assert not {"kubernetes", "pandas", "ipywidgets", "anywidget"} & set(imported["all"]), imported
