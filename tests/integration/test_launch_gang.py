"""Multi-node launches against a simulated fleet over real HTTPS: gangs, rendezvous, failures.

Two clusters of two 8-H100 nodes each (`runtime: local`: every rank is a real process with a
loopback pod IP, and the fleet answers the headless Service's names, see skymagic/sim/netnames).
After each scenario the fleet is asked which skymagic pods exist anywhere: a gang is all or
nothing, so a context the launch left holds none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from checkkit import (
    fresh_session,  # noqa: F401  (autouse)
    wait_for,
)
from launchkit import (
    GANG_SPEC,
    ONE,
    TWO,
    Recorder,
    admin,
    fleet_fixture,
    settings,
    skymagic_pods,
    writes,
)

from skymagic.errors import ProvisionFailedError
from skymagic.gpus.inventory import show_gpus
from skymagic.launches import (
    LaunchControls,
    LaunchResult,
    down,
    launch_task,
    logs,
    parse_task,
    status,
)
from skymagic.launches.podspec import LABEL_MANAGED
from skymagic.sim import Fleet

fleet = fleet_fixture(GANG_SPEC)


def gang(
    body: str, *contexts: str, rec: Recorder | None = None, **kw: Any
) -> tuple[LaunchResult, Recorder]:
    rec = rec or Recorder()
    inventory_fn = kw.pop("inventory_fn", None)
    detach = kw.pop("detach", False)
    result = launch_task(
        parse_task(body, gpus="H100:8", num_nodes=2, **kw),
        settings(*contexts),
        LaunchControls(detach=detach, provision_timeout=5.0),
        observer=rec,
        inventory_fn=inventory_fn,
    )
    assert isinstance(result, LaunchResult)
    return result, rec


ENV_SCRIPT = """\
echo "rank=$SKYPILOT_NODE_RANK of $SKYPILOT_NUM_NODES gpus=$SKYPILOT_NUM_GPUS_PER_NODE"
echo "task=$SKYPILOT_TASK_ID master=$MASTER_ADDR:$MASTER_PORT"
echo "ips=$(echo "$SKYPILOT_NODE_IPS" | tr '\\n' ',')"
"""


def test_a_gang_that_fits_only_in_the_second_context_creates_nothing_in_the_first(
    fleet: Fleet,
) -> None:
    fleet.add_pods(ONE, count=1, gpu="H100", gpus=8, namespace="team-x")  # one node left
    fleet.clear_requests()
    result, rec = gang(ENV_SCRIPT, ONE, TWO, name="envs")

    assert rec.plan is not None and rec.plan.chosen == TWO
    assert dict(rec.plan.reasons())[ONE] == (
        "not enough nodes free now: 1 of 2 nodes have 8 H100 free"
    )
    assert writes(fleet, ONE) == 0 and writes(fleet, ONE, what="/services") == 0
    assert result.context == TWO and result.status == "Succeeded" and result.exit_code == 0
    by_rank: dict[str, list[str]] = {"0": [], "1": []}
    for line in rec.log:
        m = re.match(r"\(rank=(\d)\) (.*)", line)
        assert m, f"an unprefixed line: {line!r}"
        by_rank[m.group(1)].append(m.group(2))
    ips: set[str] = set()
    task_ids = set()
    for rank in ("0", "1"):
        first, second, third = by_rank[rank]
        assert first == f"rank={rank} of 2 gpus=8"
        task, master = second.split(" ")
        task_ids.add(task)
        assert master == "master=envs.envs-nodes:29500"
        rank_ips = third.removeprefix("ips=").rstrip(",").split(",")
        assert len(rank_ips) == 2 and all(ip.startswith("127.") for ip in rank_ips)
        ips.add(",".join(rank_ips))
    assert len(ips) == 1 and len(task_ids) == 1  # every rank sees the same IPs and task id
    [ip_list] = ips
    client = admin(fleet, TWO)
    pods = {
        p["metadata"]["name"]: p for p in client.list_items("/api/v1/namespaces/default/pods")[0]
    }
    assert ip_list == f"{pods['envs']['status']['podIP']},{pods['envs-1']['status']['podIP']}"
    for svc in ("envs-nodes", "envs-go"):  # rank names; the go-ahead once all resolved
        assert (
            client.get_json(f"/api/v1/namespaces/default/services/{svc}")["spec"]["clusterIP"]
            == "None"
        )
    assert skymagic_pods(fleet) == {TWO: ["envs", "envs-1"]}

    frame = status(settings(ONE, TWO)).frame
    [row] = frame.to_dict("records")
    assert (row["name"], row["nodes"], row["status"]) == ("envs", "0/2 running", "Succeeded")
    assert row["gpus"] == "2x 8 (nvidia.com/gpu)" and row["node"] == "h100-0, h100-1"
    per_rank = status(settings(ONE, TWO), ranks=True).frame
    assert list(per_rank["rank"]) == [0, 1]
    # Each rank's log: the rendezvous prologue's line, then the task's.
    rank1 = list(logs("envs", settings(ONE, TWO), rank=1))
    assert rank1[:2] == ["skymagic: rank 1 has the addresses of all 2 ranks", "rank=1 of 2 gpus=8"]
    assert list(logs("envs", settings(ONE, TWO)))[1] == "rank=0 of 2 gpus=8"
    down(["envs"], settings(ONE, TWO))
    wait_for(lambda: skymagic_pods(fleet) == {}, 10, "the gang deleted")


RENDEZVOUS = """\
python3 - <<'EOF'
import os, socket, time
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if os.environ["SKYPILOT_NODE_RANK"] == "0":
    server = socket.create_server((socket.gethostbyname(addr), port))
    conn, _ = server.accept()
    print("rank 0 got:", conn.recv(100).decode(), flush=True)
else:
    for _ in range(100):
        try:
            sock = socket.create_connection((addr, port), timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    sock.sendall(b"hello from rank 1")
    print("rank 1 connected to", addr, flush=True)
EOF
"""


def test_rank_1_reaches_rank_0_at_master_addr_over_tcp(fleet: Fleet) -> None:
    result, rec = gang(RENDEZVOUS, TWO, name="rdv")
    assert result.status == "Succeeded", rec.log
    assert "(rank=0) rank 0 got: hello from rank 1" in rec.log
    assert "(rank=1) rank 1 connected to rdv.rdv-nodes" in rec.log


def test_a_gang_race_deletes_every_pod_and_uses_the_next_context(fleet: Fleet) -> None:
    snapshot = show_gpus(settings(ONE, TWO))  # both nodes of ONE free here ...
    fleet.add_pods(ONE, count=1, gpu="H100", gpus=8, namespace="team-x")  # ... one taken now
    fleet.clear_requests()
    result, _rec = gang(
        "echo ran", ONE, TWO, name="race", inventory_fn=lambda _s, _i: snapshot, detach=True
    )
    first, second = result.attempts
    assert (first.context, first.outcome) == (ONE, "unschedulable")
    assert first.reason.startswith("rank ") and "Insufficient nvidia.com/gpu" in first.reason
    assert first.seconds < 5.0 + 2.0  # provision timeout + 2 s at most
    assert (second.context, second.outcome) == (TWO, "running")
    assert writes(fleet, ONE) == 2  # both ranks were created in ONE ...
    assert skymagic_pods(fleet) == {TWO: ["race", "race-1"]}  # ... and none is left there
    client = admin(fleet, ONE)
    for kind in ("services", "secrets"):
        items, _ = client.list_items(f"/api/v1/{kind}", {"labelSelector": f"{LABEL_MANAGED}=true"})
        assert items == []


def pod_dir(fleet: Fleet, cluster_index: int, name: str) -> Path:
    """A `runtime: local` pod's home in the simulator (its processes run on this machine)."""
    return Path(fleet.state_dir) / "clusters" / str(cluster_index) / "pods" / f"default_{name}"


def alive(pid: int) -> bool:
    """Whether process `pid` still runs here (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


# Rank 0 starts a long sleep (a torch rank hanging in a collective), says so, then records its
# pid; rank 1 fails once rank 0's sleep runs (local pods share this machine's files: it waits
# for rank 0's), so rank 0's line is written before the stop can come.
HANGS_THEN_FAILS = """\
if [ "$SKYPILOT_NODE_RANK" = 1 ]; then
  while [ ! -s ~/../default_{name}/hang.pid ]; do sleep 0.1; done
  echo "rank 1 fails"; exit 3
fi
sleep 600 & echo "rank 0 hangs"; echo $! > ~/hang.pid
wait
"""


def test_one_rank_failing_stops_the_run_on_every_other_rank(fleet: Fleet) -> None:
    result, rec = gang(HANGS_THEN_FAILS.format(name="fails"), TWO, name="fails")

    assert result.status == "Failed" and result.exit_code == 3
    assert result.seconds < 60  # not rank 0's 600 s: it was stopped
    assert result.attempts[-1].reason == "rank 1 exited with code 3; stopped the run on rank 0"
    assert "The launch failed: rank 1 exited with code 3; stopped the run on rank 0." in str(result)
    assert "(rank=1) rank 1 fails" in rec.log and "(rank=0) rank 0 hangs" in rec.log
    assert "(rank=0) skymagic: stopped: rank 1 failed (exit code 3)" in rec.log
    assert "rank 1 failed (exit code 3): stopping the run on rank 0 (the pods stay)" in (
        rec.messages
    )
    hang = int((pod_dir(fleet, 1, "fails") / "hang.pid").read_text())
    wait_for(lambda: not alive(hang), 10, "rank 0's process gone")
    # The pods stay (the task pods ended, their logs readable); rank 0 says why it stopped.
    assert skymagic_pods(fleet) == {TWO: ["fails", "fails-1"]}
    ranks = status(settings(TWO), ranks=True).frame
    assert list(ranks["status"]) == ["Stopped (rank 1 failed)", "Failed"]
    [row] = status(settings(TWO)).frame.to_dict("records")
    assert (row["status"], row["nodes"]) == ("Failed", "0/2 running")
    down(["fails"], settings(TWO))
    wait_for(lambda: skymagic_pods(fleet) == {}, 10, "the gang deleted")


def test_with_autostop_a_failing_rank_stops_the_others_runs_and_the_pods_stay_up(
    fleet: Fleet,
) -> None:
    body = HANGS_THEN_FAILS.format(name="idle")
    result, rec = gang(body, TWO, name="idle", idle_minutes_to_autostop=5)

    # The follow ends with the runs (the entrypoint's RUN_DONE line), not with the pods.
    assert (result.status, result.exit_code) == ("Failed", 3), rec.text.getvalue()
    assert result.seconds < 60
    assert result.attempts[-1].reason == "rank 1 exited with code 3; stopped the run on rank 0"
    assert "The pods stay up until 5 idle minute(s) pass (autostop)" in str(result)
    hang = int((pod_dir(fleet, 1, "idle") / "hang.pid").read_text())
    wait_for(lambda: not alive(hang), 10, "rank 0's run gone")
    ranks = status(settings(TWO), ranks=True).frame
    assert list(ranks["status"]) == ["Running", "Running"]  # as dev pods: up, runs ended
    assert not any("skymagic: run finished" in line for line in rec.log)
    assert "(rank=0) skymagic: stopped: rank 1 failed (exit code 3)" in rec.log
    down(["idle"], settings(TWO))
    wait_for(lambda: skymagic_pods(fleet) == {}, 10, "the gang deleted")


def test_a_gang_that_fits_nowhere_says_what_would_fit(fleet: Fleet) -> None:
    fleet.add_pods(ONE, count=1, gpu="H100", gpus=8, namespace="team-x")
    fleet.add_pods(TWO, count=2, gpu="H100", gpus=6, namespace="team-x")  # 2 free per node
    with pytest.raises(ProvisionFailedError) as info:
        gang("true", ONE, TWO, name="nowhere")
    text = str(info.value)
    assert text.splitlines()[-1] == (
        "H100:8 x2 nodes fits nowhere now; H100:2 x2 nodes fits in two (2 nodes); "
        "H100:8 fits in one (1 node)"
    )
    assert skymagic_pods(fleet) == {}


def test_detached_gang_returns_once_every_rank_runs(fleet: Fleet) -> None:
    result, _ = gang("sleep 60", TWO, name="bg", detach=True)
    assert result.status == "Running"
    assert re.search(r"Ranks: 0 on h100-[01], 1 on h100-[01]\. One rank's log:", str(result))
    [row] = status(settings(TWO)).frame.to_dict("records")
    assert row["nodes"] == "2/2 running" and row["status"] == "Running"
    down(["bg"], settings(TWO))


def test_rerunning_a_finished_gang_replaces_every_rank(fleet: Fleet) -> None:
    first, _ = gang("echo first", TWO, name="again")
    assert first.status == "Succeeded"
    second, rec = gang("echo second", TWO, name="again")
    assert second.status == "Succeeded", second
    assert sorted(rec.log) == ["(rank=0) second", "(rank=1) second"]
    assert skymagic_pods(fleet) == {TWO: ["again", "again-1"]}


def test_the_magics_launch_a_gang_and_show_its_ranks(fleet: Fleet, ipshell: Any) -> None:
    from IPython.utils.capture import capture_output

    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", f"SkyMagics.allowed_contexts = {[ONE, TWO]!r}")
    try:
        with capture_output() as out:
            result = ipshell.run_cell_magic(
                "sky_launch",
                "magic --gpus H100:8 --num-nodes 2 -r --timeout-minutes 1",
                'echo "I am $SKYPILOT_NODE_RANK"',
            )
        assert result.status == "Succeeded", out.stdout
        assert "(rank=0) I am 0" in out.stdout and "(rank=1) I am 1" in out.stdout
        launches = ipshell.run_line_magic("sky_status", "").frame
        assert list(launches["nodes"]) == ["0/2 running"]
        ranks = ipshell.run_line_magic("sky_status", "--ranks").frame
        assert list(ranks["rank"]) == [0, 1]
        with capture_output() as out:
            ipshell.run_line_magic("sky_logs", "magic --rank 1")
        assert out.stdout.splitlines()[-1] == "I am 1"
        with capture_output():
            ipshell.run_line_magic("sky_down", "magic")
    finally:
        ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")
