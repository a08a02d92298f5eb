"""Stopping the run on a gang's other ranks once one rank failed.

SkyPilot's multi-node job driver waits on every node's task and, as soon as one returns
non-zero, force-cancels the others (their processes are killed, their return code recorded
as 137) and reports the job FAILED with the first real return code; the nodes stay up. A
torch job whose rank died otherwise hangs in a collective on every other rank, holding its
GPUs until the NCCL timeout, if ever. skymagic does the same through exec: on every other
rank, agent.stop_run's script stops the job (the entrypoint's `launch`, or a re-run's own id)
and everything it started. The pods are not deleted: a task pod ends once its run ends (its
log stays readable), a pod that outlives its run (a dev pod, autostop) stays up.

A task pod's status would otherwise say only Failed; it is annotated first with why it was
stopped, and `%sky_status --ranks` shows `Stopped (rank N failed)`. Stopping runs on worker
threads, all ranks at once; nothing here talks to the observer.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from skymagic.core.client import ContextClient
from skymagic.core.podstreams import exec_stream
from skymagic.errors import NotFoundError, SkymagicError
from skymagic.launches.agent import STOP_GRACE_S, stop_run

__all__ = ["ANNOTATION_STOPPED", "stop_note", "stop_ranks", "stopped_status"]

# Set on a task pod whose run skymagic stopped because another rank failed: "rank N failed
# (exit code C)".
ANNOTATION_STOPPED = "skymagic.dev/stopped"


def stop_note(rank: int, code: int | None) -> str:
    """Why the other ranks were stopped, as the annotation and the messages say it."""
    return f"rank {rank} failed (exit code {code})"


def stopped_status(annotations: dict[str, str]) -> str | None:
    """`Stopped (rank N failed)` for an ended pod annotated as stopped, else None."""
    note = annotations.get(ANNOTATION_STOPPED)
    if not note:
        return None
    return f"Stopped ({note.split(' (', 1)[0]})"


def _stop_one(
    client: ContextClient, ns: str, name: str, run_id: str, note: str | None, grace_s: float
) -> str:
    """Stop `run_id` in pod `name`: '' when done (or nothing ran), else what went wrong."""
    if note is not None:
        # Annotated before the run is stopped, so no status shows it plainly Failed; a pod
        # that may not be patched is still stopped.
        with contextlib.suppress(SkymagicError):
            client.request(
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/{name}",
                body={"metadata": {"annotations": {ANNOTATION_STOPPED: note}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
    try:
        outcome = exec_stream(client, ns, name, stop_run(run_id, grace_s))
    except NotFoundError:
        return ""  # the pod is gone, and its run with it
    except SkymagicError as exc:
        return exc.message
    if outcome.exit_code != 0:
        return outcome.message or f"the stop command exited with code {outcome.exit_code}"
    return ""


def stop_ranks(
    client: ContextClient,
    ns: str,
    names: dict[int, str],
    run_id: str,
    *,
    note: str | None = None,
    grace_s: float = STOP_GRACE_S,
) -> dict[int, str]:
    """Stop job `run_id` on every rank of `names` (rank -> pod name) at once.

    `note` (stop_note's words) is written on each pod first, for a task pod's status.
    Returns, per rank that could not be stopped, why (a pod already gone counts as stopped).
    """
    if not names:
        return {}
    with ThreadPoolExecutor(len(names), thread_name_prefix="skymagic-stop-rank") as pool:
        futures = {
            rank: pool.submit(_stop_one, client, ns, name, run_id, note, grace_s)
            for rank, name in sorted(names.items())
        }
        results = {rank: fut.result() for rank, fut in futures.items()}
    return {rank: why for rank, why in results.items() if why}
