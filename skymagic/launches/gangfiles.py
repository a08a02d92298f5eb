"""A gang's workdir and file_mounts, sent to every rank at once before any rank's setup.

Every rank's entrypoint waits for the launch's files (agent.py), as a single pod's does, so
each rank gets the same files (one tar stream per rank, all in parallel: the time is the
slowest rank's, not the sum). Only what differs from each rank's own manifest is sent. The
sends run on worker threads; progress and the summary reach the observer from the caller's
thread only. A rank that cannot take the files fails the attempt, naming the rank.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from skymagic.core.client import ContextClient
from skymagic.errors import LaunchError, SkymagicError
from skymagic.launches.files import FileSet, SyncReport, send_files
from skymagic.launches.podspec import ANNOTATION_IMAGE

__all__ = ["send_to_ranks"]


class _Observer(Protocol):
    def on_progress(self, context: str, phase: str, elapsed: float) -> None: ...
    def on_message(self, text: str) -> None: ...


def send_to_ranks(
    client: ContextClient,
    ns: str,
    pods: dict[int, dict[str, Any]],
    files: FileSet | None,
    obs: _Observer,
    t0: float,
) -> None:
    """Send `files` to every running rank of `pods` at once; LaunchError names a failing rank."""
    if files is None or not files.uploads:
        return
    ranks = {r: p for r, p in sorted(pods.items()) if p.get("status", {}).get("phase") == "Running"}
    if not ranks:
        return
    latest: dict[int, str] = {}

    def send(rank: int, pod: dict[str, Any]) -> SyncReport:
        notes = pod["metadata"].get("annotations") or {}
        return send_files(
            client,
            ns,
            str(pod["metadata"]["name"]),
            files,
            image=notes.get(ANNOTATION_IMAGE, ""),
            progress=lambda text, _elapsed: latest.__setitem__(rank, text),
        )

    n = len(ranks)
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="skymagic-rank-files") as pool:
        futures: dict[Future[SyncReport], int] = {
            pool.submit(send, r, p): r for r, p in ranks.items()
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    for other in pending:
                        other.cancel()
                    rank = futures[fut]
                    detail = exc.message if isinstance(exc, SkymagicError) else repr(exc)
                    raise LaunchError(
                        f"could not send the files to rank {rank}: {detail}", context=client.name
                    ) from exc
            finished = n - len(pending)
            detail = f"; rank 0: {latest[0]}" if 0 in latest and pending else ""
            obs.on_progress(
                client.name,
                f"sending files to {n} ranks: {finished}/{n} done{detail}",
                time.monotonic() - t0,
            )
        reports = {futures[f]: f.result() for f in futures}
    sent = sum(r.sent_files for r in reports.values())
    nbytes = sum(r.sent_bytes for r in reports.values())
    skipped = sum(r.skipped_files for r in reports.values())
    obs.on_message(
        f"{client.name}: sent the files to {n} ranks: {sent} changed file(s), {nbytes:,} bytes "
        f"in all ({skipped} unchanged)"
    )
