"""Managed-job magics: `%%sky_jobs_launch`, `%sky_jobs_queue`, `%sky_jobs_logs`, `%sky_jobs_cancel`.

Presentation only, over `skymagic.jobs`. Registered by `skymagic.ui.magics.load` next to
`SkyMagics`, whose session settings (`%config SkyMagics.request_timeout`, kubeconfig, allowed
contexts) they use. A job is run by the jobs controller, not by the kernel: the cell streams
the job's log, and interrupting it (the stop button, Ctrl-C) only stops the streaming.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from skymagic.ui.flags import TASK_FLAGS, positive_seconds, task_options
from skymagic.ui.magic_args import cell_body, declare_flags, require_names, stream, unquote

if TYPE_CHECKING:
    from skymagic.core.targets import Settings

__all__ = ["JobsMagics"]


@magics_class
class JobsMagics(Magics):
    """The managed-job magics (settings come from SkyMagics)."""

    def _settings(self) -> Settings:
        assert self.shell is not None
        sky = self.shell.magics_manager.registry.get("SkyMagics")
        if sky is not None:
            settings: Settings = sky.settings()
            return settings
        from skymagic.core.targets import Settings

        return Settings()

    @magic_arguments(name="%sky_jobs_launch")  # usage line shows the cell magic
    @argument("name", nargs="?", default=None, help="Job name (default: sky-XXXX-USER).")
    @declare_flags(TASK_FLAGS)
    @argument(
        "--max-restarts-on-errors",
        type=int,
        default=None,
        metavar="N",
        help="Restart the job up to N times after its own non-zero exit (default: the task "
        "YAML's resources.job_recovery, else 0). Preemptions are always recovered.",
    )
    @argument(
        "--detach",
        action="store_true",
        help="Return once submitted instead of streaming the job's log.",
    )
    @argument(
        "--dry-run",
        action="store_true",
        help="Show the plan (Considered resources) as a DataFrame; submit nothing.",
    )
    @argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        help="Seconds each context gets to schedule the pod before failover, on every launch "
        "and recovery (default: kubernetes.provision_timeout).",
    )
    @argument(
        "--format",
        action="store_true",
        help="Expand {var} in the cell body from the notebook's variables.",
    )
    @no_var_expand
    @cell_magic
    def sky_jobs_launch(self, line: str, cell: str) -> Any:
        """Run the cell as a managed job: recovered on another context if its pod goes away.

        The cell is a shell script or a SkyPilot task YAML (as for %%sky_launch, plus
        resources.job_recovery: {strategy, max_restarts_on_errors}). The job is handed to the
        local jobs controller, which outlives this kernel: it launches the job through the
        usual placement, and when a spot node is preempted, the node is lost or the pod is
        evicted, it relaunches it (the same context first if it has room). When no allowed
        context has room, the job waits for capacity (PENDING, or RECOVERING on a recovery;
        %sky_jobs_queue's details say what for), creating nothing, and starts the moment one
        has; a request that can never fit fails at once with what would. The cell streams
        the job's log; interrupting it stops the streaming only, the job keeps running.
        Cancel it with %sky_jobs_cancel NAME. Returns the Job (also in `_sky_job`).
        """
        from skymagic import jobs

        args = parse_argstring(self.sky_jobs_launch, line)
        body = cell_body(self.shell, cell, args.format)
        options = task_options(args, infra=unquote(args.infra))
        if args.dry_run:
            return self._plan(body, options)
        job = jobs.launch(
            body,
            options,
            settings=self._settings(),
            max_restarts_on_errors=args.max_restarts_on_errors,
            provision_timeout=args.timeout,
        )
        assert self.shell is not None
        self.shell.user_ns["_sky_job"] = job
        print(
            f"Managed job {job.id} ({job.name}) submitted. Interrupting this cell stops the "
            f"streaming only; cancel the job with %sky_jobs_cancel {job.name}",
            flush=True,
        )
        if not args.detach:
            stream(
                job.logs(follow=True),
                f"(stopped streaming; job {job.id} keeps running: %sky_jobs_logs {job.name} "
                f"--follow resumes, %sky_jobs_cancel {job.name} cancels it)",
            )
        return job

    def _plan(self, body: str, options: Any) -> Any:
        from skymagic.jobs.jobspec import split_job_recovery
        from skymagic.launches import LaunchControls, Plan, launch_task, parse_task

        body, _recovery = split_job_recovery(body)
        task = parse_task(body, options)
        plan = launch_task(task, self._settings(), LaunchControls(dry_run=True))
        assert isinstance(plan, Plan)
        return plan.to_frame()

    @magic_arguments()
    @line_magic
    def sky_jobs_queue(self, line: str) -> Any:
        """Every managed job, newest first, as a DataFrame: id, name, status, context,
        recoveries, submitted, started, duration (s), resources, last_failure, details (what
        it is doing or waiting for)."""
        from skymagic import jobs

        parse_argstring(self.sky_jobs_queue, line)
        return jobs.queue()

    @magic_arguments()
    @argument("name", help="Job name or id (a name: its latest job).")
    @argument("--follow", "-f", action="store_true", help="Keep streaming until the job ends.")
    @line_magic
    def sky_jobs_logs(self, line: str) -> None:
        """Print a managed job's log: every attempt in order, each headed by its context."""
        from skymagic import jobs

        args = parse_argstring(self.sky_jobs_logs, line)
        stream(
            jobs.logs(args.name, follow=args.follow),
            f"(stopped following; the job keeps running: %sky_jobs_cancel {args.name} cancels it)",
        )

    @magic_arguments()
    @argument("names", nargs="*", help="Job names or ids (a name: every active job with it).")
    @argument("--all", action="store_true", help="Cancel every active job.")
    @line_magic
    def sky_jobs_cancel(self, line: str) -> Any:
        """Cancel managed jobs: the controller removes their pods, they end CANCELLED."""
        from skymagic import jobs

        args = parse_argstring(self.sky_jobs_cancel, line)
        require_names(args, "the jobs to cancel (names or ids)")
        cancelled = jobs.cancel(args.names, all=args.all)
        for job in cancelled:
            print(f"cancelling job {job.id} ({job.name})")
        if not cancelled:
            print("no active job to cancel")
        return cancelled
