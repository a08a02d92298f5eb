"""The floors: concurrent raw HTTPS GETs of the two lists per context, read and thrown away
(the byte floor) or each page decoded into dicts with orjson (the orjson floor).

Executed by bench/inventory.py in its own process. Per context it lists nodes
(resourceVersion=0) and non-terminal pods (resourceVersion=0, field selector excluding
Succeeded and Failed), both paginated with the same limit skymagic uses, all lists of all
contexts at once (one thread and one keep-alive connection per list, kept across runs as
skymagic keeps its clients). With "decode": "none" each body is read whole and dropped; the
next page's continue token is read from the first bytes of the page, as skymagic's client does
(the API server writes `metadata` before `items`). With "decode": "orjson" every page is
decoded with orjson; nothing else either way: no model objects, no counting beyond the number
of items. The cyclic garbage collector is off during a timed call (its passes over millions of
freshly decoded dicts cost 3-4x the decode itself on a 64 MB list and are not part of "GET and
decode"); with "gc": true it stays on (the `orjson-floor-gc` variant).

Usage: python _floor_runner.py '{"kubeconfig": PATH, "contexts": [...], "runs": N,
                                 "warmup": 1, "limit": 2000, "gc": false, "decode": "orjson",
                                 "gzip": false}'
   (gzip: ask for gzip'd lists; the byte floor then reads the compressed bodies, inflating
   only the first KB of each page for its continue token)
Prints one JSON object on the last line of stdout.
"""

from __future__ import annotations

import base64
import gc
import http.client
import json
import os
import re
import resource
import ssl
import sys
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _rounds
import orjson
import yaml

POD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
CONTINUE_RE = re.compile(rb'"continue"\s*:\s*"([^"]*)"')


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _targets(kubeconfig: str, contexts: list[str]) -> dict[str, dict[str, Any]]:
    """Server, TLS context and headers per context, from a token-auth kubeconfig."""
    with open(kubeconfig, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    clusters = {c["name"]: c["cluster"] for c in cfg.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in cfg.get("users") or []}
    ctxs = {c["name"]: c["context"] for c in cfg.get("contexts") or []}
    out: dict[str, dict[str, Any]] = {}
    for name in contexts:
        ctx = ctxs[name]
        cluster = clusters[ctx["cluster"]]
        user = users[ctx["user"]]
        token = user.get("token")
        if not token:
            raise SystemExit(f"context {name}: the floor runner needs token auth")
        tls = ssl.create_default_context()
        ca = cluster.get("certificate-authority-data")
        if ca:
            tls.load_verify_locations(cadata=base64.b64decode(ca).decode())
        elif cluster.get("certificate-authority"):
            tls.load_verify_locations(cafile=cluster["certificate-authority"])
        url = urllib.parse.urlsplit(cluster["server"])
        out[name] = {
            "host": url.hostname,
            "port": url.port or 443,
            "tls": tls,
            "headers": {"Authorization": f"Bearer {token}", "Accept": "application/json"},
        }
    return out


def _connect(target: dict[str, Any]) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        target["host"], target["port"], context=target["tls"], timeout=120
    )


def _get(
    conn: http.client.HTTPSConnection, url: str, headers: dict[str, str]
) -> tuple[int, bytes, str]:
    for attempt in (0, 1):
        try:
            conn.request("GET", url, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Encoding") or ""
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()  # a keep-alive connection the server closed: reconnect once
            if attempt:
                raise
    raise AssertionError("unreachable")


def _list_all(
    target: dict[str, Any],
    conn: http.client.HTTPSConnection,
    path: str,
    query: dict[str, str],
    decode: bool,
) -> tuple[int, int]:
    """GET every page of one list on one keep-alive connection; decode each page or not."""
    items = nbytes = 0
    token = ""
    while True:
        q = dict(query)
        if token:
            q["continue"] = token
        status, body, encoding = _get(
            conn, f"{path}?{urllib.parse.urlencode(q)}", target["headers"]
        )
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
        nbytes += len(body)
        if decode:
            doc = orjson.loads(body)
            items += len(doc.get("items") or ())
            token = (doc.get("metadata") or {}).get("continue") or ""
            del doc
        else:
            if encoding == "gzip":  # the token is in the first bytes of the inflated page
                body = zlib.decompressobj(31).decompress(body, 4096)
            m = CONTINUE_RE.search(body, 0, 4096)
            token = m.group(1).decode() if m else ""
        del body
        if not token:
            return items, nbytes


def main() -> int:
    args = json.loads(sys.argv[1])
    contexts: list[str] = list(args["contexts"])
    limit = str(int(args.get("limit", 10_000)))
    collect = bool(args.get("gc", False))
    decode = args.get("decode", "orjson") == "orjson"
    targets = _targets(args["kubeconfig"], contexts)
    if args.get("gzip"):  # the same requests as a client asking for compressed lists
        for t in targets.values():
            t["headers"]["Accept-Encoding"] = "gzip"
    gc.collect()
    gc.freeze()
    rss_before_mb = _current_rss_mb()

    jobs = []
    for ctx in contexts:
        jobs.append((ctx, "nodes", "/api/v1/nodes", {"resourceVersion": "0", "limit": limit}))
        jobs.append(
            (
                ctx,
                "pods",
                "/api/v1/pods",
                {"resourceVersion": "0", "fieldSelector": POD_SELECTOR, "limit": limit},
            )
        )

    conns = [_connect(targets[c]) for c, _, _, _ in jobs]
    counts: dict[str, dict[str, int]] = {}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:

        def one_call() -> None:
            if not collect:
                gc.disable()
            try:
                futures = [
                    pool.submit(_list_all, targets[c], conns[j], p, q, decode)
                    for j, (c, _, p, q) in enumerate(jobs)
                ]
                results = [f.result() for f in futures]
            finally:
                gc.enable()
            counts.clear()
            for (ctx, what, _, _), (n, _b) in zip(jobs, results, strict=True):
                counts.setdefault(ctx, {})[what] = n

        windows = _rounds.calls(args, one_call)
    print(
        json.dumps(
            {
                "tool": ("orjson-floor" + ("-gc" if collect else "")) if decode else "byte-floor",
                "decode": "orjson" if decode else "none",
                "gc": collect,
                "limit": int(limit),
                "windows": windows,
                "rss_before_mb": rss_before_mb,
                "peak_rss_mb": _rss_mb(),
                "items": counts if decode else None,
                "error": _rounds.first_error(windows),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
