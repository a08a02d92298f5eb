"""The jobs database (SQLite, under the skymagic state directory) and where job files live.

One database per state directory (default `~/.skymagic/jobs`, or `$SKYMAGIC_JOBS_DIR`):

- `jobs`: one row per job, its stored Task and Settings, status and counters, and `details`:
  what it does or waits for now (its last status message, or a waiting job's live line);
- `attempts`: one row per launch of a job (where it ran, how it ended, whether its log file is
  complete);
- `events`: every status change with its reason (what `logs --follow` and the cell print);
- `meta`: the database's id (`db_id`), written into every job pod's labels so a controller
  finds its own pods and never another database's.

Writers: clients insert jobs and set `cancel_requested`; the controller writes everything
else. SQLite's rollback journal with a busy timeout lets both at once: one process writes at a
time and every transaction is a few rows, so a reader waits milliseconds at most. Not WAL: its
shared-memory index made a store opened while another process wrote (or closed its last
connection) fail with "database is locked" or "disk I/O error" without waiting (seen in CI,
reproduced by tests/unit/jobs/test_store_concurrency.py). Logs are plain files:
`logs/<job id>/<attempt>.log`.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from skymagic.jobs.model import ACTIVE, TERMINAL, JobStatus

__all__ = [
    "AttemptRecord",
    "EventRecord",
    "JobRecord",
    "JobStore",
    "state_dir",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    launch_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    task TEXT NOT NULL,
    settings TEXT NOT NULL,
    recovery TEXT NOT NULL,
    task_id TEXT NOT NULL DEFAULT '',
    resources TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    recoveries INTEGER NOT NULL DEFAULT 0,
    restarts_on_errors INTEGER NOT NULL DEFAULT 0,
    last_failure TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    details TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS attempts (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    context TEXT NOT NULL,
    namespace TEXT NOT NULL,
    pod TEXT NOT NULL,
    pod_uid TEXT NOT NULL DEFAULT '',
    node TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    log_complete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    t REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, id);
"""


def state_dir() -> Path:
    """Where the jobs database, logs and controller files live (override: SKYMAGIC_JOBS_DIR)."""
    return Path(os.environ.get("SKYMAGIC_JOBS_DIR") or Path.home() / ".skymagic" / "jobs")


@dataclass(frozen=True)
class JobRecord:
    """One job as the database has it."""

    id: int
    name: str
    launch_name: str
    status: JobStatus
    task: str  # JSON (jobspec.task_from_json)
    settings: str  # JSON (jobspec.settings_from_json)
    recovery: str  # JSON {strategy, max_restarts_on_errors}
    task_id: str
    resources: str
    submitted_at: float
    started_at: float | None
    ended_at: float | None
    recoveries: int
    restarts_on_errors: int
    last_failure: str
    cancel_requested: bool
    details: str = ""  # what it does or waits for now

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True)
class AttemptRecord:
    """One launch of a job: where it ran and how it ended."""

    job_id: int
    attempt: int
    context: str
    namespace: str
    pod: str
    pod_uid: str
    node: str
    started_at: float
    ended_at: float | None
    outcome: str
    reason: str
    log_complete: bool


@dataclass(frozen=True)
class EventRecord:
    id: int
    job_id: int
    t: float
    status: str
    message: str


def _leave_wal(db: sqlite3.Connection) -> None:
    """Turn a database an older skymagic left in WAL mode back to the rollback journal.

    The switch needs the database to itself; while another process has it open it fails, and
    the database simply stays in WAL mode until a later open finds it alone.
    """
    if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return
    try:
        db.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.OperationalError:
        pass


def _add_columns(db: sqlite3.Connection) -> None:
    """Columns added since a database was made (CREATE TABLE IF NOT EXISTS keeps old tables)."""
    have = {r[1] for r in db.execute("PRAGMA table_info(jobs)").fetchall()}
    if "details" not in have:
        try:
            db.execute("ALTER TABLE jobs ADD COLUMN details TEXT NOT NULL DEFAULT ''")
        except sqlite3.OperationalError as exc:  # another process added it just now
            if "duplicate column" not in str(exc):
                raise


class JobStore:
    """The jobs database in `directory` (created on first use)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = Path(directory) if directory is not None else state_dir()
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.dir / "jobs.db"
        # The jobs' tasks are in it, their secrets too (every relaunch needs them): owner only.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        # One thread at a time uses it (the controller's loop thread, or a client's caller),
        # but not always the thread that opened it.
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout = 30000")
        _leave_wal(self._db)
        self._db.executescript(_SCHEMA)
        _add_columns(self._db)
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'db_id'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('db_id', ?)", (uuid.uuid4().hex[:12],)
                )
        self.db_id = str(
            self._db.execute("SELECT value FROM meta WHERE key = 'db_id'").fetchone()[0]
        )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (an I/O error)
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def log_path(self, job_id: int, attempt: int) -> Path:
        return self.dir / "logs" / str(job_id) / f"{attempt}.log"

    # -- clients ---------------------------------------------------------------------------
    def submit(
        self,
        *,
        name: str,
        launch_name: Any,
        task: str,
        settings: str,
        recovery: str,
        task_id: Any,
        resources: str,
    ) -> int:
        """Insert a PENDING job; `launch_name(id)` and `task_id(id, submitted)` name it."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO jobs (name, status, task, settings, recovery, resources, "
                "submitted_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, JobStatus.PENDING.value, task, settings, recovery, resources, now, now),
            )
            job_id = int(cur.lastrowid or 0)
            db.execute(
                "UPDATE jobs SET launch_name = ?, task_id = ? WHERE id = ?",
                (launch_name(job_id), task_id(job_id, now), job_id),
            )
            db.execute(
                "INSERT INTO events (job_id, t, status, message) VALUES (?, ?, ?, ?)",
                (job_id, now, JobStatus.PENDING.value, "submitted"),
            )
            db.execute("UPDATE jobs SET details = 'submitted' WHERE id = ?", (job_id,))
        return job_id

    def request_cancel(self, job_ids: list[int]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                [(time.time(), i) for i in job_ids],
            )

    # -- reads -----------------------------------------------------------------------------
    def jobs(self, *, active_only: bool = False) -> list[JobRecord]:
        rows = self._db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        out = [_job(r) for r in rows]
        return [j for j in out if j.active] if active_only else out

    def job(self, job_id: int) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def attempts(self, job_id: int) -> list[AttemptRecord]:
        rows = self._db.execute(
            "SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,)
        ).fetchall()
        return [_attempt(r) for r in rows]

    def latest_attempts(self) -> dict[int, AttemptRecord]:
        """Each job's last attempt (for the queue's context column)."""
        rows = self._db.execute(
            "SELECT a.* FROM attempts a JOIN (SELECT job_id, MAX(attempt) AS n FROM attempts "
            "GROUP BY job_id) m ON a.job_id = m.job_id AND a.attempt = m.n"
        ).fetchall()
        return {int(r["job_id"]): _attempt(r) for r in rows}

    def events(self, job_id: int, after: int = 0) -> list[EventRecord]:
        rows = self._db.execute(
            "SELECT * FROM events WHERE job_id = ? AND id > ? ORDER BY id", (job_id, after)
        ).fetchall()
        return [
            EventRecord(int(r["id"]), int(r["job_id"]), float(r["t"]), r["status"], r["message"])
            for r in rows
        ]

    # -- the controller ----------------------------------------------------------------------
    def set_status(self, job_id: int, status: JobStatus, message: str, **fields: Any) -> None:
        """Change a job's status (and other columns), recording the change as an event.

        RUNNING stamps `started_at` the first time; a terminal status stamps `ended_at`. The
        message becomes the job's `details` (when there is one, and always at the end).
        """
        now = time.time()
        if message or status in TERMINAL:
            fields = {**fields, "details": message}
        sets = [f"{k} = ?" for k in fields] + ["status = ?", "updated_at = ?"]
        values = [*fields.values(), status.value, now]
        if status == JobStatus.RUNNING:
            sets.append("started_at = COALESCE(started_at, ?)")
            values.append(now)
        if status in TERMINAL:
            sets.append("ended_at = ?")
            values.append(now)
        with self._tx() as db:
            old = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?", (*values, job_id))
            if old is None or old["status"] != status.value or message:
                db.execute(
                    "INSERT INTO events (job_id, t, status, message) VALUES (?, ?, ?, ?)",
                    (job_id, now, status.value, message),
                )

    def update(self, job_id: int, **fields: Any) -> None:
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    def start_attempt(
        self,
        job_id: int,
        attempt: int,
        *,
        context: str,
        namespace: str,
        pod: str,
        pod_uid: str,
        node: str,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO attempts (job_id, attempt, context, namespace, pod, "
                "pod_uid, node, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, attempt, context, namespace, pod, pod_uid, node, time.time()),
            )

    def end_attempt(self, job_id: int, attempt: int, outcome: str, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attempts SET ended_at = ?, outcome = ?, reason = ? "
                "WHERE job_id = ? AND attempt = ? AND ended_at IS NULL",
                (time.time(), outcome, reason, job_id, attempt),
            )

    def log_complete(self, job_id: int, attempt: int) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attempts SET log_complete = 1 WHERE job_id = ? AND attempt = ?",
                (job_id, attempt),
            )


_Record = TypeVar("_Record")


def _record(cls: type[_Record], r: sqlite3.Row, casts: dict[str, Callable[[Any], Any]]) -> _Record:
    """A record from a row whose columns are named as the dataclass's fields (SQLite keeps
    ints, floats and NULLs; `casts` restores the rest: enums, booleans, non-null numbers)."""
    return cls(**{f.name: casts.get(f.name, _same)(r[f.name]) for f in fields(cls)})  # type: ignore[arg-type]


def _same(value: Any) -> Any:
    return value


def _job(r: sqlite3.Row) -> JobRecord:
    return _record(
        JobRecord,
        r,
        {
            "id": int,
            "status": JobStatus,
            "submitted_at": float,
            "recoveries": int,
            "restarts_on_errors": int,
            "cancel_requested": bool,
        },
    )


def _attempt(r: sqlite3.Row) -> AttemptRecord:
    return _record(
        AttemptRecord,
        r,
        {"job_id": int, "attempt": int, "started_at": float, "log_complete": bool},
    )
