"""The words a gang's stopped ranks are reported with (pure; the stopping itself runs against
the simulated fleet in tests/integration/test_launch_gang.py and test_gang_work.py)."""

from __future__ import annotations

from skymagic.launches.gangstop import (
    ANNOTATION_STOPPED,
    RankEnds,
    ranks_named,
    stop_note,
    stopped_status,
)


def test_the_reason_names_the_first_failing_rank_then_the_stopped_ones() -> None:
    ends = RankEnds(codes={0: 143, 1: 3, 2: 143, 3: None})
    assert ends.reason() == ""
    ends.failed.append((1, 3))
    ends.stopped += [2, 0]
    ends.not_stopped[3] = "pods/exec forbidden"
    assert ends.reason() == (
        "rank 1 exited with code 3; stopped the run on ranks 0, 2; "
        "could not stop rank 3 (pods/exec forbidden)"
    )
    assert ends.exit_code == 3  # the failing rank's, not rank 0's 143


def test_without_a_failure_the_exit_code_is_rank_0s() -> None:
    assert RankEnds(codes={0: 0, 1: 0}).exit_code == 0
    assert ranks_named([0]) == "rank 0"


def test_a_stopped_pods_status_says_which_rank_failed() -> None:
    note = stop_note(1, 3)
    assert note == "rank 1 failed (exit code 3)"
    assert stopped_status({ANNOTATION_STOPPED: note}) == "Stopped (rank 1 failed)"
    assert stopped_status({}) is None
