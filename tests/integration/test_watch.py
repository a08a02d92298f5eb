"""The client's streams and the one watch driver, against a simulated fleet over real HTTPS.

`ContextClient.stream_lines` / `WatchStream` must turn every way a stream can end badly into a
SkymagicError (a stall is a timeout, a cut is a transport error); `WatchDriver` must list,
watch, re-watch, re-list on 410 and back off on errors, and stop promptly.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from skymagic.core.client import ClientSettings, ContextClient
from skymagic.core.kubeconfig import load_kubeconfig
from skymagic.core.watch import Changed, DriverEvent, Failed, Listed, WatchDriver
from skymagic.errors import GoneError, RequestTimeoutError, TransportError
from skymagic.sim import Fleet

SPEC: dict[str, Any] = {
    "clusters": [
        {
            "name": "alpha",
            "nodes": [{"name": "g", "count": 2, "gpu": "H100", "gpus": 8, "labels": "gfd"}],
            "pods": [{"count": 1, "gpu": "H100", "gpus": 2}],
        }
    ]
}
PODS = "/api/v1/pods"


@pytest.fixture
def fleet(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet(SPEC)


@pytest.fixture
def client(fleet: Fleet) -> Iterator[ContextClient]:
    resolved = load_kubeconfig([fleet.kubeconfig]).resolve("alpha")
    c = ContextClient(resolved, ClientSettings(request_timeout=5.0, retries=0, backoff=0.05))
    yield c
    c.close()


def _pod_names(client: ContextClient) -> tuple[set[str], str]:
    items, rv = client.list_items(PODS, pick=lambda p: p["metadata"]["name"])
    return set(items), rv


# --- streams ----------------------------------------------------------------------------------


def test_a_stalled_stream_is_a_timeout_error(client: ContextClient) -> None:
    _names, rv = _pod_names(client)
    # An idle watch: the server sends its headers, then nothing for 30 s.
    lines = client.stream_lines(
        PODS, {"watch": "true", "resourceVersion": rv, "timeoutSeconds": 30}, read_timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as err:
        list(lines)
    assert time.monotonic() - started < 10  # the read timeout, not the server's 30 s
    assert err.value.context == "alpha"
    assert "timed out after 0.5 s waiting for" in err.value.message


def test_a_stream_cut_off_half_way_is_a_transport_error(
    client: ContextClient, fleet: Fleet
) -> None:
    _names, rv = _pod_names(client)
    fleet.add_pods("alpha", count=1, gpu="H100", gpus=1, name="late")
    lines = client.stream_lines(
        PODS, {"watch": "true", "resourceVersion": rv, "timeoutSeconds": 30}, read_timeout=20
    )
    first = msgspec.json.decode(next(lines))
    assert first["type"] == "ADDED"
    fleet.set_faults("alpha", down=True)  # drops open connections mid-stream
    with pytest.raises(TransportError) as err:
        next(lines)
    assert not isinstance(err.value, RequestTimeoutError)
    assert "broke off" in err.value.message


def test_watch_from_a_compacted_version_is_gone(client: ContextClient, fleet: Fleet) -> None:
    _names, rv = _pod_names(client)
    fleet.add_pods("alpha", count=1, gpu="H100", gpus=1, name="moved-on")
    fleet.compact("alpha")
    with pytest.raises(GoneError):
        list(client.watch(PODS, {"resourceVersion": rv}, timeout_seconds=5))


def test_a_closed_watch_stream_ends_a_blocked_reader(client: ContextClient) -> None:
    _names, rv = _pod_names(client)
    stream = client.open_watch(PODS, {"resourceVersion": rv}, timeout_seconds=60)
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    time.sleep(0.2)  # let it block on the read
    stream.close()
    reader.join(10)
    assert not reader.is_alive()
    assert seen == []
    # the client still works: the cut connection did not go back into the pool
    assert _pod_names(client)[0]


# --- the driver -------------------------------------------------------------------------------


class Recorder:
    """A driver sink that keeps every event, and a driver on its own thread."""

    def __init__(self, client: ContextClient, **kwargs: Any) -> None:
        self.events: queue.Queue[DriverEvent[set[str]]] = queue.Queue()
        self.driver: WatchDriver[set[str]] = WatchDriver(
            client, PODS, lister=_pod_names, sink=self.events.put, **kwargs
        )
        self.thread = threading.Thread(target=self.driver.run, daemon=True)
        self.thread.start()

    def next(self, kind: type[Any], timeout: float = 10.0) -> Any:
        """The next event of `kind`, failing on any event of another kind in between."""
        event = self.events.get(timeout=timeout)
        assert isinstance(event, kind), event
        return event

    def stop(self) -> None:
        self.driver.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_driver_lists_then_follows_changes_without_relisting(
    client: ContextClient, fleet: Fleet
) -> None:
    rec = Recorder(client, watch_timeout_s=1)
    try:
        listed = rec.next(Listed)
        assert len(listed.items) == 1 and listed.resource_version
        fleet.clear_requests("alpha")
        fleet.add_pods("alpha", count=1, gpu="H100", gpus=1, name="new")
        added = rec.next(Changed)
        assert added.type == "ADDED" and added.object["metadata"]["name"].startswith("new")
        time.sleep(1.5)  # at least one watch ends (timeoutSeconds=1) and is opened again
        fleet.remove_pods("alpha", prefix="new")
        while (event := rec.next(Changed)).type != "DELETED":
            pass
        assert event.object["metadata"]["name"].startswith("new")
        log = fleet.requests("alpha")
        assert log and all(r["watch"] for r in log), log  # re-watched, never re-listed
        versions = [int(r["query"]["resourceVersion"]) for r in log]
        assert max(versions) > int(listed.resource_version)  # from the last change seen
    finally:
        rec.stop()


def test_driver_relists_after_410_without_an_error(client: ContextClient, fleet: Fleet) -> None:
    rec = Recorder(client, watch_timeout_s=1)
    try:
        rec.next(Listed)
        fleet.clear_requests("alpha")
        fleet.compact("alpha")  # the next watch from the listed version gets 410
        rec.next(Listed)  # a re-list, never a Failed
        assert any(not r["watch"] for r in fleet.requests("alpha"))
        fleet.add_pods("alpha", count=1, gpu="H100", gpus=1, name="after")
        assert rec.next(Changed).object["metadata"]["name"].startswith("after")
    finally:
        rec.stop()


def test_driver_reports_errors_backs_off_and_recovers(client: ContextClient, fleet: Fleet) -> None:
    rec = Recorder(client, watch_timeout_s=1, retry_s=0.1, max_retry_s=0.4)
    try:
        rec.next(Listed)
        fleet.set_faults("alpha", down=True)
        failed = rec.next(Failed)
        assert isinstance(failed.error, TransportError) and failed.error.context == "alpha"
        fleet.clear_requests("alpha")
        time.sleep(1.0)  # backoff 0.1, 0.2, 0.4, 0.4...: a few tries, not a spin
        fleet.set_faults("alpha", down=False)
        event = rec.events.get(timeout=10)
        while isinstance(event, Failed):
            event = rec.events.get(timeout=10)
        assert isinstance(event, Listed), event
    finally:
        rec.stop()


def test_driver_stops_promptly_during_a_long_watch(client: ContextClient) -> None:
    rec = Recorder(client, watch_timeout_s=60)
    rec.next(Listed)
    time.sleep(0.3)  # the watch is open and idle
    started = time.monotonic()
    rec.stop()
    assert time.monotonic() - started < 10  # not the watch's 60 s
    assert rec.events.empty()
