"""The jobs database shared by processes that open, write and close it all at once.

The controller writes while the kernel (and the CLI) open the store to read and submit. An
earlier WAL-mode store failed here with "database is locked" on open and "disk I/O error"
mid-transaction; every open, read and write must instead wait its turn and succeed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from skymagic.jobs.store import JobStore

_WRITER = """
import sys, time
from pathlib import Path
from skymagic.jobs.store import JobStore
directory, seconds = Path(sys.argv[1]), float(sys.argv[2])
store = JobStore(directory)
writes = 0
stop_at = time.monotonic() + seconds  # from this writer's own start: a loaded machine starts late
while time.monotonic() < stop_at or writes < 50:
    JobStore(directory).close()  # another client coming and going
    job = store.submit(name="j", launch_name=lambda i: f"j-{i}", task="{}", settings="{}",
                       recovery="{}", task_id=lambda i, t: f"t-{i}", resources="1CPU")
    store.request_cancel([job])
    writes += 1
print(writes)
"""


def test_opens_reads_and_writes_from_several_processes_all_succeed(tmp_path: Path) -> None:
    JobStore(tmp_path).close()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), "3.0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reads = 0
    while any(w.poll() is None for w in writers) or reads < 50:
        store = JobStore(tmp_path)
        store.jobs()
        store.close()
        reads += 1
    results = [w.communicate(timeout=120) for w in writers]
    for writer, (_out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
    writes = sum(int(out) for out, _ in results)
    assert reads > 0 and writes > 0
    store = JobStore(tmp_path)
    assert len(store.jobs()) == writes  # every submit is there, none lost
    store.close()
