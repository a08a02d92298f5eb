"""What to run: a Task, from a `%%sky_launch` cell (shell script or SkyPilot task YAML) + flags.

Which YAML keys are honoured, noted or refused is taskyaml.py's table; this module builds the
Task from what it read, the flags win over the YAML. Sizes default as SkyPilot's do: 4 vCPU
and 16 GB per GPU, or 2 vCPU and 2 GB without GPUs. `N+` means "at least N" (the request is N).
Several accelerator candidates (a dict, a list, any_of, ordered) become `Task.choices`; the
plan tries them by `Task.order` and launches `task.with_choice(choice)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from skymagic.core.targets import current_user
from skymagic.errors import ConfigError
from skymagic.launches import values
from skymagic.launches.taskyaml import Choice, TaskSpec, inspect, recognise

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "Choice",
    "Task",
    "TaskOptions",
    "parse_task",
]

DEFAULT_CPU_IMAGE = "python:3.11-slim"
DEFAULT_GPU_IMAGE = "nvcr.io/nvidia/pytorch:24.05-py3"


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
    disk_gb: float | None = None  # an ephemeral-storage request
    use_spot: bool | None = None  # True: spot nodes only; False: never spot; None: any node
    labels: dict[str, str] = field(default_factory=dict)
    priority_class: str | None = None
    # Values never printed: stored in a Kubernetes Secret, read through secretKeyRef.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    pod_config: dict[str, Any] = field(default_factory=dict)  # config.kubernetes.pod_config
    custom_metadata: dict[str, Any] = field(default_factory=dict)
    provision_timeout: float | None = None
    choices: tuple[Choice, ...] = ()  # resource candidates; () = the task's own resources
    order: str = "any_of"  # any_of: first fit in failover order; ordered: user's order first
    notes: tuple[str, ...] = ()  # accepted keys that mean nothing here, and name cleaning
    workdir: str | None = None  # a local folder, copied to ~/sky_workdir in the pod
    file_mounts: tuple[tuple[str, str], ...] = ()  # (remote path, local source)
    idle_minutes: float | None = None  # autostop after this many idle minutes
    down: bool = False  # remove the pod's objects once it has ended (autostop or run done)
    num_nodes: int = 1  # > 1: a gang of pods in one context, all or nothing (gang.py)

    @property
    def has_files(self) -> bool:
        """Whether the launch sends files into the pod before setup and run."""
        return bool(self.workdir or self.file_mounts)

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

    def all_choices(self) -> tuple[Choice, ...]:
        """The candidates to plan, at least one (the task's own resources)."""
        return self.choices or (Choice(self.gpu, self.gpu_count, self.use_spot),)

    def with_choice(self, choice: Choice) -> Task:
        """This task as launched for one candidate (its set fields win)."""
        return replace(
            self,
            gpu=choice.gpu,
            gpu_count=choice.gpu_count,
            use_spot=self.use_spot if choice.use_spot is None else choice.use_spot,
            cpus=self.cpus if choice.cpus is None else choice.cpus,
            memory_gb=self.memory_gb if choice.memory_gb is None else choice.memory_gb,
            disk_gb=self.disk_gb if choice.disk_gb is None else choice.disk_gb,
            image=self.image if choice.image is None else choice.image,
            choices=(),
        )


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
        env: "KEY=VALUE" items, added over the YAML's envs; "KEY" takes the local value.
        secret: like env, for secrets (stored in a Kubernetes Secret, never printed).
        ports: ports to expose through a Service (and forward to 127.0.0.1 from a notebook).
        workdir: a local folder copied to ~/sky_workdir in the pod before setup and run.
        idle_minutes_to_autostop: stop the pod after this many idle minutes.
        down: remove the pod's objects once it has ended (with autostop, or after its run).
        num_nodes: nodes (pods) the task runs on, all in one context (SkyPilot's num_nodes).
    """

    name: str | None = None
    gpus: str | None = None
    cpus: str | float | None = None
    memory: str | float | None = None
    infra: str | None = None
    image: str | None = None
    env: Sequence[str] = ()
    secret: Sequence[str] = ()
    ports: Sequence[int | str] = ()
    workdir: str | None = None
    idle_minutes_to_autostop: float | None = None
    down: bool = False
    num_nodes: int | None = None

    @classmethod
    def build(cls, options: TaskOptions | None = None, **flags: Any) -> TaskOptions:
        """`options` (default: none set) with `flags`, named as the fields, set over it."""
        unknown = sorted(set(flags) - {f.name for f in fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise TypeError(f"unknown task option {unknown[0]!r}; the options are: {known}")
        return replace(options or cls(), **flags)


# The TaskSpec fields a Task takes as read, by name (setup, cpus, image, labels, ...); the
# name, run, envs, secrets, candidates and notes are settled in parse_task.
_AS_READ = tuple(
    f.name
    for f in fields(TaskSpec)
    if f.name in {t.name for t in fields(Task)}
    and f.name not in ("name", "run", "envs", "secrets", "choices", "notes")
)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def parse_task(body: str = "", options: TaskOptions | None = None, **flags: Any) -> Task:
    """Build a Task from a cell body (script or YAML) and options; options win over the YAML.

    `flags` are TaskOptions fields as keywords (`parse_task(body, gpus="H100:8")`), set over
    `options`; an unknown name is a TypeError. A YAML with keys skymagic cannot honour is one
    ConfigError listing every such key with what to do.
    """
    opts = TaskOptions.build(options, **flags)
    doc = recognise(body)
    spec = TaskSpec() if doc is None else inspect(doc)
    if len(spec.refused) == 1:
        raise ConfigError(f"this task YAML has 1 thing skymagic cannot do: {spec.refused[0]}")
    if spec.refused:
        lines = "\n".join(f"  - {r}" for r in spec.refused)
        raise ConfigError(
            f"this task YAML has {len(spec.refused)} things skymagic cannot do; fix them and "
            f"launch again:\n{lines}"
        )
    notes = list(spec.notes)
    run = spec.run if doc is not None else (body if body.strip() else None)
    envs = _required(spec.envs, values.parse_flag_pairs(opts.env, "--env"), "env", "--env")
    secret_values = _required(
        spec.secrets, values.parse_flag_pairs(opts.secret, "--secret"), "secret", "--secret"
    )
    both = sorted(set(envs) & set(secret_values))
    if both:
        raise ConfigError(
            f"{both[0]} is both an env and a secret; keep it in one of envs and secrets"
        )
    task = Task(
        name="",
        run=run,
        envs=envs,
        secrets=secret_values,
        choices=tuple(spec.choices),
        **{key: getattr(spec, key) for key in _AS_READ},
    )
    if len(task.choices) == 1:
        task = task.with_choice(task.choices[0])
    elif task.choices:
        first = task.choices[0]
        task = replace(task, gpu=first.gpu, gpu_count=first.gpu_count)
    task = _apply_flags(task, opts)
    if task.down and task.idle_minutes is None and task.is_dev_pod:
        raise ConfigError(
            "--down on a dev pod needs -i N (how many idle minutes before it is removed)"
        )
    wanted = opts.name or spec.name or f"sky-{secrets.token_hex(2)}-{task.user}"
    name = values.clean_name(wanted)
    if not name:
        raise ConfigError(
            f"launch name {wanted!r} has no letters or digits; name it e.g. --name my-job"
        )
    if name != wanted:
        notes.append(f"name: {wanted!r} is not a valid Kubernetes name; launching as {name!r}")
    return replace(task, name=name, notes=tuple(notes))


def _apply_flags(task: Task, opts: TaskOptions) -> Task:
    if opts.gpus:
        ((gpu, count),) = values.gpu_candidates(opts.gpus, "--gpus")[:1]
        # The flag names the GPU; spot/on-demand and pinned-context candidates still apply.
        kept: list[Choice] = []
        for c in task.choices:
            c = replace(c, gpu=gpu, gpu_count=count)
            if c not in kept:
                kept.append(c)
        task = replace(task, gpu=gpu, gpu_count=count, choices=tuple(kept) if len(kept) > 1 else ())
    if opts.cpus is not None:
        task = replace(task, cpus=values.at_least(opts.cpus, "--cpus"))
    if opts.memory is not None:
        task = replace(task, memory_gb=values.at_least(opts.memory, "--memory"))
    if opts.infra:
        task = replace(task, infra=opts.infra)
    if opts.image:
        task = replace(task, image=opts.image)
    if opts.ports:
        task = replace(task, ports=values.ports(list(opts.ports), "--ports"))
    if opts.workdir:
        task = replace(task, workdir=values.workdir(opts.workdir, "--workdir"))
    if opts.idle_minutes_to_autostop is not None:
        task = replace(task, idle_minutes=values.idle_minutes(opts.idle_minutes_to_autostop, "-i"))
    if opts.down:
        task = replace(task, down=True)
    if opts.num_nodes is not None:
        task = replace(task, num_nodes=_num_nodes(opts.num_nodes))
    return task


def _num_nodes(value: Any) -> int:
    """--num-nodes: a whole number from 1 (SkyPilot's num_nodes)."""
    return values.whole_number(value, "--num-nodes", least=1, fix="write e.g. 2")


def _required(
    declared: dict[str, str | None], given: dict[str, str], what: str, flag: str
) -> dict[str, str]:
    """Declared values with the flags' over them; a null nobody filled is an error naming it.

    SkyPilot's `NAME: null` means "must be passed in" (`--env NAME=value`, or `--env NAME`
    to take the local value); it never becomes the string "None".
    """
    merged = {**declared, **given}
    missing = sorted(k for k, v in merged.items() if v is None)
    if missing:
        flags = " ".join(f"{flag} {k}" for k in missing)
        raise ConfigError(
            f"{what} {', '.join(missing)} must be passed in: add {flags} "
            f"(the value from your environment) or {flag} NAME=VALUE"
        )
    return {k: str(v) for k, v in merged.items()}
