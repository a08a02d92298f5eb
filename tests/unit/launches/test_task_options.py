"""TaskOptions: the one list of launch flags, taken by parse_task as an object or keywords."""

from __future__ import annotations

import pytest

from skymagic.errors import ConfigError
from skymagic.launches.task import TaskOptions, parse_task

YAML = """\
name: from-yaml
resources:
  accelerators: A100:2
  cpus: 8
  image_id: docker:img:yaml
envs:
  A: yaml
run: echo hi
"""


def test_options_and_keywords_build_the_same_task() -> None:
    opts = TaskOptions(name="job", gpus="H100:4", cpus="4+", memory=32, env=["X=1"], ports=[80])
    by_options = parse_task("echo hi", opts)
    by_keywords = parse_task(
        "echo hi", name="job", gpus="H100:4", cpus="4+", memory=32, env=["X=1"], ports=[80]
    )
    assert by_options == by_keywords
    assert (by_options.gpu, by_options.gpu_count, by_options.cpus) == ("H100", 4, 4.0)
    assert (by_options.memory_gb, by_options.envs, by_options.ports) == (32.0, {"X": "1"}, (80,))


def test_options_win_over_the_yaml_and_keywords_over_options() -> None:
    task = parse_task(YAML, TaskOptions(gpus="H100", env=["A=flag"]), cpus=2)
    assert task.name == "from-yaml" and task.image == "img:yaml"
    assert (task.gpu, task.gpu_count, task.cpus, task.envs) == ("H100", 1, 2.0, {"A": "flag"})
    assert parse_task(YAML).gpu == "A100"


def test_build_sets_fields_over_options() -> None:
    base = TaskOptions(name="a", gpus="L4")
    assert TaskOptions.build(base, name="b") == TaskOptions(name="b", gpus="L4")
    assert TaskOptions.build() == TaskOptions()
    assert base == TaskOptions(name="a", gpus="L4")  # frozen: build never changes its input


def test_an_unknown_option_is_a_type_error_naming_the_options() -> None:
    with pytest.raises(TypeError, match=r"unknown task option 'gpu'; the options are: name, gpus"):
        parse_task("echo", gpu="H100")


def test_option_values_are_still_checked() -> None:
    with pytest.raises(ConfigError, match="--cpus must be positive"):
        parse_task("echo", TaskOptions(cpus=0))
    with pytest.raises(ConfigError, match="--env '=1' must look like NAME=VALUE or NAME"):
        parse_task("echo", env=["=1"])
