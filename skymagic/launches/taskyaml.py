"""SkyPilot task YAML as users write it: recognise it, and give every key one of three fates.

A cell body is a task YAML when it parses as a mapping with at least one of SkyPilot's task
keys; otherwise it is a shell script. Nothing that looks like a task is ever run as a script:
a body with several YAML documents (a DAG or job group) and a body whose lines start like task
keys but does not parse are refused.

Every key of SkyPilot's task schema (sky/utils/schemas.py: get_task_schema,
get_resources_schema, the task `config:` overrides) is, here:
- honoured with its Kubernetes meaning (read into the TaskSpec), or
- noted: accepted, kept on the Task and shown in the plan with why it means nothing here
  (what SkyPilot itself ignores on Kubernetes), or
- refused: `inspect` collects EVERY refused key of the file, each with what to do, and
  parse_task raises them as one error, so a user fixes the file in one pass.
A key that is not in SkyPilot's schema at all (a typo such as `rnu:`) is refused with the
nearest known key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from skymagic.errors import ConfigError
from skymagic.launches import values

__all__ = ["TASK_KEYS", "Choice", "TaskSpec", "inspect", "recognise"]

TASK_KEYS = frozenset(
    {
        "name", "workdir", "event_callback", "num_nodes", "resources", "file_mounts",
        "service", "pool", "setup", "run", "envs", "secrets", "managed_secrets", "inputs",
        "outputs", "file_mounts_mapping", "config", "volumes", "volume_mounts",
        "api_server_access", "_metadata",
    }
)  # fmt: skip
_RESOURCE_KEYS = frozenset(
    {
        "cloud", "region", "zone", "infra", "cpus", "memory", "accelerators", "instance_type",
        "use_spot", "job_recovery", "spot_recovery", "volumes", "disk_size", "ephemeral_storage",
        "disk_tier", "network_tier", "local_disk", "max_hourly_cost", "ports", "labels",
        "accelerator_args", "_no_missing_accel_warnings", "image_id", "autostop", "priority",
        "priority_class", "any_of", "ordered", "_docker_login_config", "_is_image_managed",
        "_requires_fuse", "_cluster_config_overrides",
    }
)  # fmt: skip

_REFUSED_TOP = {
    "service": "SkyServe services are not supported: remove service to launch the task itself "
    "(resources.ports get a Kubernetes Service)",
    "pool": "worker pools are not supported: remove pool to launch the task itself",
    "event_callback": "managed-job event callbacks are not supported: remove event_callback",
    "managed_secrets": "managed secrets need SkyPilot's API server: write secrets: {NAME: null} "
    "and pass --secret NAME",
    "volumes": "SkyPilot volumes are not supported: mount a PersistentVolumeClaim with "
    "config.kubernetes.pod_config",
    "volume_mounts": "SkyPilot volumes are not supported: mount a PersistentVolumeClaim with "
    "config.kubernetes.pod_config",
    "file_mounts_mapping": "an internal SkyPilot key: remove it",
}
_NOTED_TOP = {
    "inputs": "used only for SkyPilot's data-egress cost estimate; no effect on a launch",
    "outputs": "used only for SkyPilot's data-egress cost estimate; no effect on a launch",
    "api_server_access": "there is no SkyPilot API server here; the pod gets no API access",
    "_metadata": "SkyPilot's internal metadata; ignored",
}
_REFUSED_RESOURCES = {
    "zone": "zones do not apply to Kubernetes: remove zone (pick a context with "
    "infra: k8s/CONTEXT)",
    "job_recovery": "recovery strategies belong to SkyPilot managed jobs: remove it",
    "spot_recovery": "recovery strategies belong to SkyPilot managed jobs: remove it",
    "volumes": "SkyPilot volumes are not supported: mount a PersistentVolumeClaim with "
    "config.kubernetes.pod_config",
    "priority": "managed-job priority is not supported: for a Kubernetes priority write "
    "priority_class",
    "_docker_login_config": "an internal SkyPilot key: remove it; for a private registry add "
    "imagePullSecrets with config.kubernetes.pod_config",
    "_is_image_managed": "an internal SkyPilot key: remove it",
    "_requires_fuse": "an internal SkyPilot key: remove it",
    "_cluster_config_overrides": "an internal SkyPilot key: use config.kubernetes.pod_config",
}
_NOTED_RESOURCES = {
    "disk_tier": "a pod's disk is its node's ephemeral storage; disk tiers mean nothing on "
    "Kubernetes",
    "network_tier": "skymagic does not set up InfiniBand/RDMA; request the device with "
    "config.kubernetes.pod_config",
    "local_disk": "a pod's disk is its node's ephemeral storage; local_disk means nothing on "
    "Kubernetes",
    "max_hourly_cost": "your own clusters have no hourly price here (COST is 0.00)",
    "accelerator_args": "TPU VM arguments; they mean nothing for a pod",
    "_no_missing_accel_warnings": "SkyPilot's internal switch; ignored",
}
_K8S_CONFIG_HONOURED = ("pod_config", "custom_metadata", "provision_timeout")
_K8S_CONFIG_REFUSED = {
    "remote_identity": "set kubernetes.remote_identity in the config file, not per task",
    "dws": "GKE Dynamic Workload Scheduler provisioning is not supported: remove it",
    "kueue": "Kueue admission is not supported here: add Kueue's queue label with "
    "config.kubernetes.custom_metadata instead",
}
_CONFIG_NOTED = {
    "docker": "pods run their image directly, without docker run options",
    "nvidia_gpus": "a VM driver setting; it means nothing for pods",
    "active_workspace": "SkyPilot workspaces do not apply here",
}
_OTHER_CLOUD_SECTIONS = frozenset(
    {
        "aws", "gcp", "azure", "oci", "lambda", "runpod", "vast", "ssh", "nebius", "ibm",
        "scp", "vsphere", "fluidstack", "paperspace", "cudo", "do", "hyperbolic", "seeweb",
        "shadeform", "primeintellect", "slurm", "coreweave", "r2",
    }
)  # fmt: skip
_K8S_NAMES = ("kubernetes", "k8s")
_INSTANCE_RE = re.compile(
    r"^(?P<cpu>[0-9.]+)CPU--(?P<mem>[0-9.]+)GB(?:--(?P<gpus>[0-9]+)(?P<gpu>[A-Za-z0-9-]+))?$"
)
_TASK_LINE_RE = re.compile(r"^(" + "|".join(sorted(TASK_KEYS)) + r")\s*:", re.M)


@dataclass(frozen=True)
class Choice:
    """One resource candidate: what a pod asks for when this candidate is tried.

    None fields take the task's own value (the flags and the top-level resources).
    """

    gpu: str | None = None
    gpu_count: int = 0
    use_spot: bool | None = None
    cpus: float | None = None
    memory_gb: float | None = None
    disk_gb: float | None = None
    image: str | None = None
    context: str | None = None  # pinned by the candidate's infra: k8s/CONTEXT or region

    def label(self) -> str:
        text = f"{self.gpu}:{self.gpu_count}" if self.gpu_count else "CPU"
        if self.use_spot:
            text += " spot"
        elif self.use_spot is False:
            text += " on-demand"
        if self.context:
            text += f" @{self.context}"
        return text


@dataclass
class TaskSpec:
    """What a task YAML asks for, after the key table: only honoured keys are read here."""

    name: str | None = None
    run: str | None = None
    setup: str | None = None
    envs: dict[str, str | None] = field(default_factory=dict)
    secrets: dict[str, str | None] = field(default_factory=dict)
    cpus: float | None = None
    memory_gb: float | None = None
    disk_gb: float | None = None
    image: str | None = None
    infra: str | None = None
    ports: tuple[int, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    priority_class: str | None = None
    use_spot: bool | None = None
    choices: list[Choice] = field(default_factory=list)
    order: str = "any_of"
    pod_config: dict[str, Any] = field(default_factory=dict)
    custom_metadata: dict[str, Any] = field(default_factory=dict)
    provision_timeout: float | None = None
    workdir: str | None = None
    file_mounts: tuple[tuple[str, str], ...] = ()
    idle_minutes: float | None = None
    down: bool = False
    num_nodes: int = 1
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    honoured: list[str] = field(default_factory=list)


def recognise(body: str) -> dict[str, Any] | None:
    """The task mapping if `body` is a SkyPilot task YAML, None if it is a shell script.

    Raises ConfigError for what is a task but cannot be read as one: several documents (a
    DAG or job group), or task-like lines that do not parse as YAML.
    """
    stripped = body.strip()
    if not stripped or stripped.startswith("#!"):
        return None
    try:
        docs = [d for d in yaml.safe_load_all(stripped) if d is not None]
    except yaml.YAMLError as exc:
        if _TASK_LINE_RE.search(stripped):
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(
                f"this cell looks like a task YAML but is not valid YAML{where}: "
                f"{getattr(exc, 'problem', None) or exc}; fix it, or start the cell with "
                "#!/bin/sh to run it as a script"
            ) from None
        return None
    tasks = [d for d in docs if isinstance(d, Mapping) and set(map(str, d)) & TASK_KEYS]
    if len(docs) > 1 and tasks:
        raise ConfigError(
            f"this task YAML has {len(docs)} documents (a SkyPilot DAG or job group); "
            "skymagic launches one task: keep one document and launch each task separately"
        )
    if len(docs) == 1 and tasks:
        return {str(k): v for k, v in tasks[0].items()}
    return None


def _did_you_mean(key: str, known: frozenset[str]) -> str:
    if key == "candidates":
        return " (SkyPilot now writes candidates as any_of)"
    near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _mapping(value: Any, what: str, spec: TaskSpec) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        spec.refused.append(f"{what}: must be a mapping of key: value")
        return {}
    return {str(k): v for k, v in value.items()}


def inspect(doc: Mapping[str, Any]) -> TaskSpec:
    """Classify every key of a task mapping; values of honoured keys are read and checked.

    A bad value of an honoured key (e.g. `cpus: lots`) is a refusal too, so the one error
    lists it beside the unsupported keys.
    """
    spec = TaskSpec()
    for key, value in doc.items():
        try:
            _top(spec, str(key), value)
        except ConfigError as exc:
            spec.refused.append(exc.message)
    return spec


def _top(spec: TaskSpec, key: str, value: Any) -> None:
    if key in _REFUSED_TOP:
        spec.refused.append(f"{key}: {_REFUSED_TOP[key]}")
    elif key in _NOTED_TOP:
        spec.notes.append(f"{key}: {_NOTED_TOP[key]}")
    elif key == "name":
        spec.name = None if value is None else str(value)
        spec.honoured.append(key)
    elif key in ("run", "setup"):
        if value is not None and not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: must be a shell command (a string)")
        setattr(spec, key, None if value is None else str(value))
        spec.honoured.append(key)
    elif key == "num_nodes":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            if value is not None:
                raise ConfigError(f"num_nodes: {value!r} must be a whole number of nodes")
        else:
            spec.num_nodes = value  # > 1: a gang in one context (gang.py)
        spec.honoured.append(key)
    elif key == "workdir":
        spec.workdir = values.workdir(value)
        spec.honoured.append(key)
    elif key == "file_mounts":
        spec.file_mounts = values.file_mounts(value)
        spec.honoured.append(key)
    elif key == "envs":
        spec.envs = _named_values(value, key, spec)
        spec.honoured.append(key)
    elif key == "secrets":
        if isinstance(value, list):
            raise ConfigError(
                "secrets: a list names SkyPilot managed secrets, which need its API server; "
                "write secrets: {NAME: null} and pass --secret NAME"
            )
        spec.secrets = _named_values(value, key, spec)
        spec.honoured.append(key)
    elif key == "resources":
        _resources(spec, _mapping(value, key, spec))
    elif key == "config":
        _config(spec, _mapping(value, key, spec))
    else:
        raise ConfigError(
            f"{key}: not a SkyPilot task key{_did_you_mean(key, TASK_KEYS)}; fix or remove it"
        )


def _named_values(value: Any, what: str, spec: TaskSpec) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, val in _mapping(value, what, spec).items():
        if not values.ENV_NAME_RE.match(name):
            spec.refused.append(f"{what}.{name}: not a valid environment variable name")
            continue
        if isinstance(val, (Mapping, list)):
            spec.refused.append(f"{what}.{name}: must be a string, a number or null")
            continue
        out[name] = None if val is None else str(val)
    return out


def _resources(spec: TaskSpec, res: dict[str, Any]) -> None:
    base = _resource_values(spec, res, "resources", top=True)
    alternatives = [k for k in ("any_of", "ordered") if res.get(k) is not None]
    if len(alternatives) == 2:
        spec.refused.append("resources: any_of and ordered together; keep one of them")
        return
    gpus = base.pop("_gpus", [])
    if alternatives:
        spec.order = alternatives[0]
        spec.honoured.append(f"resources.{spec.order}")
        items = res[spec.order]
        if not isinstance(items, list) or not items:
            spec.refused.append(f"resources.{spec.order}: must be a list of resource mappings")
            return
        skipped: list[str] = []
        for i, item in enumerate(items):
            where = f"resources.{spec.order}[{i}]"
            if not isinstance(item, Mapping):
                spec.refused.append(f"{where}: must be a mapping of resource keys")
                continue
            sub = _resource_values(spec, {str(k): v for k, v in item.items()}, where, top=False)
            if sub.pop("_other_infra", None):
                skipped.append(str(item.get("cloud") or item.get("infra")))
                continue
            item_gpus = sub.pop("_gpus", None) or gpus or [(None, 0)]
            for gpu, count in item_gpus:
                spec.choices.append(Choice(gpu=gpu, gpu_count=count, **sub))
        if skipped and spec.choices:
            spec.notes.append(
                f"resources.{spec.order}: {len(skipped)} of {len(items)} candidates name "
                f"other infra ({', '.join(skipped)}) and are skipped"
            )
        elif skipped:
            spec.refused.append(
                f"resources.{spec.order}: every candidate names other infra "
                f"({', '.join(skipped)}); skymagic launches on Kubernetes only: add a "
                "candidate with infra: k8s"
            )
    elif gpus:
        if isinstance(res.get("accelerators"), list):
            spec.order = "ordered"
        spec.choices = [Choice(gpu=g, gpu_count=c) for g, c in gpus]


def _resource_values(
    spec: TaskSpec, res: dict[str, Any], where: str, *, top: bool
) -> dict[str, Any]:
    """Read one resources mapping (the top one or an any_of/ordered item).

    The top mapping's values go on the spec; an item's come back as Choice fields.
    """
    out: dict[str, Any] = {}
    cloud = res.get("cloud")
    on_k8s = cloud is None or str(cloud).lower() in _K8S_NAMES
    named_k8s = cloud is not None and on_k8s
    infra = str(res.get("infra") or "k8s").strip()
    if not top and (not on_k8s or infra.partition("/")[0].lower() not in (*_K8S_NAMES, "*")):
        return {"_other_infra": True}  # a candidate on other infra: skipped, its keys unread
    for key, value in res.items():
        path = f"{where}.{key}"
        try:
            if key in ("any_of", "ordered") and top:
                continue
            if key not in _RESOURCE_KEYS or (key in ("any_of", "ordered") and not top):
                raise ConfigError(
                    f"{path}: not a SkyPilot resources key"
                    f"{_did_you_mean(key, _RESOURCE_KEYS)}; fix or remove it"
                )
            if key in _REFUSED_RESOURCES:
                raise ConfigError(f"{path}: {_REFUSED_RESOURCES[key]}")
            if key in _NOTED_RESOURCES:
                spec.notes.append(f"{path}: {value!r}: {_NOTED_RESOURCES[key]}")
                continue
            _resource_key(spec, out, key, value, path, on_k8s=on_k8s, named_k8s=named_k8s, top=top)
        except ConfigError as exc:
            spec.refused.append(exc.message)
    return out


def _resource_key(
    spec: TaskSpec,
    out: dict[str, Any],
    key: str,
    value: Any,
    path: str,
    *,
    on_k8s: bool,
    named_k8s: bool,
    top: bool,
) -> None:
    honoured = True
    if key == "cloud":
        if not on_k8s:
            if not top:
                out["_other_infra"] = True
                return
            raise ConfigError(
                f"{path}: {value}: skymagic launches on Kubernetes only; remove cloud (or write "
                "cloud: kubernetes)"
            )
    elif key == "infra":
        text = str(value).strip()
        head, _, rest = text.partition("/")
        if text == "*":
            spec.notes.append(f"{path}: '*': the only infra here is Kubernetes")
        elif head.lower() not in _K8S_NAMES:
            if not top:
                out["_other_infra"] = True
                return
            raise ConfigError(
                f"{path}: {text}: skymagic launches on Kubernetes only; write infra: k8s "
                "(every allowed context) or infra: k8s/CONTEXT"
            )
        elif rest:
            _set(spec, out, top, "infra", f"k8s/{rest}", "context", rest)
    elif key == "region":
        if not named_k8s:
            raise ConfigError(
                f"{path}: {value}: a cloud region; to pick a Kubernetes context write "
                "infra: k8s/CONTEXT"
            )
        _set(spec, out, top, "infra", f"k8s/{value}", "context", str(value))
    elif key == "autostop":
        if not top:
            raise ConfigError(f"{path}: autostop is per pod: set it once, under resources")
        spec.idle_minutes, spec.down = values.autostop(value, path)
    elif key in ("cpus", "memory"):
        field_name = "cpus" if key == "cpus" else "memory_gb"
        _set(spec, out, top, field_name, values.at_least(value, path), field_name, None)
    elif key in ("disk_size", "ephemeral_storage"):
        _set(spec, out, top, "disk_gb", values.disk_gb(value, path), "disk_gb", None)
    elif key == "accelerators":
        out["_gpus"] = values.gpu_candidates(value, path)
    elif key == "instance_type":
        _instance_type(out, str(value), path)
    elif key == "use_spot":
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {value!r} must be true or false")
        _set(spec, out, top, "use_spot", value, "use_spot", None)
    elif key == "ports":
        if not top:
            raise ConfigError(f"{path}: give ports once, at the top of resources")
        spec.ports = values.ports(value, path)
    elif key == "labels":
        if not top:
            raise ConfigError(f"{path}: give labels once, at the top of resources")
        spec.labels = values.label_pairs(value, path)
    elif key == "priority_class":
        if not top:
            raise ConfigError(f"{path}: give priority_class once, at the top of resources")
        spec.priority_class = str(value)
    elif key == "image_id":
        _set(spec, out, top, "image", _image(value, path), "image", None)
    else:  # pragma: no cover - every schema key is routed above or in the tables
        honoured = False
    if honoured and top:
        spec.honoured.append(path)


def _set(
    spec: TaskSpec,
    out: dict[str, Any],
    top: bool,
    spec_field: str,
    value: Any,
    choice_field: str,
    choice_value: Any,
) -> None:
    if top:
        setattr(spec, spec_field, value)
    else:
        out[choice_field] = value if choice_value is None else choice_value


def _instance_type(out: dict[str, Any], text: str, path: str) -> None:
    """SkyPilot's Kubernetes virtual instance types, e.g. 4CPU--16GB--1H100."""
    match = _INSTANCE_RE.match(text)
    if match is None:
        raise ConfigError(
            f"{path}: {text}: a cloud VM type; on Kubernetes name cpus, memory and "
            "accelerators instead (or a virtual type such as 4CPU--16GB--1H100)"
        )
    out["cpus"] = values.at_least(match.group("cpu"), path)
    out["memory_gb"] = values.at_least(match.group("mem"), path)
    if match.group("gpu"):
        out["_gpus"] = values.gpu_candidates(f"{match.group('gpu')}:{match.group('gpus')}", path)


def _image(value: Any, path: str) -> str:
    if isinstance(value, Mapping):
        raise ConfigError(f"{path}: per-region images do not apply: give one container image")
    text = str(value).strip()
    if text.startswith("docker:"):
        text = text[len("docker:") :]
    if text.startswith(("ami-", "projects/", "skypilot:")) or not text:
        raise ConfigError(
            f"{path}: {value}: a VM image, not a container image; write image_id: docker:IMAGE"
        )
    return text


def _config(spec: TaskSpec, cfg: dict[str, Any]) -> None:
    for section, value in cfg.items():
        path = f"config.{section}"
        if section == "kubernetes":
            for key, val in _mapping(value, path, spec).items():
                sub = f"{path}.{key}"
                if key in _K8S_CONFIG_REFUSED:
                    spec.refused.append(f"{sub}: {_K8S_CONFIG_REFUSED[key]}")
                elif key not in _K8S_CONFIG_HONOURED:
                    spec.refused.append(f"{sub}: not a per-task Kubernetes setting; remove it")
                elif key == "provision_timeout":
                    try:
                        spec.provision_timeout = values.at_least(val, sub)
                        spec.honoured.append(sub)
                    except ConfigError as exc:
                        spec.refused.append(exc.message)
                elif not isinstance(val, Mapping):
                    spec.refused.append(f"{sub}: must be a mapping")
                else:
                    target = spec.pod_config if key == "pod_config" else spec.custom_metadata
                    target.update({str(k): v for k, v in val.items()})
                    spec.honoured.append(sub)
        elif section in _CONFIG_NOTED:
            spec.notes.append(f"{path}: {_CONFIG_NOTED[section]}")
        elif section in _OTHER_CLOUD_SECTIONS:
            spec.notes.append(f"{path}: settings for {section}; they mean nothing on Kubernetes")
        elif section == "hooks":
            spec.refused.append(f"{path}: lifecycle hooks are not supported; remove them")
        else:
            spec.refused.append(f"{path}: not a per-task SkyPilot setting; remove it")
