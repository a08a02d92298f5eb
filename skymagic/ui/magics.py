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

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Float, Int, List, TraitError, Unicode, Union, validate

from skymagic.ui.flags import (
    LAUNCH_FLAGS,
    TASK_FLAGS,
    check_seconds,
    launch_controls,
    positive_seconds,
    task_options,
)
from skymagic.ui.magic_args import cell_body, declare_flags, require_names, stream, unquote

if TYPE_CHECKING:
    from skymagic.core.targets import Settings

__all__ = ["SkyMagics", "load", "unload"]

# `--infra` as the read-only magics take it (values arrive through `_unquote`).
_INFRA = argument(
    "--infra",
    default=None,
    help="Which contexts: 'k8s' (every allowed context, the default) or 'k8s/CONTEXT' "
    "(one context; everything after 'k8s/' is the name, so names may contain '/'; quote a "
    "name with spaces).",
)
# `--timeout` as the read-only magics take it: a per-call request_timeout.
_REQUEST_TIMEOUT = argument(
    "--timeout",
    type=positive_seconds,
    default=None,
    help="Seconds per API request for this call (default: %%config SkyMagics.request_timeout).",
)


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
    retries = Int(
        2, min=0, help="Retries for idempotent requests that failed in a retriable way."
    ).tag(config=True)
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

    @validate("request_timeout", "exec_timeout")
    def _positive_seconds(self, proposal: Any) -> float:
        # Refused here, `%config SkyMagics.request_timeout = 0` is one error line at once;
        # accepted, it made every later request fail as a timeout.
        name = proposal["trait"].name
        try:
            return check_seconds(proposal["value"])
        except ValueError as exc:
            raise TraitError(f"SkyMagics.{name} {exc}; e.g. %config SkyMagics.{name} = 5") from None

    # -- plumbing ------------------------------------------------------------------------
    def settings(self, timeout: float | None = None) -> Settings:
        """The core's Settings from this session's traitlets (and a per-call timeout)."""
        from skymagic.core.client import ClientSettings
        from skymagic.core.targets import Settings

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
                request_timeout=self.request_timeout if timeout is None else timeout,
                retries=self.retries,
                exec_timeout=self.exec_timeout,
            ),
            kubeconfig=kubeconfig,
            config_file=self.config_file,
            allowed_contexts=allowed,
        )

    # -- magics ----------------------------------------------------------------------------
    @magic_arguments()
    @_INFRA
    @_REQUEST_TIMEOUT
    @no_var_expand
    @line_magic
    def sky_check(self, line: str) -> Any:
        """Check which allowed Kubernetes contexts are usable, in parallel.

        For each context: reachable, authenticated, allowed to list nodes / list pods in all
        namespaces / create pods, GPU nodes and their labels, exec-auth advice. Shows the
        SkyPilot-style tree (the cell's output) and returns a CheckReport:
        `r = %sky_check` keeps it quietly; `r.to_frame()` is a DataFrame.
        """
        from skymagic.health import check

        args = parse_argstring(self.sky_check, line)
        return check(self.settings(args.timeout), infra=unquote(args.infra))

    # -- launch and lifecycle ----------------------------------------------------------------
    def _observer(self, name: str | None = None) -> Any:
        """Launch progress: a live widget in a notebook kernel, plain lines in a terminal."""
        from skymagic.ui.progress import TextProgress

        if getattr(self.shell, "kernel", None) is None:
            return TextProgress()
        from skymagic.ui.launch_widget import LaunchProgressWidget

        return LaunchProgressWidget.show(name=name)

    @magic_arguments(name="%sky_launch")  # usage line shows the cell magic: %%sky_launch
    @argument(
        "name",
        nargs="?",
        default=None,
        help="Launch name (default: sky-XXXX-USER); unique per user.",
    )
    @declare_flags(TASK_FLAGS, LAUNCH_FLAGS)
    @argument(
        "-r",
        "--retry-until-up",
        dest="retry_until_up",
        action="store_true",
        default=None,
        help="When no context can take the task now, wait (watching every allowed context, "
        "creating nothing) and launch the moment one can; Ctrl-C cancels. The wait holds the "
        "kernel, even with --detach: a managed job (%%sky_jobs_launch) waits in its "
        "controller instead. Default: the config's retry_until_up.",
    )
    @argument(
        "--timeout-minutes",
        dest="timeout_minutes",
        type=float,
        default=None,
        metavar="N",
        help="With --retry-until-up: give up after N minutes of waiting (default: no bound).",
    )
    @argument(
        "--detach",
        action="store_true",
        help="Return once the pod is Running instead of streaming its log.",
    )
    @argument(
        "--dry-run",
        action="store_true",
        help="Show the plan (Considered resources) and return it as a DataFrame; create nothing.",
    )
    @argument(
        "--timeout",
        dest="provision_timeout",
        metavar="TIMEOUT",
        type=positive_seconds,
        default=None,
        help="Seconds each context gets to schedule the pod before failover "
        "(default: kubernetes.provision_timeout, 10).",
    )
    @argument(
        "--format",
        action="store_true",
        help="Expand {var} in the cell body from the notebook's variables "
        "(off by default so YAML braces survive).",
    )
    @no_var_expand
    @cell_magic
    def sky_launch(self, line: str, cell: str) -> Any:
        """Launch the cell on the first allowed Kubernetes context that can run it now.

        The cell is a shell script (the run command) or a SkyPilot task YAML (a mapping with
        SkyPilot task keys; never run as a script): each key is honoured, noted in the plan,
        or refused in one error listing every such key. Accelerator candidates ({H100: 8,
        A100: 8}, lists, any_of, ordered) get a plan row per context; `NAME: null` envs and
        secrets come from --env/--secret. Flags override the YAML. An empty cell starts a dev
        pod; re-running a cell whose launch finished replaces it. Shows the "Considered
        resources" plan, tries contexts in order (skipping those that cannot fit now) and
        streams the log. The LaunchResult is stored as `_sky_launch`; in a notebook the
        progress widget is the cell's output (its header ends in the final state), in a
        terminal the LaunchResult is also the cell's result. Interrupting before the pod runs
        deletes what the launch created; after, it detaches (once started, a task is never run
        elsewhere: a broken log stream is followed again).
        """
        from skymagic.launches import Plan, launch_task, parse_task

        args = parse_argstring(self.sky_launch, line)
        body = cell_body(self.shell, cell, args.format)
        task = parse_task(body, task_options(args, infra=unquote(args.infra)))
        observer = self._observer(task.name) if not args.dry_run else None
        result: Any = None
        error: BaseException | None = None
        try:
            result = launch_task(task, self.settings(), launch_controls(args), observer=observer)
            if not args.dry_run:
                from skymagic.ui.pod_magics import after_launch

                after_launch(result, task, self.settings())  # --ports: forwards from here
        except BaseException as exc:
            error = exc
            raise
        finally:
            # The widget's header ends in the final state; its saved output keeps it all.
            finish = getattr(observer, "finish", None)
            if finish is not None:
                finish(result, error)
        assert self.shell is not None
        self.shell.user_ns["_sky_launch"] = result
        if isinstance(result, Plan):
            return result.to_frame()
        if hasattr(observer, "finish"):
            return None  # the widget shows the result; a text result would repeat it
        return result

    @magic_arguments()
    @argument("--infra", default=None, help="'k8s' (all allowed contexts) or 'k8s/CONTEXT'.")
    @argument("--mine", action="store_true", help="Only my launches (default: everyone's).")
    @argument(
        "--ranks", action="store_true", help="One row per pod (each rank of multi-node launches)."
    )
    @line_magic
    def sky_status(self, line: str) -> Any:
        """skymagic workloads across all allowed contexts (a DataFrame in `.frame`).

        One row per launch; `nodes` says how many of its ranks run (e.g. 2/2 running).
        """
        from skymagic.launches import status

        args = parse_argstring(self.sky_status, line)
        return status(
            self.settings(),
            infra=unquote(args.infra),
            all_users=not args.mine,
            ranks=args.ranks,
        )

    @magic_arguments()
    @argument("name", help="The launch name.")
    @argument(
        "--follow",
        "-f",
        action="store_true",
        help="Keep streaming until the task ends (a stalled or broken stream is followed again).",
    )
    @argument("--tail", type=int, default=None, help="Only the last N lines.")
    @argument(
        "--rank", type=int, default=None, help="A multi-node launch: rank N's log (default 0)."
    )
    @line_magic
    def sky_logs(self, line: str) -> None:
        """Print a launch's log (found in whichever allowed context runs it)."""
        from skymagic.launches import logs

        args = parse_argstring(self.sky_logs, line)
        stream(
            logs(args.name, self.settings(), follow=args.follow, tail=args.tail, rank=args.rank),
            f"(stopped following; the task keeps running: %sky_down {args.name} stops it)",
        )

    @magic_arguments()
    @argument("names", nargs="*", help="Launch names to stop.")
    @argument("--all", action="store_true", help="Stop all of my launches.")
    @argument(
        "--force",
        action="store_true",
        help="Also delete managed jobs' pods (refused otherwise: the jobs controller counts it "
        "as a disruption and relaunches the job elsewhere; %%sky_jobs_cancel stops a job).",
    )
    @line_magic
    def sky_down(self, line: str) -> Any:
        """Delete launches (pods, Services, Secrets) in every allowed context; no questions.

        A managed job's pod is refused (its controller would relaunch the job): cancel the
        job with %sky_jobs_cancel N, or pass --force to delete the pod and let the job recover.
        """
        from skymagic.launches import down

        args = parse_argstring(self.sky_down, line)
        require_names(args, "the launches to stop")
        deleted = down(list(args.names), self.settings(), all_mine=args.all, force=args.force)
        for launch, job in deleted.kept:
            print(f"kept {launch}: the pod of managed job {job} (%sky_jobs_cancel {job} stops it)")
        for ctx, kind, what in deleted:
            print(f"deleted {kind} {what} in {ctx}")
        for ctx, message in deleted.errors:
            print(f"could not check {ctx}: {message}")
        return deleted

    @magic_arguments()
    @argument(
        "gpu",
        nargs="?",
        default=None,
        help="Only this GPU, as NAME or NAME:N (e.g. H100, h100:8, 'A100-80GB:4'): rows for "
        "that GPU on nodes with at least N of them. Names are matched exactly after "
        "normalisation ('h100' is H100; 'A100' never matches A100-80GB).",
    )
    @_INFRA
    @argument(
        "--all",
        dest="all_nodes",
        action="store_true",
        help="Also list CPU-only nodes in the per-node table (the .nodes DataFrame always "
        "has them).",
    )
    @argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        help="Seconds per API request for this call (default: %%config SkyMagics.request_timeout);"
        " a context that does not answer in time becomes an error row, the rest still show.",
    )
    @argument(
        "--cache",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Reuse each context's lists if younger than SECONDS (default: always read fresh).",
    )
    @no_var_expand
    @line_magic
    def sky_show_gpus(self, line: str) -> Any:
        """Show which GPUs are free, and where, across the allowed Kubernetes contexts.

        Reads every context in parallel with two list requests each (nodes, live pods) and
        shows SkyPilot's tables: "Kubernetes GPUs" (aggregate, when several contexts have
        GPUs), one "Context: NAME" table per context (GPU, REQUESTABLE_QTY_PER_NODE,
        UTILIZATION such as "6 of 8 free") and "Kubernetes per-node GPU availability".
        Contexts that fail are listed with the reason; the others still show.

        Returns an Inventory: `inv = %sky_show_gpus` keeps it; `inv.summary`,
        `inv.by_context`, `inv.nodes` and `inv.errors` are pandas DataFrames.
        """
        from skymagic.gpus.inventory import show_gpus

        args = parse_argstring(self.sky_show_gpus, line)
        return show_gpus(
            self.settings(args.timeout),
            infra=unquote(args.infra),
            gpu=args.gpu,
            all_nodes=args.all_nodes,
            cache_ttl=args.cache,
        )

    @magic_arguments()
    @_INFRA
    @argument(
        "--interval",
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="Seconds between background refreshes while auto-refresh is on (default 10).",
    )
    @argument("--no-auto", action="store_true", help="Start with auto-refresh off.")
    @argument(
        "--no-watch",
        action="store_true",
        help="Re-list every context on each refresh instead of following watches.",
    )
    @argument("--all", dest="all_nodes", action="store_true", help="Also show CPU-only nodes.")
    @_REQUEST_TIMEOUT
    @no_var_expand
    @line_magic
    def sky_dashboard(self, line: str) -> Any:
        """A live GPU availability dashboard over the allowed Kubernetes contexts.

        Cards per context (health, latency, free/total GPUs per type), a node grid coloured by
        free GPUs (NotReady, cordoned and tainted nodes marked), filters, refresh now and
        auto-refresh. Click a node or a GPU row for the pods holding its GPUs and a "launch
        here" that pre-fills a %%sky_launch cell. Shows the dashboard and returns it, so
        `dash = %sky_dashboard` shows it too and keeps the handle; `dash.close()` stops its
        background refresh.
        """
        from skymagic.ui.dashboard import dashboard

        args = parse_argstring(self.sky_dashboard, line)
        dash = dashboard(
            self.settings(args.timeout),
            infra=unquote(args.infra),
            interval=args.interval,
            auto_refresh=not args.no_auto,
            watch=not args.no_watch,
            all_nodes=args.all_nodes,
        )
        dash.show()  # an assignment shows nothing; the cell's own result is not shown twice
        return dash

    @magic_arguments()
    @line_magic
    def sky_info(self, line: str) -> str:
        """Show skymagic's version."""
        from skymagic import __version__

        parse_argstring(self.sky_info, line)
        return f"skymagic {__version__}"


def _drop_rst_marker(cls: type) -> None:
    """Start each magic's help at its usage line.

    IPython's magic_arguments opens every docstring with reST's literal-block marker ("::",
    for Sphinx), which `%sky_check?` shows as a stray first line.
    """
    for name in vars(cls):
        fn = getattr(cls, name)
        doc = getattr(fn, "__doc__", None)
        if getattr(fn, "parser", None) is not None and doc and doc.startswith("::\n\n"):
            fn.__doc__ = doc[len("::\n\n") :]


_drop_rst_marker(SkyMagics)


_registered: list[Any] = []


def load(ipython: Any) -> None:
    """Register the magics on this shell (idempotent)."""
    from skymagic.ui.pod_magics import PodMagics

    magics = SkyMagics(shell=ipython)
    ipython.register_magics(magics)
    _drop_rst_marker(PodMagics)
    pod_magics = PodMagics(ipython, magics.settings)
    ipython.register_magics(pod_magics)
    _registered.extend([magics, pod_magics])
    from skymagic.ui.jobs_magics import JobsMagics  # managed jobs: %%sky_jobs_launch, ...

    _drop_rst_marker(JobsMagics)
    jobs_magics = JobsMagics(shell=ipython)
    ipython.register_magics(jobs_magics)
    _registered.append(jobs_magics)


def unload(ipython: Any) -> None:
    """Remove the magics this module registered."""
    mm = ipython.magics_manager
    for kind in ("line", "cell"):
        table = mm.magics[kind]
        for name in [n for n, fn in table.items() if getattr(fn, "__self__", None) in _registered]:
            del table[name]
    mm.registry.pop("SkyMagics", None)
    mm.registry.pop("JobsMagics", None)
    mm.registry.pop("PodMagics", None)
    _registered.clear()
