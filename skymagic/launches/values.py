"""Values of task YAML keys and launch flags, parsed the way SkyPilot writes them.

Pure functions that raise ConfigError with one line naming the key and the fix. Kept apart
from task.py so the key table (taskyaml.py) and the Task builder share one reading of each
value: `4+`, `512GB`, `8000-8010`, `{H100: 8, A100-80GB: 8}`, `HF_TOKEN: null`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from skymagic.errors import ConfigError
from skymagic.gpus.accelerators import parse_gpu_request

__all__ = [
    "ENV_NAME_RE",
    "at_least",
    "autostop",
    "clean_name",
    "disk_gb",
    "file_mounts",
    "gpu_candidates",
    "idle_minutes",
    "label_pairs",
    "parse_flag_pairs",
    "ports",
    "whole_number",
    "workdir",
]

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMGTP]?)(i?)B?\s*$", re.I)
_UNIT_GB = {"": 1.0, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0, "P": 1024.0**2}
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _finite_positive(number: float, what: str, value: Any) -> float:
    # nan compares false with everything and inf is no size: both would reach the pod spec as
    # "nan"/"inf" quantities the API server rejects (or a plan that fits nowhere), so refuse here.
    if not math.isfinite(number):
        raise ConfigError(f"{what} {value!r} is not a finite number; write e.g. 4 or 4+")
    if number <= 0:
        raise ConfigError(f"{what} must be positive, got {value!r}")
    return number


def whole_number(value: Any, what: str, *, least: int = 0, fix: str = "") -> int:
    """A count: an int, or its text (a flag's value), at least `least`; `fix` ends each error."""
    hint = f"; {fix}" if fix else ""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{what} {value!r} is not a whole number{hint}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a whole number{hint}") from None
    if number < least:
        raise ConfigError(f"{what} must be at least {least}, got {number}{hint}")
    return number


def at_least(value: Any, what: str) -> float:
    """'4', 4, '4+', '16GB', '16GB+' -> 4.0 ('N+' means at least N; the request is N)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a number; write e.g. 4 or 4+")
    text = str(value).strip()
    if text.endswith("+"):
        text = text[:-1].strip()
    if text.lower().endswith("gb"):
        text = text[:-2]
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a number; write e.g. 4 or 4+") from None
    return _finite_positive(number, what, value)


def disk_gb(value: Any, what: str) -> float:
    """SkyPilot's disk sizes: an integer number of GB, or '512GB', '1TB', '100Gi'."""
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a size; write e.g. 256 or 256GB")
    if isinstance(value, (int, float)):
        return _finite_positive(float(value), what, value)
    match = _SIZE_RE.match(str(value))
    if match is None:
        raise ConfigError(f"{what} {value!r} is not a size; write e.g. 256 or 256GB")
    number = float(match.group(1)) * _UNIT_GB[match.group(2).upper()]
    return _finite_positive(number, what, value)


def ports(value: Any, what: str = "resources.ports") -> tuple[int, ...]:
    """8000, '8000', '8000-8010', or a list of those -> sorted unique ports."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out: set[int] = set()
    for item in items:
        if item is None:
            continue
        if isinstance(item, bool):
            raise ConfigError(f"{what} {item!r} is not a port; write e.g. 8000 or 8000-8010")
        text = str(item).strip()
        low, sep, high = text.partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            raise ConfigError(
                f"{what} {item!r} is not a port or range; write e.g. 8000 or 8000-8010"
            ) from None
        if not (1 <= first <= last <= 65535):
            raise ConfigError(
                f"{what} {item!r}: ports run from 1 to 65535 and a range from low to high"
            )
        if last - first >= 1000:
            raise ConfigError(f"{what} {item!r} spans more than 1000 ports; expose fewer")
        out.update(range(first, last + 1))
    return tuple(sorted(out))


def gpu_candidates(value: Any, what: str = "resources.accelerators") -> list[tuple[str, int]]:
    """SkyPilot's accelerator forms -> [(canonical name, count), ...] in the user's order.

    'H100:8' and 'H100' (one); {H100: 8, A100-80GB: 8} (candidates); [H100:8, A100:8]
    (candidates, in order); {L4, A10G} (a YAML set: one of each); {L4:1, A100:1} written
    without spaces, which YAML reads as keys 'L4:1' with no value.
    """
    if value is None:
        return []
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for name, count in value.items():
            text = str(name).strip()
            if count is None and ":" in text:
                items.append((text, None))
            else:
                items.append((text if count is None else f"{text}:{_count(count, what)}", None))
    elif isinstance(value, (list, tuple)):
        items = [(str(v).strip(), None) for v in value]
    else:
        items = [(str(value).strip(), None)]
    out: list[tuple[str, int]] = []
    for text, _ in items:
        try:
            out.append(parse_gpu_request(text))
        except ValueError as exc:
            raise ConfigError(f"{what}: {exc}") from None
    return out


def _count(count: Any, what: str) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, float)):
        raise ConfigError(f"{what}: GPU count {count!r} is not a number; write e.g. H100: 8")
    if not math.isfinite(count) or count != int(count) or count < 1:
        raise ConfigError(
            f"{what}: GPU count {count!r} must be a whole number of GPUs (fractional GPUs are "
            "not supported on Kubernetes); write e.g. H100: 1"
        )
    return int(count)


def label_pairs(value: Any, what: str) -> dict[str, str]:
    """A mapping of Kubernetes labels, each key and value checked against Kubernetes' rules."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a mapping of key: value")
    out: dict[str, str] = {}
    for key, val in value.items():
        k, v = str(key), "" if val is None else str(val)
        if not _LABEL_KEY_RE.match(k) or len(k) > 316:
            raise ConfigError(f"{what}: {k!r} is not a valid Kubernetes label key")
        if not _LABEL_VALUE_RE.match(v) or len(v) > 63:
            raise ConfigError(
                f"{what}: value {v!r} of {k!r} is not a valid Kubernetes label value "
                "(at most 63 letters, digits, '-', '_' or '.')"
            )
        out[k] = v
    return out


def parse_flag_pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    """`--env K=V` items; `--env K` takes K from the local environment, as SkyPilot does."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not ENV_NAME_RE.match(key):
            raise ConfigError(f"{flag} {item!r} must look like NAME=VALUE or NAME")
        if not sep:
            local = os.environ.get(key)
            if local is None:
                raise ConfigError(
                    f"{flag} {key}: {key} is not set in your environment; "
                    f"set it or pass {flag} {key}=VALUE"
                )
            value = local
        out[key] = value
    return out


def clean_name(name: str) -> str:
    """A launch name as a DNS label: lower case, '_' and other characters to '-', <= 52 long."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower())
    text = re.sub(r"-{2,}", "-", text).strip("-")
    return text[:52].rstrip("-")


def workdir(value: Any, what: str = "workdir") -> str | None:
    """A local folder path (None when unset); remote URLs are refused."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{what}: must be a local folder path, e.g. workdir: .")
    if "://" in value:
        raise ConfigError(
            f"{what}: {value!r} is a remote URL; skymagic copies a local folder: use a local path"
        )
    return value


def file_mounts(value: Any, what: str = "file_mounts") -> tuple[tuple[str, str], ...]:
    """Local sources only, as (remote path, local path); bucket sources refused with the fix."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what}: must be a mapping of REMOTE_PATH: LOCAL_PATH")
    out = []
    for remote, source in value.items():
        remote = str(remote)
        if not isinstance(source, str):
            raise ConfigError(
                f"{what}.{remote}: only local sources (a file or folder path) are supported; "
                "storage objects (name/source/mode) are not"
            )
        if "://" in source:
            raise ConfigError(
                f"{what}.{remote}: bucket source {source!r} is not supported; copy the data "
                "into the pod from setup (e.g. with the bucket's CLI) instead"
            )
        if not (remote.startswith(("/", "~/")) or remote == "~"):
            raise ConfigError(f"{what}.{remote}: the remote path must be absolute or start with ~/")
        out.append((remote, source))
    return tuple(out)


def idle_minutes(value: Any, what: str) -> float:
    """A positive, finite number of minutes."""
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} {value!r} is not a number of minutes") from None
    if isinstance(value, bool) or not (minutes > 0 and math.isfinite(minutes)):
        raise ConfigError(f"{what} must be a positive number of minutes, got {value!r}")
    return minutes


def autostop(value: Any, what: str = "resources.autostop") -> tuple[float | None, bool]:
    """SkyPilot's autostop: true | false | N (minutes) | '30m' / '2h' | {idle_minutes, down}."""
    if value is False or value is None:
        return None, False
    if value is True:
        return 5.0, False  # SkyPilot's default idle time
    if isinstance(value, Mapping):
        unknown = sorted(set(map(str, value)) - {"idle_minutes", "down"})
        if unknown:
            raise ConfigError(f"{what}.{unknown[0]}: not an autostop key (idle_minutes, down)")
        idle = idle_minutes(value.get("idle_minutes", 5), f"{what}.idle_minutes")
        return idle, bool(value.get("down", False))
    if isinstance(value, str) and value.strip().endswith(("m", "h")):
        text = value.strip()
        scale = 60.0 if text.endswith("h") else 1.0
        return idle_minutes(text[:-1], what) * scale, False
    return idle_minutes(value, what), False
