"""SkyPilot's own task YAMLs (tests/data/skypilot_tasks: 84 files from its examples/ and llm/,
keys and values kept, scripts shortened to echo lines) through skymagic's key table.

For every file: it is recognised as a task (never run as a script), every key of it is
honoured, noted or refused (none is dropped silently), and nothing crashes: a launchable file
parses into a Task with its notes, a refused one raises ONE error naming every refused key.
The tally is printed (run with -s) and reported in the task's note.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from skymagic.errors import ConfigError
from skymagic.launches.task import parse_task
from skymagic.launches.taskyaml import TaskSpec, inspect, recognise

CORPUS = Path(__file__).parents[2] / "data" / "skypilot_tasks"
FILES = sorted(CORPUS.glob("*.yaml"))


def test_the_corpus_is_there_with_provenance() -> None:
    assert len(FILES) >= 80
    for path in FILES:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# from skypilot-org/skypilot "), path.name


def _key_paths(doc: Mapping[str, Any]) -> list[str]:
    """Every key a user wrote that skymagic must account for."""
    paths = []
    for key, value in doc.items():
        paths.append(str(key))
        if key == "resources" and isinstance(value, Mapping):
            paths += [f"resources.{k}" for k in value]
        if key == "config" and isinstance(value, Mapping):
            for section, sub in value.items():
                if section == "kubernetes" and isinstance(sub, Mapping):
                    paths += [f"config.kubernetes.{k}" for k in sub]
                else:
                    paths.append(f"config.{section}")
    return paths


def _accounted(path: str, spec: TaskSpec) -> bool:
    if path in spec.honoured:
        return True
    said = [*spec.notes, *spec.refused]
    if any(s.startswith((f"{path}:", f"{path}.", f"{path}[")) for s in said):
        return True
    # A parent key is accounted for by its children (resources, config).
    return path in ("resources", "config") or any(h.startswith(f"{path}.") for h in spec.honoured)


def _fill(spec: TaskSpec) -> dict[str, list[str]]:
    """Values for every env and secret the file says must be passed in."""
    return {
        "env": [f"{k}=x" for k, v in spec.envs.items() if v is None],
        "secret": [f"{k}=x" for k, v in spec.secrets.items() if v is None],
    }


def classify(path: Path) -> tuple[str, list[str]]:
    """('full' | 'noted' | 'refused', reasons) for one corpus file; asserts the rules."""
    body = path.read_text()
    try:
        doc = recognise(body)
    except ConfigError as exc:  # several documents: a DAG or job group, refused as a whole
        assert "documents" in exc.message
        return "refused", ["several YAML documents (DAG / job group)"]
    assert doc is not None, f"{path.name} would run as a shell script"
    spec = inspect(doc)
    lost = [p for p in _key_paths(doc) if not _accounted(p, spec)]
    assert not lost, f"{path.name}: keys dropped silently: {lost}"
    if spec.refused:
        with pytest.raises(ConfigError) as info:
            parse_task(body, **_fill(spec))
        for reason in spec.refused:
            assert reason in info.value.message
        return "refused", [r.split(":")[0].split("[")[0] for r in spec.refused]
    task = parse_task(body, **_fill(spec))
    assert task.run and "echo" in task.run
    for note in spec.notes:
        assert note in task.notes
    return ("noted" if task.notes else "full"), list(task.notes)


def tally() -> tuple[collections.Counter[str], collections.Counter[str]]:
    fates: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    for path in FILES:
        fate, why = classify(path)
        fates[fate] += 1
        if fate == "refused":
            reasons.update(set(why))
    return fates, reasons


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_corpus_file_is_a_task_with_every_key_accounted_for(path: Path) -> None:
    classify(path)


def test_tally(capsys: pytest.CaptureFixture[str]) -> None:
    fates, reasons = tally()
    assert sum(fates.values()) == len(FILES)
    with capsys.disabled():
        print(
            f"\nSkyPilot corpus: {len(FILES)} task YAMLs: {fates['full']} honoured in full, "
            f"{fates['noted']} launchable with notes, {fates['refused']} refused"
        )
        print(
            "top refusal reasons (files): "
            + ", ".join(f"{k} {n}" for k, n in reasons.most_common(8))
        )
