"""IPython magics: `%sky_check`, `%sky_show_gpus`, `%%sky_launch`, ... (presentation only).

Magics parse flags (`magic_arguments`, so `%sky_check?` documents every flag and a bad flag is a
one-line UsageError), call the core, display the result and return it (`r = %sky_check`).
Session settings are traitlets on `SkyMagics`: `%config SkyMagics.request_timeout = 3`.
Domain errors are SkymagicError subclasses, whose `_render_traceback_` shows one readable line
and still fails the cell.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Float, Int, List, Unicode, Union

__all__ = ["SkyMagics", "load", "unload"]


@magics_class
class SkyMagics(Magics):
    """skymagic's magics and their session settings."""

    request_timeout = Float(
        5.0,
        help="Seconds to wait for one API request (connect and read) before a context is "
        "'timeout'.",
    ).tag(config=True)
    exec_timeout = Float(
        30.0, help="Seconds an exec credential plugin (gke-gcloud-auth-plugin, aws) may run."
    ).tag(config=True)
    retries = Int(2, help="Retries for idempotent requests that failed in a retriable way.").tag(
        config=True
    )
    allowed_contexts = Union(
        [List(Unicode()), Unicode()],
        default_value=None,
        allow_none=True,
        help="Override kubernetes.allowed_contexts for this session: a list (failover order) "
        "or 'all'.",
    ).tag(config=True)
    kubeconfig = Unicode(
        None,
        allow_none=True,
        help="A KUBECONFIG path list for this session (default: $KUBECONFIG).",
    ).tag(config=True)
    config_file = Unicode(
        None,
        allow_none=True,
        help="The skymagic/SkyPilot config file (default: $SKYPILOT_CONFIG or ~/.sky/config.yaml).",
    ).tag(config=True)

    @magic_arguments()
    @argument("--version", action="store_true", help="Print skymagic's version.")
    @line_magic
    def sky_info(self, line: str) -> str:
        """Show skymagic's version and the session settings."""
        from skymagic import __version__

        parse_argstring(self.sky_info, line)
        return f"skymagic {__version__}"


_registered: list[Any] = []


def load(ipython: Any) -> None:
    """Register the magics on this shell (idempotent)."""
    magics = SkyMagics(shell=ipython)
    ipython.register_magics(magics)
    _registered.append(magics)


def unload(ipython: Any) -> None:
    """Remove the magics this module registered."""
    mm = ipython.magics_manager
    for kind in ("line", "cell"):
        table = mm.magics[kind]
        for name in [n for n, fn in table.items() if getattr(fn, "__self__", None) in _registered]:
            del table[name]
    mm.registry.pop("SkyMagics", None)
    _registered.clear()
