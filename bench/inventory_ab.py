"""Two or more skymagic versions (or settings) side by side on the large fleet, in turns.

    PYTHONPATH=. .venv/bin/python bench/inventory_ab.py [--rounds 12] [--kubeconfig K --contexts a,b]
        main=/tmp/main-tree this=. "gz=.@GZIP=1" "p1000=.@LIMIT=1000" floor one-thread gzfloor

Why: on a shared 2-core machine one version measured after another meets another load, and a
10% change drowns in it. Here every runner starts at once in its own process (the runners of
bench/inventory.py, bench/_rounds.py's protocol), then one warm-up round and N rounds of one
call each, each round in a fresh random order, and each ratio is the median of the per-round
ratios against the byte floor. A version is NAME=TREE (a directory holding a `skymagic`
package, put first on PYTHONPATH), optionally @KEY=VALUE,...: LIMIT (page size) and GZIP
(ask for gzip'd lists) go to the runner, anything else into its environment. `floor`,
`gzfloor` (the byte floor asking for gzip) and `one-thread` (bench/_one_thread_runner.py) are
the fixed tools. Without --kubeconfig the large fleet of bench/inventory.py is started here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PY = sys.executable


def _runner(spec: str, base: dict[str, Any]) -> tuple[str, list[str], dict[str, str]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{BENCH.parent}{os.pathsep}{BENCH}"
    if spec in ("floor", "gzfloor"):
        args = dict(base, decode="none", gc=False, gzip=spec == "gzfloor", limit=base["limit"])
        return spec, [PY, str(BENCH / "_floor_runner.py"), json.dumps(args)], env
    if spec == "one-thread":
        return spec, [PY, str(BENCH / "_one_thread_runner.py"), json.dumps(base)], env
    name, rest = spec.split("=", 1)
    tree, _, extra = rest.partition("@")
    args = dict(base, breakdown=False, limit=None)
    for kv in filter(None, extra.split(",")):
        key, value = kv.split("=", 1)
        if key == "LIMIT":
            args["limit"] = int(value)
        elif key == "GZIP":
            args["gzip"] = value not in ("", "0")
        else:
            env[key] = value
    env["PYTHONPATH"] = f"{Path(tree).resolve()}{os.pathsep}{BENCH}"
    return name, [PY, str(BENCH / "_skymagic_runner.py"), json.dumps(args)], env


def _answer(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"a runner exited (code {proc.wait()})")
        if line.startswith("{"):
            value: dict[str, Any] = json.loads(line)
            return value


def _sim_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    specs: list[str], kubeconfig: str, contexts: list[str], rounds: int, sim_pid: int | None
) -> None:
    base = {
        "kubeconfig": kubeconfig,
        "contexts": contexts,
        "runs": rounds,
        "warmup": 1,
        "rounds": True,
        "limit": 2000,
    }
    procs: dict[str, subprocess.Popen[str]] = {}
    for spec in specs:
        name, cmd, env = _runner(spec, base)
        procs[name] = subprocess.Popen(
            cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
    for proc in procs.values():
        _answer(proc)  # ready
    got: dict[str, list[tuple[float, float, float]]] = {n: [] for n in procs}
    names = list(procs)
    for r in range(rounds + 1):
        order = random.sample(names, len(names))
        for name in order:
            proc = procs[name]
            assert proc.stdin is not None
            s0 = _sim_cpu(sim_pid)
            proc.stdin.write(("warmup" if r == 0 else "go") + "\n")
            proc.stdin.flush()
            w = _answer(proc)["window"]
            if w.get("error"):
                print(f"{name}: {w['error']}")
            if r:
                got[name].append((w["wall_s"], w["cpu_s"], _sim_cpu(sim_pid) - s0))
    finals: dict[str, dict[str, Any]] = {}
    for name, proc in procs.items():
        assert proc.stdin is not None
        proc.stdin.write("end\n")
        proc.stdin.flush()
        finals[name] = _answer(proc)
        proc.wait(60)
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    print(f"{rounds} rounds, load average at the end {load}")
    ref = "floor" if "floor" in got else names[0]
    print(f"| version | wall, median | min | client CPU | simulator CPU | peak RSS | / {ref} |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        rows = got[name]
        ratio = statistics.median(a[0] / b[0] for a, b in zip(rows, got[ref], strict=True))
        print(
            f"| {name} | {statistics.median(x[0] for x in rows):.3f} s | "
            f"{min(x[0] for x in rows):.3f} s | {statistics.median(x[1] for x in rows):.3f} s | "
            f"{statistics.median(x[2] for x in rows):.2f} s | "
            f"{finals[name].get('peak_rss_mb') or 0:.0f} MB | {ratio:.2f} |"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--kubeconfig", help="a running fleet's kubeconfig (default: start one)")
    ap.add_argument("--contexts", help="comma-separated, with --kubeconfig")
    ap.add_argument("--sim-pid", type=int, help="the running fleet's process, for its CPU")
    a = ap.parse_args()
    if a.kubeconfig:
        run(a.specs, a.kubeconfig, a.contexts.split(","), a.rounds, a.sim_pid)
        return 0
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(BENCH.parent))
    from inventory import large_spec

    from skymagic.sim import Fleet

    with Fleet(large_spec(), startup_timeout=900) as fleet:
        pid = fleet.proc.pid if fleet.proc is not None else None
        run(a.specs, fleet.kubeconfig, list(fleet.contexts), a.rounds, pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
