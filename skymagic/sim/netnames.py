"""Pod IPs and headless-Service names for `runtime: local` pods (the cluster DNS they lack).

A local pod is a process on this machine, so its pod IP is a loopback address of its own
(127.<100 + cluster index>.x.y: all of 127.0.0.0/8 reaches this machine on Linux), and a rank
of a multi-node launch can listen on its IP while another connects to it.

Cluster DNS answers `HOSTNAME.SUBDOMAIN[.NAMESPACE.svc[.cluster.local]]` with the IP of a pod
whose spec sets that hostname and subdomain, when a headless Service (clusterIP None) named
SUBDOMAIN exists in its namespace, and a headless Service's own name with the IPs of the pods
it selects (here: of the pods that set a subdomain). A pod that has finished is dropped, as
the EndpointSlice controller drops it. The local runtime has no DNS server, so the cluster keeps
those answers in an /etc/hosts-format file, `<cluster dir>/net/hosts`, rewritten (atomically)
whenever such a pod gets or loses its IP or such a Service comes or goes, and every local
pod's processes honour it:

- `SKYMAGIC_SIM_HOSTS` is the file's path;
- `PATH` starts with `<cluster dir>/net/bin`, whose `getent` answers `getent hosts NAME` from
  the file and hands every other question to the system's `getent`;
- `PYTHONPATH` starts with `<cluster dir>/net/py`, whose `sitecustomize` makes Python's
  `socket.getaddrinfo`, `gethostbyname` and `gethostbyname_ex` look in the file first (so
  `socket.create_connection(("rank-1.job-nodes", port))` works).

Programs that resolve names some other way (a C library call from a binary) do not see them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["NameTable", "local_pod_ip", "names_env"]

GETENT = r"""#!/bin/sh
# skymagic's simulated cluster DNS: `getent hosts NAME` from $SKYMAGIC_SIM_HOSTS first.
if [ "$1" = hosts ] && [ $# -eq 2 ] && [ -r "$SKYMAGIC_SIM_HOSTS" ]; then
  while read -r ip names; do
    for n in $names; do
      if [ "$n" = "$2" ]; then echo "$ip       $names"; exit 0; fi
    done
  done < "$SKYMAGIC_SIM_HOSTS"
fi
PATH=${PATH#*:} exec getent "$@"
"""

SITECUSTOMIZE = '''"""skymagic's simulated cluster DNS for Python: $SKYMAGIC_SIM_HOSTS first."""
import os
import socket

_PATH = os.environ.get("SKYMAGIC_SIM_HOSTS", "")
_getaddrinfo = socket.getaddrinfo
_gethostbyname = socket.gethostbyname
_gethostbyname_ex = socket.gethostbyname_ex


def _lookup(name):
    if not _PATH or not isinstance(name, str):
        return None
    try:
        with open(_PATH, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 2 and name in parts[1:]:
                    return parts[0]
    except OSError:
        return None
    return None


def getaddrinfo(host, *args, **kwargs):
    return _getaddrinfo(_lookup(host) or host, *args, **kwargs)


def gethostbyname(name):
    return _lookup(name) or _gethostbyname(name)


def gethostbyname_ex(name):
    ip = _lookup(name)
    return (name, [], [ip]) if ip else _gethostbyname_ex(name)


socket.getaddrinfo = getaddrinfo
socket.gethostbyname = gethostbyname
socket.gethostbyname_ex = gethostbyname_ex
'''


def local_pod_ip(cluster_index: int, n: int) -> str:
    """The n-th local pod IP of a cluster: a loopback address nothing else uses."""
    return f"127.{100 + cluster_index % 100}.{(n // 250) % 250}.{n % 250 + 1}"


def net_dir(workdir: Path) -> Path:
    return workdir / "net"


def names_env(workdir: Path, path: str, old_py: str = "") -> dict[str, str]:
    """The variables a local pod's processes get so they honour the names file."""
    net = net_dir(workdir)
    py = str(net / "py")
    return {
        "SKYMAGIC_SIM_HOSTS": str(net / "hosts"),
        "PATH": f"{net / 'bin'}{os.pathsep}{path}",
        "PYTHONPATH": f"{py}{os.pathsep}{old_py}" if old_py else py,
    }


class NameTable:
    """The cluster's headless-Service answers, kept in `<workdir>/net/hosts` (a store listener)."""

    def __init__(self, workdir: Path) -> None:
        self.net = net_dir(workdir)
        (self.net / "bin").mkdir(parents=True, exist_ok=True)
        (self.net / "py").mkdir(parents=True, exist_ok=True)
        getent = self.net / "bin" / "getent"
        getent.write_text(GETENT)
        getent.chmod(0o755)
        (self.net / "py" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.path = self.net / "hosts"
        # pod key -> (namespace, hostname, subdomain, ip, labels); headless Services by
        # (namespace, name) -> their selector
        self.pods: dict[str, tuple[str, str, str, str, dict[str, str]]] = {}
        self.headless: dict[tuple[str, str], dict[str, str]] = {}
        self._text: str | None = None
        self._write()

    def on_change(self, resource: str, etype: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if resource == "services":
            spec = obj.get("spec") or {}
            if etype != "DELETED" and spec.get("clusterIP") == "None":
                self.headless[(ns, name)] = dict(spec.get("selector") or {})
            else:
                self.headless.pop((ns, name), None)
        elif resource == "pods":
            spec, status = obj.get("spec") or {}, obj.get("status") or {}
            key = f"{ns}/{name}"
            ip = status.get("podIP")
            live = status.get("phase") not in ("Succeeded", "Failed")
            if etype != "DELETED" and spec.get("subdomain") and ip and live:
                hostname = str(spec.get("hostname") or name)
                labels = dict(meta.get("labels") or {})
                self.pods[key] = (ns, hostname, str(spec["subdomain"]), str(ip), labels)
            elif self.pods.pop(key, None) is None:
                return
        else:
            return
        self._write()

    def lines(self) -> list[str]:
        out = []
        pods = sorted(self.pods.values(), key=lambda p: p[:4])
        for ns, hostname, sub, ip, _labels in pods:
            if (ns, sub) in self.headless:
                short = f"{hostname}.{sub}"
                out.append(f"{ip} {short} {short}.{ns}.svc {short}.{ns}.svc.cluster.local")
        for (ns, name), selector in sorted(self.headless.items()):
            for pod_ns, _h, _s, ip, labels in pods:
                if selector and pod_ns == ns and selector.items() <= labels.items():
                    out.append(f"{ip} {name} {name}.{ns}.svc {name}.{ns}.svc.cluster.local")
        return out

    def _write(self) -> None:
        text = "".join(line + "\n" for line in self.lines())
        if text == self._text:
            return
        fd, tmp = tempfile.mkstemp(dir=str(self.net), prefix=".hosts-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, self.path)
        self._text = text
