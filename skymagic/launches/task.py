"""What to run: a Task, from a `%%sky_launch` cell (shell script or SkyPilot task YAML) + flags.

The YAML subset is SkyPilot's: name, resources {accelerators, cpus, memory, infra, image_id,
ports}, envs, setup, run. Flags override the YAML. Sizes default as SkyPilot's do: 4 vCPU and
16 GB per GPU, or 2 vCPU and 2 GB without GPUs. `N+` means "at least N" (the request is N).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

from skymagic.core.targets import current_user
from skymagic.errors import ConfigError
from skymagic.gpus.accelerators import normalize_gpu_name, parse_gpu_request

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "Task",
    "TaskOptions",
    "parse_task",
]

DEFAULT_CPU_IMAGE = "python:3.11-slim"
DEFAULT_GPU_IMAGE = "nvcr.io/nvidia/pytorch:24.05-py3"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
_YAML_KEYS = {"name", "resources", "envs", "setup", "run", "num_nodes", "workdir", "file_mounts"}
_RESOURCE_KEYS = {"accelerators", "cpus", "memory", "infra", "image_id", "ports", "cloud"}


@dataclass(frozen=True)
class Task:
    """A single-pod task, ready to plan."""

    name: str
    run: str | None = None  # None: a dev pod that sleeps until stopped
    setup: str | None = None
    gpu: str | None = None  # canonical name, e.g. "H100"
    gpu_count: int = 0
    cpus: float | None = None  # None: SkyPilot's default for the GPU count
    memory_gb: float | None = None
    infra: str | None = None
    image: str | None = None
    envs: dict[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    user: str = field(default_factory=current_user)

    @property
    def cpu_request(self) -> float:
        if self.cpus is not None:
            return self.cpus
        return 4.0 * self.gpu_count if self.gpu_count else 2.0

    @property
    def memory_request_gb(self) -> float:
        if self.memory_gb is not None:
            return self.memory_gb
        return 16.0 * self.gpu_count if self.gpu_count else 2.0

    @property
    def container_image(self) -> str:
        if self.image:
            return self.image
        return DEFAULT_GPU_IMAGE if self.gpu_count else DEFAULT_CPU_IMAGE

    @property
    def is_dev_pod(self) -> bool:
        return not (self.run and self.run.strip())

    def instance(self) -> str:
        """SkyPilot's INSTANCE column: e.g. 4CPU--16GB--1H100."""
        text = f"{_num(self.cpu_request)}CPU--{_num(self.memory_request_gb)}GB"
        if self.gpu_count:
            text += f"--{self.gpu_count}{self.gpu}"
        return text


@dataclass(frozen=True)
class TaskOptions:
    """The launch flags that shape a Task; each one set wins over the task YAML.

    The one list of them: `%%sky_launch` and `skymagic launch` fill it from their parsed flags
    (same names), `parse_task` and `launch()` take it or its fields as keywords.

    Attributes:
        name: launch name (default: the YAML's, else sky-XXXX-USER); unique per user.
        gpus: GPU and count, e.g. "H100" or "H100:8".
        cpus / memory: vCPUs / GB, e.g. 4 or "4+" (at least 4; the request is 4).
        infra: "k8s" (failover over the allowed contexts) or "k8s/CONTEXT".
        image: container image.
        env: "KEY=VALUE" items, added over the YAML's envs.
        ports: ports to expose through a Service.
    """

    name: str | None = None
    gpus: str | None = None
    cpus: str | float | None = None
    memory: str | float | None = None
    infra: str | None = None
    image: str | None = None
    env: Sequence[str] = ()
    ports: Sequence[int] = ()

    @classmethod
    def build(cls, options: TaskOptions | None = None, **flags: Any) -> TaskOptions:
        """`options` (default: none set) with `flags`, named as the fields, set over it."""
        unknown = sorted(set(flags) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise TypeError(f"unknown task option {unknown[0]!r}; the options are: {known}")
        return replace(options or cls(), **flags)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _at_least(value: Any, what: str) -> float:
    """'4', 4, '4+' -> 4.0 ('N+' means at least N; the request is N)."""
    text = str(value).strip()
    if text.endswith("+"):
        text = text[:-1]
    if text.lower().endswith("gb"):
        text = text[:-2]
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a number; write e.g. 4 or 4+") from None
    if number <= 0:
        raise ConfigError(f"{what} must be positive, got {value!r}")
    return number


def _accelerators(value: Any) -> tuple[str, int]:
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise ConfigError(
                "resources.accelerators lists several GPU types; skymagic launches one pod, "
                "so name one (e.g. H100:8)"
            )
        ((name, count),) = value.items()
        value = f"{name}:{count}"
    if isinstance(value, (list, tuple)):
        raise ConfigError("resources.accelerators as a list is not supported; name one GPU:N")
    try:
        name, count = parse_gpu_request(str(value))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return normalize_gpu_name(name), count


def _env_pairs(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env {item!r} must look like KEY=VALUE")
        out[key] = value
    return out


def _looks_like_yaml_task(body: str) -> dict[str, Any] | None:
    stripped = body.strip()
    if not stripped:
        return None
    try:
        doc = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return None
    if (
        isinstance(doc, dict)
        and doc
        and set(doc) <= _YAML_KEYS
        and ("run" in doc or "resources" in doc or "setup" in doc)
    ):
        return doc
    return None


def parse_task(body: str = "", options: TaskOptions | None = None, **flags: Any) -> Task:
    """Build a Task from a cell body (script or YAML) and options; options win over the YAML.

    `flags` are TaskOptions fields as keywords (`parse_task(body, gpus="H100:8")`), set over
    `options`; an unknown name is a TypeError.
    """
    opts = TaskOptions.build(options, **flags)
    doc = _looks_like_yaml_task(body)
    task = Task(name="")
    if doc is not None:
        unknown = sorted(set(doc) - _YAML_KEYS)
        if unknown:
            raise ConfigError(f"task YAML key {unknown[0]!r} is not supported")
        if int(doc.get("num_nodes") or 1) != 1:
            raise ConfigError("num_nodes > 1 is not supported: skymagic launches one pod per task")
        res = doc.get("resources") or {}
        if not isinstance(res, Mapping):
            raise ConfigError("task YAML 'resources' must be a mapping")
        bad = sorted(set(res) - _RESOURCE_KEYS)
        if bad:
            raise ConfigError(
                f"resources.{bad[0]} is not supported; "
                f"supported: {', '.join(sorted(_RESOURCE_KEYS))}"
            )
        envs = doc.get("envs") or {}
        if not isinstance(envs, Mapping):
            raise ConfigError("task YAML 'envs' must be a mapping of NAME: value")
        image_id = res.get("image_id")
        if isinstance(image_id, str) and image_id.startswith("docker:"):
            image_id = image_id[len("docker:") :]
        task = replace(
            task,
            name=str(doc.get("name") or ""),
            run=str(doc["run"]) if doc.get("run") else None,
            setup=str(doc["setup"]) if doc.get("setup") else None,
            cpus=_at_least(res["cpus"], "resources.cpus") if res.get("cpus") else None,
            memory_gb=_at_least(res["memory"], "resources.memory") if res.get("memory") else None,
            infra=str(res["infra"]) if res.get("infra") else None,
            image=str(image_id) if image_id else None,
            envs={str(k): str(v) for k, v in envs.items()},
            ports=tuple(int(p) for p in _as_list(res.get("ports"))),
        )
        if res.get("accelerators"):
            gpu, count = _accelerators(res["accelerators"])
            task = replace(task, gpu=gpu, gpu_count=count)
    else:
        task = replace(task, run=body if body.strip() else None)
    if opts.gpus:
        gpu, count = _accelerators(opts.gpus)
        task = replace(task, gpu=gpu, gpu_count=count)
    if opts.cpus is not None:
        task = replace(task, cpus=_at_least(opts.cpus, "--cpus"))
    if opts.memory is not None:
        task = replace(task, memory_gb=_at_least(opts.memory, "--memory"))
    if opts.infra:
        task = replace(task, infra=opts.infra)
    if opts.image:
        task = replace(task, image=opts.image)
    if opts.env:
        task = replace(task, envs={**task.envs, **_env_pairs(opts.env)})
    if opts.ports:
        task = replace(task, ports=tuple(int(p) for p in opts.ports))
    final_name = (opts.name or task.name or f"sky-{secrets.token_hex(2)}-{task.user}").lower()
    if not _NAME_RE.match(final_name):
        raise ConfigError(
            f"launch name {final_name!r} is not a valid name: use lower-case letters, digits "
            "and '-', at most 52 characters, starting and ending with a letter or digit"
        )
    return replace(task, name=final_name)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
