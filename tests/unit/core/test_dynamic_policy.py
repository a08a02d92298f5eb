"""The shipped DynamicKubernetesContextsUpdatePolicy, called directly (no fleet): GPU names are
compared canonically, and its merged kubeconfig is written only when its content changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from skymagic.core.policy import DynamicKubernetesContextsUpdatePolicy, UserRequest
from skymagic.errors import PolicyError
from skymagic.launches.task import Task


def cluster_file(directory: Path, name: str) -> None:
    doc = {
        "clusters": [{"name": name, "cluster": {"server": f"https://{name}.example:6443"}}],
        "users": [{"name": name, "user": {"token": "t"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
    }
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yaml").write_text(yaml.safe_dump(doc))


def request(tmp_path: Path, task: Any = None, **settings: Any) -> UserRequest:
    source = tmp_path / "source"
    if not source.exists():
        cluster_file(source, "alpha")
    section = {"source": {"directory": str(source)}, "kubeconfig": str(tmp_path / "merged")}
    section.update(settings)
    return UserRequest("launch", task, {"dynamic_kubernetes_contexts": section}, "u")


def gpu_task(gpu: str, count: int = 1) -> Task:
    return Task(name="t", run="x", gpu=gpu, gpu_count=count, user="u")


@pytest.mark.parametrize(
    ("allowed", "gpu"),
    [
        (["h100-80gb"], "H100"),  # GFD's spelling of the card, lower case
        (["nvidia-h100-80gb"], "H100"),  # GKE's
        (["a100-80gb", "L4"], "A100-80GB"),
        (["v5e"], "tpu-v5-lite-podslice"),
    ],
)
def test_allowed_gpus_match_by_canonical_name(tmp_path: Path, allowed: list[str], gpu: str) -> None:
    answer = DynamicKubernetesContextsUpdatePolicy().validate_and_mutate(
        request(tmp_path, gpu_task(gpu), allowed_gpus=allowed)
    )
    assert answer.task.gpu == gpu


@pytest.mark.parametrize(("allowed", "gpu"), [(["A100"], "A100-80GB"), (["H100"], "H200")])
def test_other_gpus_are_refused(tmp_path: Path, allowed: list[str], gpu: str) -> None:
    with pytest.raises(PolicyError, match=f"GPU type {gpu} is not allowed; allowed: {allowed[0]}"):
        DynamicKubernetesContextsUpdatePolicy().validate_and_mutate(
            request(tmp_path, gpu_task(gpu), allowed_gpus=allowed)
        )


def test_allowed_gpus_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="allowed_gpus must be a list"):
        DynamicKubernetesContextsUpdatePolicy().validate_and_mutate(
            request(tmp_path, gpu_task("H100"), allowed_gpus="H100")
        )


def test_the_merged_kubeconfig_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    policy = DynamicKubernetesContextsUpdatePolicy()
    merged = tmp_path / "merged"
    policy.validate_and_mutate(request(tmp_path))
    first = merged.stat()
    assert first.st_mode & 0o077 == 0
    for _ in range(3):
        policy.validate_and_mutate(request(tmp_path))
    again = merged.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    cluster_file(tmp_path / "source", "beta")
    answer = policy.validate_and_mutate(request(tmp_path))
    assert merged.stat().st_ino != first.st_ino
    assert [c["name"] for c in yaml.safe_load(merged.read_text())["contexts"]] == ["alpha", "beta"]
    assert answer.config["kubernetes"]["allowed_contexts"] == ["alpha", "beta"]
    # A file someone made readable by others is rewritten private even when its text is right.
    merged.chmod(0o644)
    policy.validate_and_mutate(request(tmp_path))
    assert merged.stat().st_mode & 0o077 == 0
