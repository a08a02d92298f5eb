"""Helpers for the simulated-fleet end-to-end tests (tests/sim/test_fleet_*.py and friends).

Clients are the real ones: the official Python client built with its own kubeconfig loader
(fine for testing the simulator), raw HTTPS through that client's connection pool, and kubectl
as a subprocess. Waiting is always polling with a deadline, never sleep-and-hope.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from skymagic.sim import Fleet

T = TypeVar("T")

__all__ = [
    "ApiException",
    "api_client",
    "core",
    "kubectl",
    "pod_manifest",
    "raw",
    "stream_lines",
    "wait_for",
]


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll `predicate` until it returns something truthy; fail with the last value on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (last: {value!r})"
            )
        time.sleep(interval)


def api_client(
    fleet: Fleet, context: str, *, token: str | None = None, retries: int | None = None
) -> client.ApiClient:
    """The official client for one context (optionally acting with another bearer token, or
    with urllib3 retries set, e.g. 0 to see a fault's first failure)."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=fleet.kubeconfig, context=context, client_configuration=cfg)
    if retries is not None:
        cfg.retries = retries
    api = client.ApiClient(configuration=cfg)
    if token is not None:
        api.configuration.refresh_api_key_hook = None  # else it reloads the kubeconfig's token
        api.configuration.api_key = {"authorization": f"Bearer {token}"}
        api.configuration.api_key_prefix = {}
    return api


def core(fleet: Fleet, context: str, *, token: str | None = None) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(fleet, context, token=token))


def _send(
    api: client.ApiClient,
    method: str,
    path: str,
    params: list[tuple[str, Any]],
    headers: dict[str, str],
    body: Any,
    timeout: float | tuple[float, float] | None,
) -> Any:
    """The generated client's own request path (auth, TLS, pool), without model decoding."""
    method, url, hdrs, body, _ = api.param_serialize(
        method,
        path,
        query_params=params,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    return api.call_api(method, url, header_params=hdrs, body=body, _request_timeout=timeout)


def raw(
    api: client.ApiClient,
    method: str,
    path: str,
    query: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | tuple[float, float] | None = 10.0,
    decode: bool = True,
) -> tuple[int, Any, dict[str, str]]:
    """One request through the official client's pool: (status, decoded JSON or bytes, headers).

    `decode=False` returns the body as bytes (for big lists decoded with msgspec)."""
    params = list(query.items()) if isinstance(query, Mapping) else list(query or [])
    hdrs = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    resp = _send(api, method, path, params, hdrs, body, timeout)
    status, data, resp_headers = resp.status, resp.read(), dict(resp.headers)
    if decode and isinstance(data, bytes | str) and data:
        ctype = resp_headers.get("Content-Type", resp_headers.get("content-type", ""))
        if "json" in ctype:
            try:
                data = json.loads(data)
            except ValueError:  # a watch stream: several JSON documents
                pass
    return int(status), data, resp_headers


def stream_lines(
    api: client.ApiClient,
    path: str,
    query: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    headers_out: dict[str, str] | None = None,
) -> Iterator[bytes]:
    """GET a streaming endpoint (watch, logs -f) and yield its body line by line as it arrives.

    The request is sent at the first next(); `headers_out` receives the response headers.
    """
    resp = _send(
        api, "GET", path, list(query.items()), {"Accept": "application/json"}, None, timeout
    ).response
    if headers_out is not None:
        headers_out.update({k.lower(): v for k, v in resp.headers.items()})
    buf = b""
    try:
        for chunk in resp.stream(1024, decode_content=False):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line
        if buf:
            yield buf
    finally:
        resp.release_conn()


def pod_manifest(
    name: str,
    *,
    gpus: int = 0,
    resource: str = "nvidia.com/gpu",
    command: list[str] | None = None,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    node_selector: Mapping[str, str] | None = None,
    affinity: Mapping[str, Any] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    cpu: str = "100m",
    restart_policy: str = "Never",
) -> dict[str, Any]:
    """A plain pod as a user (or SkyPilot) would submit it."""
    requests: dict[str, str] = {"cpu": cpu, "memory": "128Mi"}
    limits: dict[str, str] = {}
    if gpus:
        requests[resource] = str(gpus)
        limits[resource] = str(gpus)
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [
            {
                "name": "main",
                "image": "python:3.11-slim",
                "command": command or ["sleep", "infinity"],
                "resources": {"requests": requests, **({"limits": limits} if limits else {})},
            }
        ],
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if affinity:
        spec["affinity"] = dict(affinity)
    if tolerations is not None:
        spec["tolerations"] = tolerations
    elif gpus:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    meta: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def kubectl(
    fleet: Fleet,
    context: str,
    *args: str,
    timeout: float = 30.0,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against one context of the fleet (`input`: its stdin, then EOF)."""
    cache = str(fleet.state_dir / "kubectl-cache")  # not the developer's ~/.kube/cache
    argv = ["kubectl", "--kubeconfig", fleet.kubeconfig, "--context", context]
    proc = subprocess.run(
        [*argv, "--cache-dir", cache, *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
            f"stderr: {proc.stderr}"
        )
    return proc
