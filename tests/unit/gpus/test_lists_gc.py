"""The collector pause around a page's decode and fold (`gpus.lists._collector_paused`)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from skymagic.gpus.lists import _collector_paused


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_while_any_page_is_folded_and_resumed_by_the_last(collector_on: None) -> None:
    inside = threading.Event()
    release = threading.Event()

    def other_list() -> None:
        with _collector_paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other_list)
    with _collector_paused():
        assert not gc.isenabled()
        t.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other list's page is still being folded
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(collector_on: None) -> None:
    gc.disable()
    with _collector_paused():
        pass
    assert not gc.isenabled()
    gc.enable()


def test_resumed_when_the_fold_raises(collector_on: None) -> None:
    with pytest.raises(ValueError), _collector_paused():
        raise ValueError("malformed page")
    assert gc.isenabled()
