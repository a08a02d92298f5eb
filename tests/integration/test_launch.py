"""`launch_task` against a simulated fleet over real HTTPS: plan, failover, cleanup, lifecycle.

Every scenario is a real server behaviour (a full node, a refused connection, an RBAC 403, a
scheduler's FailedScheduling), and after every failover scenario the fleet is asked which
skymagic-labelled pods exist anywhere: only the one that runs may be left.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from checkkit import (
    assert_no_secrets,
    fresh_session,  # noqa: F401  (autouse)
    secrets_in,
    wait_for,
)
from conftest import write_sky_config
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from launchkit import (
    BOB,
    CAROL,
    DOWN,
    FREE,
    FREE2,
    FULL,
    LAUNCH_SPEC,
    NOGPU,
    SMALL,
    USER,
    InterruptAt,
    Recorder,
    admin,
    fleet_fixture,
    get,
    labelled,
    pod,
    secret_text,
    settings,
    writes,
)

from skymagic.errors import ConfigError, LaunchError, ProvisionFailedError
from skymagic.gpus.accelerators import matching_label_values
from skymagic.gpus.inventory import show_gpus
from skymagic.launches import (
    LaunchControls,
    LaunchObserver,
    LaunchResult,
    Plan,
    TaskOptions,
    down,
    launch,
    launch_task,
    logs,
    parse_task,
    status,
)
from skymagic.launches.plan import PLAN_COLUMNS, make_plan
from skymagic.sim import Fleet
from skymagic.ui.progress import TextProgress

fleet = fleet_fixture(LAUNCH_SPEC)


def run(
    body: str,
    *contexts: str,
    observer: LaunchObserver | None = None,
    detach: bool = False,
    provision_timeout: float | None = None,
    inventory_fn: Callable[..., Any] | None = None,
    **flags: Any,
) -> LaunchResult:
    result = launch_task(
        parse_task(body, **flags),
        settings(*contexts),
        LaunchControls(detach=detach, provision_timeout=provision_timeout),
        observer=observer or Recorder(),
        inventory_fn=inventory_fn,
    )
    assert isinstance(result, LaunchResult)
    return result


def fill(fleet: Fleet, cluster: str) -> None:
    """Take every H100 in `cluster` with other users' running pods."""
    fleet.add_pods(cluster, count=1, gpu="H100", gpus=8, namespace="team-x")


def snapshot_fn(contexts: tuple[str, ...]) -> Callable[..., Any]:
    """An inventory taken NOW, served later: the plan sees GPUs free that may be gone."""
    inv = show_gpus(settings(*contexts))
    return lambda _settings, _infra: inv


# --- plan and skip reasons ------------------------------------------------------------------


def test_each_skip_reason_is_planned_and_nothing_is_created_there(fleet: Fleet) -> None:
    fill(fleet, FULL)
    fleet.clear_requests()
    rec = Recorder()
    order = (DOWN, CAROL, NOGPU, SMALL, FULL, FREE)
    result = run("echo ran on $SKYMAGIC_CONTEXT", *order, observer=rec, gpus="H100:4")

    assert rec.plan is not None
    reasons = dict(rec.plan.reasons())
    assert reasons[DOWN].startswith("unreachable")
    assert reasons[CAROL].startswith("forbidden")
    assert reasons[NOGPU].startswith("no such GPU: H100 (has A100-80GB)")
    assert reasons[SMALL] == "not enough per node: at most 2 H100 per node"
    assert reasons[FULL].startswith("none free now: best node has 0 H100 free, needs 4")
    assert [r.context for r in rec.plan.rows] == list(order)  # failover order
    assert rec.plan.chosen == FREE
    frame = rec.plan.to_frame()
    assert list(frame.columns) == PLAN_COLUMNS
    chosen = frame[frame["CHOSEN"] == "✔"]
    assert list(chosen["INFRA"]) == [f"Kubernetes ({FREE})"]
    assert list(chosen["FREE"]) == ["8"]
    assert set(frame["INSTANCE"]) == {"16CPU--64GB--4H100"}

    assert result.context == FREE and result.status == "Succeeded" and result.exit_code == 0
    assert rec.log == ["ran on free"]
    assert [a.outcome for a in result.attempts] == ["skipped"] * 5 + ["finished"]
    for cluster in (NOGPU, SMALL, FULL):
        assert writes(fleet, cluster) == 0, f"a pod was created in {cluster}"
    carol_posts = [
        r for r in fleet.requests(FREE) if r.get("method") == "POST" and r.get("user") == "carol"
    ]
    assert carol_posts == []
    assert labelled(fleet) == {FREE: [f"default/{result.name}"]}


def test_excluded_by_policy_is_a_skip_reason(fleet: Fleet) -> None:
    """The admin-policy hook: a context the policy excludes is skipped with its reason."""
    inv = show_gpus(settings(FREE, FREE2))
    plan = make_plan(
        parse_task("true", gpus="H100"), [FREE, FREE2], inv, excluded={FREE: "maintenance"}
    )
    assert plan.reasons() == [(FREE, "excluded by policy: maintenance")]
    assert plan.chosen == FREE2


def test_a_context_that_forbids_creating_pods_fails_over(fleet: Fleet) -> None:
    rec = Recorder()
    result = run("echo ok", BOB, FREE2, observer=rec, gpus="H100", detach=True)
    assert result.context == FREE2
    first = result.attempts[0]
    assert first.context == BOB and first.outcome == "error"
    assert "forbidden" in first.reason.lower()
    assert labelled(fleet) == {FREE2: [f"default/{result.name}"]}


NO_WATCH_SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "w",
            "runtime": "local",
            "pod_start_s": 0.05,
            "nodes": [{"name": "cpu", "cpu": 8, "memory_gb": 32}],
            "users": [{"name": "dave", "context": "w-dave", "auth": "token", "groups": []}],
            "rbac": [
                {
                    "user": "dave",
                    "rules": [
                        {
                            "verbs": ["get", "list", "create", "delete"],
                            "resources": ["pods", "nodes", "events", "serviceaccounts"],
                        }
                    ],
                }
            ],
        }
    ]
}


def test_a_failed_watch_is_the_attempts_reason_without_the_context_again(
    make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt row names the context; its reason is the error's message alone."""
    fleet = make_fleet(NO_WATCH_SPEC)
    monkeypatch.setenv("KUBECONFIG", fleet.kubeconfig)
    rec = Recorder()
    with pytest.raises(ProvisionFailedError) as info:
        run("echo hi", "w-dave", observer=rec, name="nowatch", detach=True)
    [attempt] = rec.attempts
    assert (attempt.context, attempt.outcome) == ("w-dave", "error")
    # the pod watch and the event watch both fail; whichever reports first is the reason
    assert re.match(
        r'403 Forbidden: (pods|events) is forbidden: User "dave" cannot watch', attempt.reason
    )
    assert "w-dave" not in attempt.reason
    assert info.value.failures == [("w-dave", attempt.reason)]
    pods, _ = admin(fleet, "w").list_items("/api/v1/pods")
    assert pods == []  # the pod it made was deleted again


# --- the race -------------------------------------------------------------------------------


def test_race_inventory_says_free_but_the_pod_cannot_schedule(fleet: Fleet) -> None:
    inventory = snapshot_fn((FULL, FREE))  # FULL still has 8 free here
    fill(fleet, FULL)  # ... and another user takes them before the launch creates its pod
    fleet.clear_requests()
    rec = Recorder()
    t0 = time.monotonic()
    result = run(
        "sleep 30", FULL, FREE, observer=rec, gpus="H100:8", detach=True, inventory_fn=inventory
    )
    elapsed = time.monotonic() - t0

    assert rec.plan is not None and rec.plan.chosen == FULL  # the plan believed the snapshot
    first, second = result.attempts
    assert (first.context, first.outcome) == (FULL, "unschedulable")
    assert "Insufficient nvidia.com/gpu" in first.reason
    assert 1.0 <= first.seconds < 3.0  # FailedScheduling + grace, not provision_timeout (10 s)
    assert (second.context, second.outcome) == (FREE, "running")
    assert result.status == "Running" and result.context == FREE
    assert elapsed < 10 + 2
    assert writes(fleet, FULL) == 1 and writes(fleet, FULL, "DELETE", f"/pods/{result.name}") == 1
    assert labelled(fleet) == {FREE: [f"default/{result.name}"]}
    assert pod(fleet, FREE, result.name)["status"]["phase"] == "Running"


def test_every_context_failing_lists_each_context_and_why(fleet: Fleet) -> None:
    fill(fleet, FULL)
    with pytest.raises(ProvisionFailedError) as info:
        run("true", FULL, NOGPU, DOWN, gpus="H100")
    text = str(info.value)
    assert text.startswith("Provision failures (tried 3 infra)")
    assert f"  {FULL}: none free now" in text
    assert f"  {NOGPU}: no such GPU" in text
    assert f"  {DOWN}: unreachable" in text
    assert [c for c, _ in info.value.failures] == [FULL, NOGPU, DOWN]
    assert labelled(fleet) == {}

    # Racing in every context: each attempt is created, found unschedulable and deleted.
    inventory = snapshot_fn((FREE, FREE2))
    fill(fleet, FREE)
    fill(fleet, FREE2)
    with pytest.raises(ProvisionFailedError) as info:
        run("true", FREE, FREE2, gpus="H100:8", inventory_fn=inventory)
    assert [r for _, r in info.value.failures if "Insufficient nvidia.com/gpu" in r] != []
    assert len(info.value.failures) == 2
    assert labelled(fleet) == {}


# --- pinning --------------------------------------------------------------------------------


def test_pinning(fleet: Fleet) -> None:
    with pytest.raises(ConfigError, match="context 'nogpu': is in the kubeconfig but not allowed"):
        run("true", FREE, infra=f"k8s/{NOGPU}")
    with pytest.raises(ConfigError, match="context 'nowhere': not in the kubeconfig"):
        run("true", FREE, infra="k8s/nowhere")
    assert labelled(fleet) == {}

    rec = Recorder()
    result = run("echo pinned", FREE, FREE2, observer=rec, infra=f"k8s/{FREE2}", gpus="H100")
    assert result.context == FREE2 and rec.log == ["pinned"]
    assert rec.plan is not None and [r.context for r in rec.plan.rows] == [FREE2]


# --- bodies, flags and sizes ----------------------------------------------------------------

YAML_TASK = """\
name: yaml-task
resources:
  accelerators: H100:1
  cpus: 2
  infra: k8s
envs:
  GREETING: hello
setup: |
  echo "setup {keeps} braces"
run: |
  echo "$GREETING {braces} ${GREETING}"
"""


def test_yaml_body_keeps_braces_and_flags_override_it(fleet: Fleet) -> None:
    rec = Recorder()
    result = run(YAML_TASK, FREE, observer=rec, gpus="H100:2", env=["GREETING=hi"])
    assert result.name == "yaml-task" and result.status == "Succeeded"
    assert rec.log == ["setup {keeps} braces", "hi {braces} hi"]
    spec = pod(fleet, FREE, "yaml-task")["spec"]
    res = spec["containers"][0]["resources"]
    # GPUs from the flag; cpus from the YAML; memory by SkyPilot's default (16 GB per GPU).
    assert res["requests"] == {"cpu": "2", "memory": "32Gi", "nvidia.com/gpu": "2"}
    assert res["limits"] == {"nvidia.com/gpu": "2"}


def test_script_body_and_skypilot_default_sizes(fleet: Fleet) -> None:
    rec = Recorder()
    gpu = run("echo 'script {x}'", FREE, observer=rec, name="gpu-task", gpus="H100:2")
    assert rec.log == ["script {x}"] and gpu.status == "Succeeded"
    p = pod(fleet, FREE, "gpu-task")
    spec = p["spec"]
    assert spec["containers"][0]["resources"]["requests"] == {
        "cpu": "8",
        "memory": "32Gi",
        "nvidia.com/gpu": "2",
    }
    assert spec["restartPolicy"] == "Never"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    wanted = {k: sorted(v) for k, v in matching_label_values("H100").items() if v}
    got = {
        t["matchExpressions"][0]["key"]: t["matchExpressions"][0]["values"]
        for t in terms["nodeSelectorTerms"]
    }
    assert got == wanted and "nvidia.com/gpu.product" in got
    tolerated = {t["key"] for t in spec["tolerations"]}
    assert {"nvidia.com/gpu", "google.com/tpu"} <= tolerated
    labels = p["metadata"]["labels"]
    assert labels["skymagic.dev/launch"] == "gpu-task" and labels["skymagic.dev/user"] == USER
    assert labels["skymagic.dev/context"] == FREE

    cpu = run("echo cpu", FREE, name="cpu-task")
    spec = pod(fleet, FREE, "cpu-task")["spec"]
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "2", "memory": "2Gi"}}
    assert "affinity" not in spec and spec["nodeName"] == "cpu" and cpu.status == "Succeeded"
    assert spec["containers"][0]["image"] == "python:3.11-slim"


# --- interrupting ---------------------------------------------------------------------------


def test_interrupt_before_running_deletes_everything_it_made(
    fleet: Fleet, isolated_env: Path
) -> None:
    write_sky_config(isolated_env, "kubernetes:\n  remote_identity: LOCAL_CREDENTIALS\n")
    fleet.clear_requests()
    rec = InterruptAt(phase="waiting for a node")
    with pytest.raises(LaunchError, match="interrupted while starting in free; deleted secret"):
        run("sleep 30", FREE, FREE2, observer=rec, name="stopped", gpus="H100", ports=[8888])
    assert rec.fired and rec.attempts[-1].outcome == "interrupted"
    assert writes(fleet, FREE) >= 1 and writes(fleet, FREE, "DELETE", "/pods/stopped") == 1
    assert writes(fleet, FREE2) == 0  # an interrupt stops the launch; it does not fail over
    for kind in ("pods", "services", "secrets"):
        assert labelled(fleet, kind) == {}, f"{kind} left behind"


def test_interrupt_while_following_the_log_detaches(fleet: Fleet) -> None:
    rec = InterruptAt(on_log=True)
    result = run("echo started; sleep 30", FREE, observer=rec, name="longjob")
    assert result.status == "Detached" and rec.log == ["started"]
    assert "%sky_down longjob" in str(result)
    assert pod(fleet, FREE, "longjob")["status"]["phase"] == "Running"


# --- remote identity ------------------------------------------------------------------------


@pytest.mark.parametrize("identity", ["SERVICE_ACCOUNT", "team-sa", "NO_UPLOAD"])
def test_remote_identity_service_accounts(fleet: Fleet, isolated_env: Path, identity: str) -> None:
    write_sky_config(isolated_env, f"kubernetes:\n  remote_identity: {identity}\n")
    if identity == "team-sa":
        admin(fleet, FREE).post_json(
            "/api/v1/namespaces/default/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "team-sa"}},
        )
    result = run("true", FREE, name="ident", detach=True)
    spec = pod(fleet, FREE, "ident")["spec"]
    expected = {
        "SERVICE_ACCOUNT": "skymagic-service-account",
        "team-sa": "team-sa",
        "NO_UPLOAD": "default",
    }[identity]
    assert spec["serviceAccountName"] == expected
    if identity == "SERVICE_ACCOUNT":
        sa = get(fleet, FREE, "/api/v1/namespaces/default/serviceaccounts/" + expected)
        assert sa["metadata"]["name"] == expected
    assert "volumes" not in spec or not any("secret" in v for v in spec["volumes"])
    assert labelled(fleet, "secrets") == {}
    assert result.context == FREE


def test_named_service_account_that_does_not_exist_is_a_clear_failure(
    fleet: Fleet, isolated_env: Path
) -> None:
    write_sky_config(isolated_env, "kubernetes:\n  remote_identity: no-such-sa\n")
    with pytest.raises(ProvisionFailedError, match="service account 'no-such-sa'"):
        run("true", FREE)
    assert labelled(fleet) == {}


def test_local_credentials_mount_the_kubeconfig_and_leak_nothing(
    fleet: Fleet, isolated_env: Path
) -> None:
    write_sky_config(isolated_env, "kubernetes:\n  remote_identity: LOCAL_CREDENTIALS\n")
    printed = io.StringIO()  # what the CLI / a terminal shell would print
    body = "echo kubeconfig at $KUBECONFIG; env | sort"
    result = run(body, FREE, FREE2, observer=TextProgress(printed), name="creds", gpus="H100")
    assert result.status == "Succeeded"

    p = pod(fleet, FREE, "creds")
    spec = p["spec"]
    container = spec["containers"][0]
    (volume,) = spec["volumes"]
    assert volume["secret"]["secretName"] == "creds-kubeconfig"
    assert container["volumeMounts"] == [
        {"name": volume["name"], "mountPath": "/root/.kube", "readOnly": True}
    ]
    assert {"name": "KUBECONFIG", "value": "/root/.kube/config"} in container["env"]
    assert "serviceAccountName" not in spec or spec["serviceAccountName"] == "default"

    secret = get(fleet, FREE, "/api/v1/namespaces/default/secrets/creds-kubeconfig")
    assert secret["metadata"]["labels"]["skymagic.dev/launch"] == "creds"
    mounted = yaml.safe_load(secret_text(secret))
    assert [c["name"] for c in mounted["contexts"]] == [FREE, FREE2]  # the allowed contexts
    assert all("token" in u["user"] for u in mounted["users"])  # self-contained credentials

    leaks = secrets_in(fleet.kubeconfig)
    log_text = "\n".join(logs("creds", settings(FREE, FREE2)))
    assert "kubeconfig at /root/.kube/config" in log_text
    assert "Considered resources" in printed.getvalue() and "kubeconfig at" in printed.getvalue()
    for text in (json.dumps(p), str(result), repr(result), printed.getvalue(), log_text):
        assert_no_secrets(text, leaks)


# --- status, logs, down across contexts -----------------------------------------------------


@pytest.fixture
def shell(ipshell: InteractiveShell) -> Iterator[InteractiveShell]:
    ipshell.run_line_magic("load_ext", "skymagic")
    ipshell.run_line_magic("config", f"SkyMagics.allowed_contexts = {[FREE, FREE2]!r}")
    ipshell.run_line_magic("config", "SkyMagics.request_timeout = 2.0")
    yield ipshell
    ipshell.run_line_magic("config", "SkyMagics.allowed_contexts = None")
    ipshell.run_line_magic("config", "SkyMagics.request_timeout = 5.0")


def test_status_logs_and_down_across_contexts(
    fleet: Fleet, isolated_env: Path, shell: InteractiveShell
) -> None:
    write_sky_config(isolated_env, "kubernetes:\n  remote_identity: LOCAL_CREDENTIALS\n")
    one = run("echo one; sleep 60", FREE, FREE2, name="one", gpus="H100", detach=True)
    two = run(
        "echo two; sleep 60",
        FREE,
        FREE2,
        name="two",
        infra=f"k8s/{FREE2}",
        ports=[8888],
        detach=True,
    )
    assert (one.context, two.context) == (FREE, FREE2)

    st = shell.run_line_magic("sky_status", "")
    frame = st.frame
    assert list(frame.columns)[:9] == [
        "name",
        "context",
        "namespace",
        "status",
        "nodes",
        "gpus",
        "node",
        "age",
        "launched_by",
    ]
    rows = {r["name"]: r for r in frame.to_dict("records")}
    assert rows["one"]["context"] == FREE and rows["two"]["context"] == FREE2
    assert rows["one"]["status"] == "Running" and rows["one"]["gpus"] == "1 (nvidia.com/gpu)"
    assert rows["one"]["nodes"] == "1/1 running"
    assert rows["one"]["node"] == "h100" and rows["two"]["node"] == "cpu"
    assert {rows["one"]["launched_by"], rows["two"]["launched_by"]} == {USER}
    svc = get(fleet, FREE2, "/api/v1/namespaces/default/services/two")
    assert rows["two"]["endpoint"] == f"{svc['spec']['clusterIP']}:8888"
    assert f"kubectl --context '{FREE2}' -n default port-forward svc/two 8888:8888" in str(st)

    for name in ("one", "two"):
        wait_for(partial(_logged, shell, name), 10, f"{name}'s log")

    with capture_output() as out:
        deleted = shell.run_line_magic("sky_down", "two")
    assert sorted(k for _, k, _ in deleted) == ["pod", "secret", "service"]
    assert {c for c, _, _ in deleted} == {FREE2} and "deleted service default/two" in out.stdout

    with capture_output():
        rest = shell.run_line_magic("sky_down", "--all")
    assert {(c, k) for c, k, _ in rest} == {(FREE, "pod"), (FREE, "secret")}
    for kind in ("pods", "services", "secrets"):
        wait_for(partial(_none_left, fleet, kind), 10, f"{kind} deleted")
    with pytest.raises(ConfigError, match="no skymagic launch named 'one'"):
        down(["one"], settings(FREE, FREE2))


def _logged(shell: InteractiveShell, name: str) -> bool:
    """Whether `%sky_logs NAME` prints the line the launch echoes (its own name)."""
    with capture_output() as out:
        shell.run_line_magic("sky_logs", name)
    return f"{name}\n" in out.stdout


def _none_left(fleet: Fleet, kind: str) -> bool:
    return labelled(fleet, kind) == {}


def test_down_leaves_other_users_launches_alone(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYMAGIC_USER", "someone-else")
    run("sleep 60", FREE, name="theirs", detach=True)
    monkeypatch.setenv("SKYMAGIC_USER", USER)
    with pytest.raises(ConfigError, match="'theirs' in free belongs to someone-else"):
        down(["theirs"], settings(FREE))
    assert labelled(fleet) == {FREE: ["default/theirs"]}
    assert status(settings(FREE)).frame["launched_by"].tolist() == ["someone-else"]


def test_status_and_down_errors_carry_the_message_beside_the_context(fleet: Fleet) -> None:
    """A context's error row says what went wrong once: the context is its own column."""
    st = status(settings(FREE, DOWN))
    assert st.frame.empty
    [(ctx, kind, message)] = st.errors
    assert (ctx, kind) == (DOWN, "unreachable")
    assert message.startswith("connection refused by https://") and "context '" not in message
    assert f"\n{DOWN}: unreachable: connection refused by " in str(st)
    with pytest.raises(ConfigError, match=rf"^could not delete: {DOWN}: connection refused by "):
        down(["nothing"], settings(FREE, DOWN))


# --- dev pods, names, detach ----------------------------------------------------------------


def test_dev_pod_keeps_running_and_prints_the_exec_line(fleet: Fleet) -> None:
    result = run("", FREE, name="dev", gpus="H100")
    assert result.status == "Running"
    assert f"kubectl --context '{FREE}' -n default exec -it dev -- /bin/bash" in str(result)
    time.sleep(0.5)  # a dev pod must still run after its launch returned
    assert pod(fleet, FREE, "dev")["status"]["phase"] == "Running"


def test_names_reuse_a_running_launch(fleet: Fleet) -> None:
    first = run("sleep 60", FREE, name="job", detach=True)
    fleet.clear_requests()
    again = run("sleep 60", FREE, FREE2, name="job", detach=True)
    # The new body runs on the running pod (SkyPilot's `sky launch -c`), detached here.
    assert again.status == "Reused" and again.context == FREE
    assert "Started the new body on the existing pod 'job' (detached)" in str(again)
    assert writes(fleet, FREE) == 0 and writes(fleet, FREE2) == 0
    assert first.context == FREE


def test_detach_returns_once_running(fleet: Fleet) -> None:
    t0 = time.monotonic()
    result = run("echo hi; sleep 60", FREE, name="bg", gpus="H100", detach=True)
    assert time.monotonic() - t0 < 5
    assert result.status == "Running" and result.exit_code is None
    assert pod(fleet, FREE, "bg")["status"]["phase"] == "Running"


def test_dry_run_returns_the_plan_and_creates_nothing(fleet: Fleet) -> None:
    fleet.clear_requests()
    plan = launch_task(
        parse_task("true", gpus="H100"), settings(FULL, FREE), LaunchControls(dry_run=True)
    )
    assert isinstance(plan, Plan) and plan.chosen == FULL
    for cluster in (FULL, FREE):
        assert writes(fleet, cluster) == 0


def test_launch_takes_task_options_and_their_fields_as_keywords(fleet: Fleet) -> None:
    """`skymagic.launch(body, gpus=...)` and `launch(body, TaskOptions(...))` plan alike, and
    so do `launch(body, detach=...)` and `launch(body, controls=LaunchControls(...))`."""
    fleet.clear_requests()
    by_keywords = launch("true", gpus="H100", settings=settings(FULL, FREE), dry_run=True)
    by_options = launch(
        "true", TaskOptions(gpus="H100:4", cpus=1), settings=settings(FULL, FREE), dry_run=True
    )
    pinned = launch(
        "true",
        TaskOptions(gpus="H100"),
        infra=f"k8s/{FREE}",
        settings=settings(FULL, FREE),
        dry_run=True,
    )
    assert isinstance(by_keywords, Plan) and isinstance(by_options, Plan)
    assert isinstance(pinned, Plan)
    assert by_keywords.task.gpu_count == 1 and by_options.task.gpu_count == 4
    assert by_options.task.cpus == 1.0
    assert (by_keywords.chosen, pinned.chosen, pinned.task.gpu) == (FULL, FREE, "H100")
    # LaunchControls likewise: a value, with its fields as keywords set over it.
    avoided = launch(
        "true",
        TaskOptions(gpus="H100"),
        LaunchControls(dry_run=True),
        settings=settings(FULL, FREE),
        avoid_context=FULL,
    )
    assert isinstance(avoided, Plan) and avoided.chosen == FREE
    with pytest.raises(
        TypeError,
        match=r"unknown launch keywords 'detatch', 'gpu'; task options: .*gpus.*; launch controls: .*detach",
    ):
        launch("true", gpu="H100", detatch=True, settings=settings(FREE), dry_run=True)
    for cluster in (FULL, FREE):
        assert writes(fleet, cluster) == 0


def test_a_gpu_node_tainted_no_execute_takes_the_gpu_pod(
    make_fleet: Callable[..., Fleet], isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inventory counts a node whose GPU taint is NoExecute as usable, so the pod must
    # tolerate that effect too, or the plan sends it where the scheduler refuses it.
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"}
    node = {"name": "h100", "gpu": "H100", "gpus": 8, "cpu": 64, "memory_gb": 512}
    f = make_fleet(
        {
            "clusters": [
                {
                    "name": "noexec",
                    "pod_start_s": 0.05,
                    "nodes": [{**node, "taints": [taint]}],
                }
            ]
        }
    )
    monkeypatch.setenv("KUBECONFIG", f.kubeconfig)
    plan = launch_task(
        parse_task("true", gpus="H100"), settings("noexec"), LaunchControls(dry_run=True)
    )
    assert isinstance(plan, Plan) and plan.chosen == "noexec"
    result = run("sleep 60", "noexec", name="noexec", gpus="H100:2", detach=True)
    assert result.status == "Running" and result.context == "noexec"
    assert pod(f, "noexec", "noexec")["spec"]["nodeName"].startswith("h100")
