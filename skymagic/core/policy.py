"""Admin policies: code an administrator names in the config to check and change each request.

SkyPilot's hook, kept: `admin_policy: package.module.ClassName` in the config file names a class
with `validate_and_mutate(request) -> MutatedUserRequest` (or the request itself). It runs before
EVERY operation (check, gpus, launch, status, down), uncached, so the clusters it allows can
change between two notebook cells. A policy refuses an operation by raising; the user sees its
reason in one line. A policy that cannot be imported, raises an unexpected error or returns the
wrong type is one clear PolicyError, and nothing of the user's (kubeconfig, config) is touched:
policies mutate an in-memory copy of the config and may add kubeconfig files of their own.

The shipped policy, `DynamicKubernetesContextsUpdatePolicy`, follows the seed's "Dynamically
updating clusters to use": it takes cluster credentials from a source (a directory of kubeconfig
files, or a command printing kubeconfig YAML), merges them into a skymagic-managed kubeconfig,
sets `allowed_contexts` from the result (filtered by include/exclude patterns), and can cap GPUs
per launch, force a namespace and restrict GPU types. Its settings live in the config file:

```yaml
admin_policy: skymagic.policy.DynamicKubernetesContextsUpdatePolicy
dynamic_kubernetes_contexts:
  source: {directory: /shared/clusters}      # or {command: "fetch-clusters --yaml"}
  include: ["prod-*"]                        # fnmatch patterns (default: all)
  exclude: ["*-deprecated"]
  kubeconfig: ~/.skymagic/policy/kubeconfig   # where the merged file goes (the default)
  keep_user_contexts: false                  # also allow the contexts allowed before
  max_gpus_per_launch: 8
  namespace: team-a
  allowed_gpus: [H100, A100-80GB]
  command_timeout: 30
```
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from skymagic.errors import PolicyError, SkymagicError
from skymagic.gpus.accelerators import normalize_gpu_name

__all__ = [
    "DynamicKubernetesContextsUpdatePolicy",
    "MutatedUserRequest",
    "PolicyOutcome",
    "UserRequest",
    "apply_policy",
]


@dataclass
class UserRequest:
    """What a policy sees: the operation, its task (launch), the effective config, the user."""

    operation: str
    task: Any | None
    config: dict[str, Any]  # the effective config (a deep copy: mutate freely)
    user: str
    kubeconfig_paths: list[str] = field(default_factory=list)

    # SkyPilot names, so policies written for SkyPilot read naturally.
    @property
    def skypilot_config(self) -> dict[str, Any]:
        return self.config

    @property
    def at_client_side(self) -> bool:
        return True


@dataclass
class MutatedUserRequest:
    """A policy's answer: the (possibly changed) task and config, and extra kubeconfig files."""

    task: Any | None
    config: dict[str, Any]
    kubeconfig_paths: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the policy changed, for %sky_check

    @property
    def skypilot_config(self) -> dict[str, Any]:
        return self.config


@dataclass
class PolicyOutcome:
    """What applying the policy produced, for the operation and for display."""

    name: str
    config: dict[str, Any]
    task: Any | None
    kubeconfig_paths: list[str]
    notes: list[str]


def _load_class(path: str, config_file: str | None) -> type:
    where = config_file or "the config file"
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise PolicyError(
            f"admin_policy {path!r} must be 'package.module.ClassName'; fix it in {where}"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise PolicyError(
            f"admin_policy {path!r} cannot be imported ({type(exc).__name__}: {exc}); "
            f"install its package or fix admin_policy in {where}"
        ) from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise PolicyError(f"admin_policy {path!r}: module {module_name} has no class {class_name}")
    if not callable(getattr(cls, "validate_and_mutate", None)):
        raise PolicyError(f"admin_policy {path!r} has no validate_and_mutate(request) method")
    return cls


def apply_policy(
    policy_path: str,
    *,
    operation: str,
    task: Any | None,
    config: Mapping[str, Any],
    user: str,
    kubeconfig_paths: list[str],
    config_file: str | None,
) -> PolicyOutcome:
    """Run the named policy on a copy of the request; raise PolicyError on refusal or breakage."""
    cls = _load_class(policy_path, config_file)
    request = UserRequest(
        operation, copy.deepcopy(task), copy.deepcopy(dict(config)), user, list(kubeconfig_paths)
    )
    try:
        instance = cls()
        method = instance.validate_and_mutate
        answer = method(request)
    except PolicyError:
        raise
    except SkymagicError as exc:
        raise PolicyError(f"admin policy refused the {operation}: {exc}") from None
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        raise PolicyError(
            f"admin policy {policy_path} refused the {operation}: {message}"
        ) from None
    if isinstance(answer, MutatedUserRequest):
        return PolicyOutcome(
            policy_path, answer.config, answer.task, answer.kubeconfig_paths, answer.notes
        )
    if isinstance(answer, UserRequest):
        return PolicyOutcome(policy_path, answer.config, answer.task, answer.kubeconfig_paths, [])
    raise PolicyError(
        f"admin policy {policy_path}.validate_and_mutate returned {type(answer).__name__}; "
        "it must return the request or a MutatedUserRequest"
    )


# -- the shipped policy ------------------------------------------------------------------------


def _settings(config: Mapping[str, Any]) -> dict[str, Any]:
    section = config.get("dynamic_kubernetes_contexts")
    if section is None:
        raise PolicyError(
            "DynamicKubernetesContextsUpdatePolicy needs a 'dynamic_kubernetes_contexts' section "
            "in the config file (source, include, exclude, ...)"
        )
    if not isinstance(section, Mapping):
        raise PolicyError("dynamic_kubernetes_contexts must be a mapping")
    return dict(section)


def _read_source(settings: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(origin, kubeconfig document) pairs from the configured source, in a stable order."""
    source = settings.get("source")
    if not isinstance(source, Mapping) or not ({"directory", "command"} & set(source)):
        raise PolicyError(
            "dynamic_kubernetes_contexts.source must be {directory: PATH} or {command: CMD}"
        )
    docs: list[tuple[str, dict[str, Any]]] = []
    if "directory" in source:
        directory = Path(os.path.expanduser(str(source["directory"])))
        if not directory.is_dir():
            raise PolicyError(
                f"dynamic_kubernetes_contexts.source.directory {directory} does not exist"
            )
        for path in sorted(directory.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                doc = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise PolicyError(f"cluster source file {path} is not valid YAML: {exc}") from None
            if isinstance(doc, dict) and doc.get("contexts"):
                docs.append((str(path), doc))
    else:
        command = str(source["command"])
        timeout = float(settings.get("command_timeout", 30))
        try:
            proc = subprocess.run(
                command,
                shell=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PolicyError(
                f"cluster source command timed out after {timeout:g} s: {command}"
            ) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise PolicyError(f"cluster source command failed (exit {proc.returncode}): {last}")
        try:
            parsed = list(yaml.safe_load_all(proc.stdout))
        except yaml.YAMLError as exc:
            raise PolicyError(f"cluster source command printed invalid YAML: {exc}") from None
        for i, doc in enumerate(parsed):
            if isinstance(doc, dict) and doc.get("contexts"):
                docs.append((f"{command} (document {i + 1})", doc))
    return docs


def _merge(docs: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[str]]:
    """One kubeconfig from many: the first definition of a name wins (client-go's rule)."""
    merged: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    order: list[str] = []
    for origin, doc in docs:
        base = Path(origin).parent if os.path.exists(origin) else None
        for key in ("clusters", "users", "contexts"):
            for entry in doc.get(key) or []:
                if not isinstance(entry, dict) or "name" not in entry or entry["name"] in seen[key]:
                    continue
                entry = copy.deepcopy(entry)
                if base is not None:
                    _absolutise(entry, base)
                seen[key].add(entry["name"])
                merged[key].append(entry)
                if key == "contexts":
                    order.append(str(entry["name"]))
    return merged, order


def _absolutise(entry: dict[str, Any], base: Path) -> None:
    body = entry.get("cluster") or entry.get("user") or {}
    for k in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
        v = body.get(k)
        if isinstance(v, str) and v and not os.path.isabs(v):
            body[k] = str(base / v)


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` to `path` (mode 0600, atomically), unless the file already says exactly that.

    The policy runs before every operation, a dashboard's every refresh included: rewriting an
    unchanged file would churn the disk and wake every tool that watches the kubeconfig.
    """
    text = yaml.safe_dump(doc, sort_keys=False)
    try:
        if path.stat().st_mode & 0o077 == 0 and path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass  # missing or unreadable: write it
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=".kubeconfig-")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _canonical(name: object) -> str:
    """The canonical GPU name ("h100-80gb", "nvidia-h100-80gb" -> "H100"), as tasks carry it."""
    try:
        return normalize_gpu_name(str(name))
    except ValueError:
        return str(name)


def _allowed_names(allowed_gpus: object) -> set[str]:
    if not isinstance(allowed_gpus, (list, tuple)):
        raise PolicyError(
            "dynamic_kubernetes_contexts.allowed_gpus must be a list of GPU names, e.g. [H100]"
        )
    return {_canonical(g) for g in allowed_gpus}


class DynamicKubernetesContextsUpdatePolicy:
    """Fetch cluster credentials from a source and allow exactly those clusters (see module doc)."""

    def validate_and_mutate(self, request: UserRequest) -> MutatedUserRequest:
        settings = _settings(request.config)
        docs = _read_source(settings)
        merged, order = _merge(docs)
        include = [str(p) for p in settings.get("include") or ["*"]]
        exclude = [str(p) for p in settings.get("exclude") or []]
        chosen = [
            c
            for c in order
            if any(fnmatch.fnmatchcase(c, p) for p in include)
            and not any(fnmatch.fnmatchcase(c, p) for p in exclude)
        ]
        target = Path(
            os.path.expanduser(str(settings.get("kubeconfig") or "~/.skymagic/policy/kubeconfig"))
        )
        _write_private(target, merged)
        config = request.config
        kube = dict(config.get("kubernetes") or {})
        before = kube.get("allowed_contexts")
        allowed: list[str] = list(chosen)
        if settings.get("keep_user_contexts") and isinstance(before, list):
            allowed += [c for c in before if c not in allowed]
        kube["allowed_contexts"] = allowed
        notes = [
            f"allowed_contexts set to {allowed or '[]'} from {len(docs)} source document(s); "
            f"merged kubeconfig {target}"
        ]
        namespace = settings.get("namespace")
        if namespace:
            kube["namespace"] = str(namespace)
            notes.append(f"pods go to namespace {namespace}")
        config["kubernetes"] = kube
        task = request.task
        if request.operation == "launch" and task is not None:
            cap = settings.get("max_gpus_per_launch")
            count = int(getattr(task, "gpu_count", 0) or 0)
            if cap is not None and count > int(cap):
                raise PolicyError(
                    f"admin policy: at most {int(cap)} GPUs per launch, "
                    f"this launch asks for {count}"
                )
            allowed_gpus = settings.get("allowed_gpus")
            gpu = getattr(task, "gpu", None)
            if allowed_gpus and gpu and _canonical(gpu) not in _allowed_names(allowed_gpus):
                raise PolicyError(
                    f"admin policy: GPU type {gpu} is not allowed; "
                    f"allowed: {', '.join(map(str, allowed_gpus))}"
                )
        if settings.get("max_gpus_per_launch") is not None:
            notes.append(f"at most {settings['max_gpus_per_launch']} GPUs per launch")
        if settings.get("allowed_gpus"):
            notes.append(f"GPU types allowed: {', '.join(map(str, settings['allowed_gpus']))}")
        return MutatedUserRequest(task, config, [str(target), *request.kubeconfig_paths], notes)
