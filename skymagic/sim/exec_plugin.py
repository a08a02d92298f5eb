"""A real exec credential plugin for the simulated fleet (like `aws eks get-token`).

Run as::

    python -m skymagic.sim.exec_plugin --secret-file PATH --user NAME [--group G]...
        [--ttl SECONDS] [--count-file PATH]

Why a real program: skymagic's auth layer and the official Python client must be exercised
through the actual exec protocol (environment, stdout JSON, exit codes, caching until
expirationTimestamp), not a mock. It answers with the apiVersion found in
KUBERNETES_EXEC_INFO, because client-go rejects a credential of any other version; with no
KUBERNETES_EXEC_INFO (older clients, manual runs) it answers v1beta1, which every supported
client accepts. `--count-file` gets one line per run so tests can assert how often clients
re-run the plugin (caching, refresh on 401).

The secret file's exact bytes are the HMAC secret (no stripping). Only the standard library
and `skymagic.sim.tokens` are imported, so a run costs little more than interpreter start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from skymagic.sim.tokens import TokenMinter

__all__ = ["DEFAULT_API_VERSION", "build_credential", "main"]

DEFAULT_API_VERSION = "client.authentication.k8s.io/v1beta1"


def _rfc3339(t: float) -> str:
    # Floor to the second: the client then refreshes no later than the server starts to refuse.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def build_credential(
    secret: bytes,
    user: str,
    groups: Sequence[str],
    *,
    ttl_s: float,
    api_version: str,
    now: float | None = None,
) -> dict[str, object]:
    """The ExecCredential document the plugin prints."""
    now = time.time() if now is None else now
    token = TokenMinter(secret).mint(user, groups, ttl_s=ttl_s, now=now)
    return {
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": _rfc3339(now + ttl_s)},
    }


def _fail(message: str) -> int:
    sys.stderr.write(f"skymagic-sim-exec-plugin: {message}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m skymagic.sim.exec_plugin",
        description="Exec credential plugin for skymagic's simulated Kubernetes fleet.",
    )
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--ttl", type=float, default=3600.0)
    parser.add_argument("--count-file")
    parser.add_argument(
        "--ttl-file",
        help="a file holding the TTL in seconds, read at every run (the fleet's token_ttl_s "
        "fault rewrites it while the fleet runs); wins over --ttl when readable",
    )
    args = parser.parse_args(argv)
    if args.ttl_file:
        try:
            with open(args.ttl_file, encoding="utf-8") as f:
                args.ttl = float(f.read().strip())
        except (OSError, ValueError):
            pass

    if args.count_file:
        # One write() of a whole line with O_APPEND: concurrent runs never interleave.
        line = f"{time.time():.6f} {os.getpid()} {args.user}\n".encode()
        fd = os.open(args.count_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    try:
        with open(args.secret_file, "rb") as f:
            secret = f.read()
    except OSError as e:
        return _fail(f"cannot read secret file {args.secret_file}: {e.strerror or e}")
    if not secret:
        return _fail(f"secret file {args.secret_file} is empty")

    api_version = DEFAULT_API_VERSION
    info = os.environ.get("KUBERNETES_EXEC_INFO")
    if info:
        try:
            parsed = json.loads(info)
            api_version = str(parsed.get("apiVersion") or DEFAULT_API_VERSION)
        except (ValueError, AttributeError):
            return _fail("KUBERNETES_EXEC_INFO is not a JSON object")

    cred = build_credential(secret, args.user, args.group, ttl_s=args.ttl, api_version=api_version)
    sys.stdout.write(json.dumps(cred) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
