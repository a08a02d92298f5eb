"""The task YAML rules: what is a task, what each key becomes, one error for every refusal."""

from __future__ import annotations

import pytest

from skymagic.errors import ConfigError
from skymagic.launches.task import parse_task
from skymagic.launches.taskyaml import recognise


def test_a_typo_key_is_refused_never_run_as_a_script() -> None:
    body = "name: job\nrnu: rm -rf /tmp/x\nsetup: echo hi\n"
    with pytest.raises(ConfigError) as info:
        parse_task(body)
    assert "rnu: not a SkyPilot task key (did you mean 'run'?)" in info.value.message


def test_scripts_stay_scripts() -> None:
    for script in ("echo hi", "python train.py --lr 0.1\necho done", "#!/bin/sh\nname: x"):
        task = parse_task(script, name="s")
        assert task.run == script and recognise(script) is None
    assert parse_task("", name="dev").is_dev_pod


def test_task_lines_that_do_not_parse_are_refused_not_run() -> None:
    with pytest.raises(ConfigError, match="looks like a task YAML but is not valid YAML"):
        parse_task("run: echo hi\n  bad: [\n")


def test_several_documents_are_refused() -> None:
    with pytest.raises(ConfigError, match="has 2 documents"):
        parse_task("name: a\nrun: echo a\n---\nname: b\nrun: echo b\n")


def test_one_error_lists_every_refused_key_with_what_to_do() -> None:
    body = """\
name: big
file_mounts: {/data: s3://bucket/data}
service: {replicas: 2}
resources:
  cloud: aws
  disk_tier: best
  job_recovery: FAILOVER
  cpus: lots
run: echo hi
"""
    with pytest.raises(ConfigError) as info:
        parse_task(body)
    text = info.value.message
    assert text.startswith("this task YAML has 5 things skymagic cannot do")
    for part in (
        "file_mounts./data: bucket source 's3://bucket/data' is not supported",
        "service: SkyServe services are not supported",
        "resources.cloud: aws: skymagic launches on Kubernetes only",
        "resources.job_recovery: recovery strategies belong to SkyPilot managed jobs",
        "resources.cpus 'lots' is not a number",
    ):
        assert part in text
    assert "disk_tier" not in text  # noted, not refused


def test_null_envs_must_be_passed_in_and_never_become_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = "envs:\n  HF_TOKEN: null\n  MODEL: m\nrun: echo $MODEL\n"
    with pytest.raises(ConfigError, match="env HF_TOKEN must be passed in: add --env HF_TOKEN"):
        parse_task(body)
    assert parse_task(body, env=["HF_TOKEN=abc"]).envs == {"HF_TOKEN": "abc", "MODEL": "m"}
    monkeypatch.setenv("HF_TOKEN", "from-shell")
    assert parse_task(body, env=["HF_TOKEN"]).envs["HF_TOKEN"] == "from-shell"


def test_secrets_are_filled_like_envs_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = "secrets:\n  WANDB_API_KEY: null\nrun: echo hi\n"
    with pytest.raises(ConfigError, match="secret WANDB_API_KEY must be passed in"):
        parse_task(body)
    monkeypatch.setenv("WANDB_API_KEY", "sk-very-secret")
    task = parse_task(body, secret=["WANDB_API_KEY"])
    assert task.secrets == {"WANDB_API_KEY": "sk-very-secret"} and not task.envs
    assert "sk-very-secret" not in repr(task)
    with pytest.raises(ConfigError, match="managed secrets"):
        parse_task("secrets: [a-managed-secret]\nrun: echo hi\n")


def test_names_are_cleaned_to_dns_labels_with_a_note() -> None:
    task = parse_task("name: bert_qa\nrun: echo hi\n")
    assert task.name == "bert-qa"
    assert "name: 'bert_qa' is not a valid Kubernetes name; launching as 'bert-qa'" in task.notes
    assert parse_task("name: minGPT-ddp\nrun: echo\n").name == "mingpt-ddp"


@pytest.mark.parametrize(
    ("accelerators", "expected", "order"),
    [
        ("H100:8", [("H100", 8)], "any_of"),
        ("{A100: 1}", [("A100", 1)], "any_of"),
        ("{A100:1}", [("A100", 1)], "any_of"),
        ("{H100: 8, A100-80GB: 8}", [("H100", 8), ("A100-80GB", 8)], "any_of"),
        ("{L4, A10G}", [("L4", 1), ("A10G", 1)], "any_of"),
        ("[H100:8, A100:8]", [("H100", 8), ("A100", 8)], "ordered"),
    ],
)
def test_accelerator_forms(accelerators: str, expected: list[tuple[str, int]], order: str) -> None:
    task = parse_task(f"resources:\n  accelerators: {accelerators}\nrun: echo\n", name="t")
    assert [(c.gpu, c.gpu_count) for c in task.all_choices()] == expected
    assert (task.gpu, task.gpu_count) == expected[0] and task.order == (
        order if len(expected) > 1 else task.order
    )


def test_any_of_and_ordered_items_combine_with_the_accelerators() -> None:
    body = """\
resources:
  accelerators: {L4: 1}
  any_of:
    - use_spot: true
    - use_spot: false
run: echo
"""
    task = parse_task(body, name="t")
    assert [(c.gpu, c.use_spot) for c in task.all_choices()] == [("L4", True), ("L4", False)]
    body = "resources:\n  ordered:\n    - accelerators: V100\n    - accelerators: T4\nrun: echo\n"
    task = parse_task(body, name="t")
    assert task.order == "ordered" and [c.gpu for c in task.all_choices()] == ["V100", "T4"]


def test_any_of_candidates_on_other_clouds_are_skipped_with_a_note() -> None:
    body = "resources:\n  accelerators: A100:8\n  any_of:\n    - cloud: gcp\n      image_id: projects/x\n    - cloud: kubernetes\nrun: echo\n"
    task = parse_task(body, name="t")
    assert [(c.gpu, c.gpu_count) for c in task.all_choices()] == [("A100", 8)]
    assert any("1 of 2 candidates name other infra (gcp)" in n for n in task.notes)


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ("8000", (8000,)),
        ("'8000-8003'", (8000, 8001, 8002, 8003)),
        ("[8081, '9000']", (8081, 9000)),
    ],
)
def test_ports_as_numbers_strings_and_ranges(ports: str, expected: tuple[int, ...]) -> None:
    assert parse_task(f"resources:\n  ports: {ports}\nrun: echo\n", name="t").ports == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "nan+", "0", "-1"])
def test_nan_inf_and_non_positive_sizes_are_refused(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_task("echo", name="t", cpus=value)
    with pytest.raises(ConfigError):
        parse_task("echo", name="t", memory=value)
    with pytest.raises(ConfigError):
        parse_task(f"resources:\n  disk_size: {value}\nrun: echo\n", name="t")


def test_kubernetes_meanings() -> None:
    body = """\
resources:
  cloud: kubernetes
  cpus: 4+
  memory: 16GB+
  disk_size: 256
  use_spot: true
  image_id: docker:vllm/vllm-openai:latest
  labels: {team: ml}
  priority_class: high
  instance_type: 8CPU--32GB--2H100
config:
  kubernetes:
    provision_timeout: 30
    pod_config:
      spec:
        nodeSelector: {pool: a}
    custom_metadata:
      annotations: {a: b}
  gcp:
    enable_gvnic: true
run: echo
"""
    t = parse_task(body, name="t")
    assert (t.cpus, t.memory_gb, t.disk_gb, t.use_spot) == (4.0, 16.0, 256.0, True)
    assert (t.image, t.labels, t.priority_class) == (
        "vllm/vllm-openai:latest",
        {"team": "ml"},
        "high",
    )
    assert t.provision_timeout == 30.0 and t.pod_config == {"spec": {"nodeSelector": {"pool": "a"}}}
    assert t.custom_metadata == {"annotations": {"a": "b"}}
    assert any(n.startswith("config.gcp: settings for gcp") for n in t.notes)


def test_a_region_names_a_context_only_on_kubernetes() -> None:
    t = parse_task("resources:\n  cloud: kubernetes\n  region: my-ctx\nrun: echo\n", name="t")
    assert t.infra == "k8s/my-ctx"
    with pytest.raises(ConfigError, match="region: us-east-1: a cloud region"):
        parse_task("resources:\n  region: us-east-1\nrun: echo\n", name="t")


def test_workdir_file_mounts_and_autostop_are_honoured() -> None:
    body = """\
workdir: ~/proj
file_mounts:
  ~/data: ./data
  /etc/app.yaml: app.yaml
resources:
  autostop: {idle_minutes: 10, down: true}
run: python train.py
"""
    task = parse_task(body)
    assert task.workdir == "~/proj"
    assert task.file_mounts == (("~/data", "./data"), ("/etc/app.yaml", "app.yaml"))
    assert (task.idle_minutes, task.down) == (10.0, True)
    assert parse_task("run: x\nresources: {autostop: 2h}\n").idle_minutes == 120.0
    assert parse_task("run: x\nresources: {autostop: true}\n").idle_minutes == 5.0
    flagged = parse_task("echo hi", workdir=".", idle_minutes_to_autostop=3, down=True)
    assert (flagged.workdir, flagged.idle_minutes, flagged.down) == (".", 3.0, True)
    with pytest.raises(ConfigError, match="remote path must be absolute or start with ~/"):
        parse_task("run: x\nfile_mounts: {data: ./data}\n")
    with pytest.raises(ConfigError, match="--down on a dev pod needs -i N"):
        parse_task("", down=True)
