"""A gang's manifests: one pod per rank, a headless Service, and SkyPilot's environment.

Names (`NAME` is the launch name): rank 0's pod is `NAME` (so everything that acts on a
launch's pod, such as `kubectl exec NAME` or `%%sky_exec NAME`, reaches rank 0), rank r's is
`NAME-r`. Every pod sets `hostname` to its pod name and `subdomain` to `NAME-nodes`, a headless
Service (clusterIP None, publishNotReadyAddresses) selecting the attempt's pods, so cluster DNS
answers `NAME-r.NAME-nodes` with rank r's pod IP: stable per-rank hostnames.

Every rank gets SkyPilot's variables: SKYPILOT_NODE_RANK, SKYPILOT_NUM_NODES,
SKYPILOT_NUM_GPUS_PER_NODE, SKYPILOT_TASK_ID (the same on every rank) and SKYPILOT_NODE_IPS
(newline-separated, rank order), plus MASTER_ADDR (rank 0's hostname) and MASTER_PORT, which
torch.distributed's env:// rendezvous reads. The node IPs are not known when the pods are
created, so each pod's command starts with a short POSIX-shell prologue that resolves every
rank's hostname (getent, else python3) until all answer, then exports SKYPILOT_NODE_IPS and
runs the task: no rank runs user code until every rank has an address, and rank 0 starts once
every rank is up.

Why a second barrier: cluster DNS drops a pod that has finished, so a rank whose task ends at
once could vanish before a slower rank (still pulling its image) resolved it, and that rank
would wait forever. So each rank, once it has every address, prints a marker line and waits
for the name of a second headless Service, `NAME-go`; the launcher creates it only after it
has seen the marker in every rank's log. No rank runs its task before every rank has every
address.
"""

from __future__ import annotations

import copy
import shlex
import time
from typing import Any

from skymagic.launches.podspec import LABEL_ATTEMPT, LABEL_LAUNCH, LABEL_USER
from skymagic.launches.task import Task

__all__ = [
    "MARKER",
    "go_name",
    "LABEL_NUM_NODES",
    "LABEL_RANK",
    "MASTER_PORT",
    "gang_pod",
    "headless_service",
    "rank_hostname",
    "rank_pod_name",
    "rerun_env",
    "service_name",
    "task_id",
]

LABEL_RANK = "skymagic.dev/rank"
LABEL_NUM_NODES = "skymagic.dev/num-nodes"
MASTER_PORT = 29500  # torch.distributed's default

# Resolves every rank's hostname (in rank order) until all answer, then exports the IPs.
PROLOGUE = r"""_sky_ip() {
  _sky_a=$(getent hosts "$1" 2>/dev/null) ||
    _sky_a=$(python3 -c 'import socket,sys; print(socket.gethostbyname(sys.argv[1]))' \
      "$1" 2>/dev/null) ||
    _sky_a=""
  set -- $_sky_a
  echo "${1:-}"
}
SKYPILOT_NODE_IPS=""
for _sky_h in $SKYMAGIC_RANK_HOSTS; do
  _sky_i=$(_sky_ip "$_sky_h")
  while [ -z "$_sky_i" ]; do sleep 0.1; _sky_i=$(_sky_ip "$_sky_h"); done
  SKYPILOT_NODE_IPS="${SKYPILOT_NODE_IPS:+$SKYPILOT_NODE_IPS
}$_sky_i"
done
export SKYPILOT_NODE_IPS
echo "skymagic: rank $SKYPILOT_NODE_RANK has the addresses of all $SKYPILOT_NUM_NODES ranks"
until [ -n "$(_sky_ip "$SKYMAGIC_GO")" ]; do sleep 0.1; done
unset _sky_h _sky_i _sky_a
"""
# The line each rank prints once it has every rank's address (the launcher waits for it on
# every rank, then creates the go Service whose name the ranks wait to resolve).
MARKER = "skymagic: rank "


def service_name(name: str) -> str:
    """The headless Service (and DNS subdomain) of launch `name`."""
    return f"{name}-nodes"


def go_name(name: str) -> str:
    """The headless Service the launcher creates once every rank has every address."""
    return f"{name}-go"


def rank_pod_name(name: str, rank: int) -> str:
    return name if rank == 0 else f"{name}-{rank}"


def rank_hostname(name: str, rank: int) -> str:
    """Rank `rank`'s DNS name inside the namespace (the search path completes it)."""
    return f"{rank_pod_name(name, rank)}.{service_name(name)}"


def task_id(name: str, attempt: str, now: float | None = None) -> str:
    """SKYPILOT_TASK_ID's shape: sky-<UTC time>_<launch>_<attempt>; the same on every rank."""
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now if now is not None else time.time()))
    return f"sky-{stamp}_{name}_{attempt}"


def rank_env(task: Task, rank: int, attempt_task_id: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in _rank_values(task, rank, attempt_task_id).items()]


def rerun_env(task: Task, rank: int, run_task_id: str, ips: list[str]) -> dict[str, str]:
    """A re-run's environment on rank `rank` of a running gang: SkyPilot's variables again.

    The ranks already run and resolve each other, so the node IPs are the pods' own IPs (what
    the prologue resolved) and no barrier is needed; SKYPILOT_TASK_ID is the re-run's own.
    """
    values = _rank_values(task, rank, run_task_id)
    del values["SKYMAGIC_RANK_HOSTS"], values["SKYMAGIC_GO"]
    values["SKYPILOT_NODE_IPS"] = "\n".join(ips)
    return values


def _rank_values(task: Task, rank: int, attempt_task_id: str) -> dict[str, str]:
    hosts = [rank_hostname(task.name, r) for r in range(task.num_nodes)]
    values = {
        "SKYPILOT_NODE_RANK": str(rank),
        "SKYPILOT_NUM_NODES": str(task.num_nodes),
        "SKYPILOT_NUM_GPUS_PER_NODE": str(task.gpu_count),
        "SKYPILOT_TASK_ID": attempt_task_id,
        "MASTER_ADDR": hosts[0],
        "MASTER_PORT": str(MASTER_PORT),
        "SKYMAGIC_RANK_HOSTS": " ".join(hosts),
        "SKYMAGIC_GO": go_name(task.name),
    }
    return values


def gang_pod(base: dict[str, Any], task: Task, rank: int, attempt_task_id: str) -> dict[str, Any]:
    """Rank `rank`'s pod: the single-pod manifest `base`, renamed, with DNS and environment."""
    pod = copy.deepcopy(base)
    meta, spec = pod["metadata"], pod["spec"]
    name = rank_pod_name(task.name, rank)
    meta["name"] = name
    meta["labels"][LABEL_RANK] = str(rank)
    meta["labels"][LABEL_NUM_NODES] = str(task.num_nodes)
    spec["hostname"] = name
    spec["subdomain"] = service_name(task.name)
    container = spec["containers"][0]
    container["env"] = [*container.get("env", []), *rank_env(task, rank, attempt_task_id)]
    command = list(container["command"])
    if command[:2] == ["/bin/sh", "-c"]:
        command[2] = PROLOGUE + command[2]
    else:
        command = ["/bin/sh", "-c", PROLOGUE + 'exec "$@"', "sh", *command]
    container["command"] = command
    meta.setdefault("annotations", {})["skymagic.dev/command"] = shlex.join(command)[:1000]
    return pod


def headless_service(
    task: Task, base_labels: dict[str, str], *, go: bool = False
) -> dict[str, Any]:
    """The gang's headless Service: DNS names for the attempt's pods, no virtual IP.

    `go`: the second one, whose name resolving tells the ranks to start their task.
    """
    name = go_name(task.name) if go else service_name(task.name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": dict(base_labels)},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {
                LABEL_LAUNCH: task.name,
                LABEL_USER: task.user,
                LABEL_ATTEMPT: base_labels[LABEL_ATTEMPT],
            },
            "ports": [{"name": "rendezvous", "port": MASTER_PORT, "protocol": "TCP"}],
        },
    }
