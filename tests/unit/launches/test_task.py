"""parse_task: a `%%sky_launch` cell (script or SkyPilot task YAML) plus flags -> a Task."""

from __future__ import annotations

import textwrap

import pytest

from skymagic.errors import ConfigError
from skymagic.launches.task import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE, Task, parse_task


@pytest.fixture(autouse=True)
def _user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYMAGIC_USER", "Ada Lovelace")


def test_a_script_body_is_the_run_command_and_an_empty_body_a_dev_pod() -> None:
    task = parse_task("python train.py\n", name="train")
    assert task.run == "python train.py\n" and not task.is_dev_pod
    assert task.user == "ada-lovelace"  # DNS-label safe
    dev = parse_task("   \n", name="dev")
    assert dev.run is None and dev.is_dev_pod


def test_yaml_task_fields() -> None:
    body = textwrap.dedent(
        """\
        name: finetune
        resources:
          accelerators: {h100-80gb: 2}
          cpus: 8+
          memory: 64GB
          infra: k8s/prod
          image_id: docker:ghcr.io/me/img:1
          ports: 8888
        envs: {EPOCHS: 3}
        setup: pip install -r requirements.txt
        run: python train.py
        """
    )
    task = parse_task(body)
    assert task.name == "finetune"
    assert (task.gpu, task.gpu_count) == ("H100", 2)  # canonical: GFD's H100-80GB is H100
    assert (task.cpus, task.memory_gb) == (8.0, 64.0)
    assert task.infra == "k8s/prod"
    assert task.image == "ghcr.io/me/img:1"
    assert task.ports == (8888,)
    assert task.envs == {"EPOCHS": "3"}
    assert task.setup == "pip install -r requirements.txt" and task.run == "python train.py"


def test_flags_win_over_the_yaml() -> None:
    body = "name: a\nresources: {accelerators: A100:1, cpus: 4}\nenvs: {X: '1', Y: '2'}\nrun: x\n"
    task = parse_task(
        body,
        name="b",
        gpus="l4:4",
        cpus="16",
        memory=32,
        infra="k8s/other",
        image="img",
        env=["Y=3", "Z=a=b"],
        ports=[80, 443],
    )
    assert task.name == "b"
    assert (task.gpu, task.gpu_count) == ("L4", 4)
    assert (task.cpus, task.memory_gb, task.infra, task.image) == (16.0, 32.0, "k8s/other", "img")
    assert task.envs == {"X": "1", "Y": "3", "Z": "a=b"}
    assert task.ports == (80, 443)


def test_sizes_and_images_default_as_skypilots() -> None:
    gpu = Task(name="g", gpu="H100", gpu_count=2)
    assert (gpu.cpu_request, gpu.memory_request_gb) == (8.0, 32.0)
    assert gpu.container_image == DEFAULT_GPU_IMAGE
    assert gpu.instance() == "8CPU--32GB--2H100"
    cpu = Task(name="c")
    assert (cpu.cpu_request, cpu.memory_request_gb) == (2.0, 2.0)
    assert cpu.container_image == DEFAULT_CPU_IMAGE
    assert Task(name="h", cpus=0.5, memory_gb=1.5).instance() == "0.5CPU--1.5GB"


def test_a_body_that_is_not_a_task_yaml_stays_a_script() -> None:
    # A shell line that happens to parse as YAML (no SkyPilot task key) stays a script...
    assert parse_task("echo: hello", name="e").run == "echo: hello"
    # ...but a mapping with a task key is a task: its unknown key is refused, never run.
    with pytest.raises(ConfigError, match="foo: not a SkyPilot task key"):
        parse_task("foo: 1\nrun: x", name="f")


def test_a_generated_name_is_valid_and_names_are_cleaned_to_dns_labels() -> None:
    task = parse_task("true")
    assert task.name.startswith("sky-") and task.name.endswith("-ada-lovelace")
    assert parse_task("true", name="MyRun").name == "myrun"
    cleaned = parse_task("true", name="bad_name")
    assert cleaned.name == "bad-name" and "launching as 'bad-name'" in cleaned.notes[0]
    assert parse_task("true", name="x" * 53).name == "x" * 52


@pytest.mark.parametrize(
    ("body", "flags", "expected"),
    [
        ("run: x\nnum_nodes: 0\n", {}, "num_nodes: 0 must be a whole number of nodes"),
        ("true", {"num_nodes": "two"}, "--num-nodes 'two' is not a whole number"),
        ("true", {"num_nodes": 0}, "--num-nodes must be at least 1"),
        ("run: x\nresources: [1]\n", {}, "resources: must be a mapping"),
        ("run: x\nenvs: [A]\n", {}, "envs: must be a mapping"),
        ("run: x\nresources: {accelerators: {H100: 0.5}}\n", {}, "fractional GPUs"),
        ("true", {"gpus": "H100:x"}, "H100:x"),
        ("true", {"cpus": "lots"}, "--cpus 'lots' is not a number"),
        ("true", {"memory": "0"}, "--memory must be positive"),
        ("true", {"cpus": "nan"}, "--cpus 'nan' is not a finite number"),
        ("true", {"env": ["NOEQUALS"]}, "--env NOEQUALS: NOEQUALS is not set in your environment"),
        ("true", {"name": "__"}, "launch name '__' has no letters or digits"),
    ],
)
def test_bad_input_is_one_clear_error(body: str, flags: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_task(body, **flags)  # type: ignore[arg-type]
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
