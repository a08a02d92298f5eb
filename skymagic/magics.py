"""IPython magics: `%sky_check`, `%sky_show_gpus`, `%%sky_launch`, ... (presentation only).

Magics parse flags (`magic_arguments`, so `%sky_check?` documents every flag and a bad flag is a
one-line UsageError), call the core, display the result and return it (`r = %sky_check`).
Session settings are traitlets on `SkyMagics`: `%config SkyMagics.request_timeout = 3`.
Domain errors are SkymagicError subclasses, whose `_render_traceback_` shows one readable line
and still fails the cell.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Float, Int, List, Unicode, Union

if TYPE_CHECKING:
    from skymagic.fleet import Settings

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

    # -- plumbing ------------------------------------------------------------------------
    def settings(self, timeout: float | None = None) -> Settings:
        """The core's Settings from this session's traitlets (and a per-call timeout)."""
        from skymagic.api import ClientSettings
        from skymagic.fleet import Settings

        allowed: tuple[str, ...] | Literal["all"] | None
        if self.allowed_contexts is None:
            allowed = None
        elif isinstance(self.allowed_contexts, str):
            allowed = "all" if self.allowed_contexts == "all" else (self.allowed_contexts,)
        else:
            allowed = tuple(self.allowed_contexts)
        kubeconfig = None
        if self.kubeconfig:
            kubeconfig = tuple(p for p in self.kubeconfig.split(os.pathsep) if p)
        return Settings(
            client=ClientSettings(
                request_timeout=timeout or self.request_timeout,
                retries=self.retries,
                exec_timeout=self.exec_timeout,
            ),
            kubeconfig=kubeconfig,
            config_file=self.config_file,
            allowed_contexts=allowed,
        )

    # -- magics ----------------------------------------------------------------------------
    @magic_arguments()
    @argument(
        "--infra",
        default=None,
        help="Which contexts: 'k8s' (every allowed context, the default) or 'k8s/CONTEXT' "
        "(one context; everything after 'k8s/' is the name, so names may contain '/').",
    )
    @argument(
        "--timeout",
        type=float,
        default=None,
        help="Seconds per API request for this call (default: %%config SkyMagics.request_timeout).",
    )
    @no_var_expand
    @line_magic
    def sky_check(self, line: str) -> Any:
        """Check which allowed Kubernetes contexts are usable, in parallel.

        For each context: reachable, authenticated, allowed to list nodes / list pods in all
        namespaces / create pods, GPU nodes and their labels, exec-auth advice. Shows the
        SkyPilot-style tree (the cell's output) and returns a CheckReport:
        `r = %sky_check` keeps it quietly; `r.to_frame()` is a DataFrame.
        """
        from skymagic.check import check

        args = parse_argstring(self.sky_check, line)
        return check(self.settings(args.timeout), infra=args.infra)

    @magic_arguments()
    @line_magic
    def sky_info(self, line: str) -> str:
        """Show skymagic's version."""
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
