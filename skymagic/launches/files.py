"""Your code and data in the pod: `workdir` and local `file_mounts`, sent as a tar stream.

Like `kubectl cp`, files travel as a tar archive on the stdin of an exec'd `tar x`, gzip'd
(level 1: cheap on the CPU, and most source trees shrink 3-5x; files that do not compress
are stored, see _Sink). Modes and symlinks are kept; owners
are not (everything arrives as the pod's user). What is left out follows SkyPilot
(ignore.py). Everything is checked before the launch creates anything (collect_files): a
missing path, an unreadable file, a folder over the size limit (SKYMAGIC_MAX_UPLOAD_GB,
default 4) are one line each.

Re-sending only what changed: each destination's manifest (relative path -> size, mtime, mode,
link target) is kept in the pod under ~/.sky/manifests; a later launch reads it back (one
exec that also checks the image has tar and gzip) and sends only the entries that differ.
Files deleted locally are not deleted in the pod (as SkyPilot's rsync, without --delete).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import stat
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from skymagic.core.client import ContextClient
from skymagic.core.podstreams import exec_stream
from skymagic.errors import ConfigError, LaunchError
from skymagic.launches.agent import SKY_DIR, WORKDIR
from skymagic.launches.ignore import excluded_paths
from skymagic.launches.task import Task

__all__ = ["Entry", "FileSet", "SyncReport", "Upload", "collect_files", "send_files"]

DEFAULT_MAX_GB = 4.0
_NO_TAR, _NO_GZIP = 96, 95
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Entry:
    """One thing to send: a file, a folder or a symlink, relative to its destination."""

    rel: str
    path: str  # local
    kind: str  # file | dir | link
    size: int
    mtime_ns: int
    mode: int
    target: str = ""  # a symlink's target

    def key(self) -> list[object]:
        """What the manifest compares: a change in any of these re-sends the entry."""
        return [self.kind, self.size, self.mtime_ns, self.mode, self.target]


@dataclass
class Upload:
    """One local source and where it lands in the pod."""

    source: str
    remote: str  # "~/sky_workdir", "~/data", "/data/x.csv"
    entries: list[Entry]
    single_file: bool = False
    rule: str = ""  # which ignore file applied

    @property
    def manifest_key(self) -> str:
        return hashlib.sha256(self.remote.encode()).hexdigest()[:16]

    @property
    def nbytes(self) -> int:
        return sum(e.size for e in self.entries if e.kind == "file")


@dataclass
class FileSet:
    """Everything a launch sends, checked and listed before anything is created."""

    uploads: list[Upload] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(u.nbytes for u in self.uploads)

    @property
    def nfiles(self) -> int:
        return sum(1 for u in self.uploads for e in u.entries if e.kind != "dir")


@dataclass
class SyncReport:
    """What a send did: the archive bytes on the wire and the entries in it."""

    sent_bytes: int = 0  # compressed tar bytes written to the exec's stdin
    sent_files: int = 0  # files and symlinks in the archive
    skipped_files: int = 0  # unchanged since the pod's manifest
    seconds: float = 0.0


def max_upload_bytes() -> int:
    raw = os.environ.get("SKYMAGIC_MAX_UPLOAD_GB", "")
    try:
        gb = float(raw) if raw else DEFAULT_MAX_GB
    except ValueError:
        raise ConfigError(f"SKYMAGIC_MAX_UPLOAD_GB={raw!r} is not a number of GB") from None
    return int(gb * 2**30)


def collect_files(task: Task, limit_bytes: int | None = None) -> FileSet:
    """List and check the task's workdir and file_mounts; ConfigError names the first problem."""
    limit = max_upload_bytes() if limit_bytes is None else limit_bytes
    out = FileSet()
    sources: list[tuple[str, str, str]] = []
    if task.workdir:
        sources.append((task.workdir, f"~/{WORKDIR}", "workdir"))
    for remote, local in task.file_mounts:
        sources.append((local, remote, f"file_mounts.{remote}"))
    for local, remote, what in sources:
        path = os.path.abspath(os.path.expanduser(local))
        if not os.path.exists(path):
            raise ConfigError(f"{what}: {local!r} does not exist; fix the path")
        if os.path.isdir(path):
            upload = _scan_folder(path, remote, what)
        else:
            _check_readable(path, local, what)
            st = os.stat(path)
            name = os.path.basename(remote.rstrip("/")) or os.path.basename(path)
            entry = Entry(name, path, "file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
            upload = Upload(local, remote, [entry], single_file=True)
        out.uploads.append(upload)
        if out.nbytes > limit:
            raise ConfigError(
                f"{what}: {local!r} holds {_size(upload.nbytes)}, over the "
                f"{_size(limit)} limit; leave big folders out with a .skyignore, or raise "
                "SKYMAGIC_MAX_UPLOAD_GB"
            )
    return out


def _check_readable(path: str, shown: str, what: str) -> None:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ConfigError(
            f"{what}: cannot read {shown!r} ({exc.strerror}); fix its permissions or leave it "
            "out with a .skyignore"
        ) from None


def _scan_folder(root: str, remote: str, what: str) -> Upload:
    excluded, rule = excluded_paths(root)
    entries: list[Entry] = []
    for here, dirs, files in os.walk(root, followlinks=False, onerror=None):
        rel_here = os.path.relpath(here, root)
        rel_here = "" if rel_here == "." else rel_here
        keep_dirs = []
        for name in sorted(dirs):
            rel = os.path.join(rel_here, name)
            if rel in excluded:
                continue
            full = os.path.join(here, name)
            if os.path.islink(full):
                entries.append(_link(full, rel))
                continue
            if not os.access(full, os.R_OK | os.X_OK):
                raise ConfigError(
                    f"{what}: cannot read folder {rel!r} (permission denied); fix its "
                    "permissions or leave it out with a .skyignore"
                )
            st = os.lstat(full)
            entries.append(Entry(rel, full, "dir", 0, 0, stat.S_IMODE(st.st_mode)))
            keep_dirs.append(name)
        dirs[:] = keep_dirs
        for name in sorted(files):
            rel = os.path.join(rel_here, name)
            if rel in excluded:
                continue
            full = os.path.join(here, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entries.append(_link(full, rel))
            elif stat.S_ISREG(st.st_mode):
                if not os.access(full, os.R_OK):
                    raise ConfigError(
                        f"{what}: cannot read {rel!r} (permission denied); fix its permissions "
                        "or leave it out with a .skyignore"
                    )
                entries.append(
                    Entry(rel, full, "file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
                )
            # sockets, fifos, devices: never sent (SkyPilot skips sockets too)
    return Upload(root, remote, entries, rule=rule)


def _link(full: str, rel: str) -> Entry:
    st = os.lstat(full)
    return Entry(rel, full, "link", 0, st.st_mtime_ns, 0o777, os.readlink(full))


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _remote_dir(upload: Upload) -> str:
    """A shell word for the folder `tar` extracts into ($HOME-relative when ~/...)."""
    remote = upload.remote.rstrip("/") or "/"
    if upload.single_file:
        remote = os.path.dirname(remote) or "~"
    if remote == "~":
        return '"$HOME"'
    if remote.startswith("~/"):
        return '"$HOME"/' + shlex.quote(remote[2:])
    return shlex.quote(remote)


def _probe_command(uploads: list[Upload]) -> list[str]:
    script = [
        f"command -v tar >/dev/null 2>&1 || exit {_NO_TAR}",
        f"command -v gzip >/dev/null 2>&1 || exit {_NO_GZIP}",
    ]
    for u in uploads:
        path = f'"$HOME"/{SKY_DIR}/manifests/{u.manifest_key}.json'
        script.append(f"printf '%s\\n' {u.manifest_key}; cat {path} 2>/dev/null; echo")
    return ["/bin/sh", "-c", "\n".join(script)]


def _previous_manifests(
    client: ContextClient, ns: str, pod: str, uploads: list[Upload], image: str
) -> dict[str, dict[str, list[object]]]:
    out = bytearray()
    outcome = exec_stream(client, ns, pod, _probe_command(uploads), on_stdout=out.extend)
    if outcome.exit_code == _NO_TAR:
        raise LaunchError(
            f"the pod's image ({image}) has no `tar`, which sending files needs; use an image "
            "with tar (e.g. python:3.11-slim) or drop workdir/file_mounts",
            context=client.name,
        )
    if outcome.exit_code == _NO_GZIP:
        raise LaunchError(
            f"the pod's image ({image}) has no `gzip`, which sending files needs; use an image "
            "with gzip or drop workdir/file_mounts",
            context=client.name,
        )
    if outcome.exit_code != 0:
        raise LaunchError(
            f"could not prepare pod {ns}/{pod} for files: {outcome.message or outcome.exit_code}",
            context=client.name,
        )
    manifests: dict[str, dict[str, list[object]]] = {}
    lines = bytes(out).decode("utf-8", "replace").splitlines()
    for key, body in zip(lines[0::2], lines[1::2], strict=False):
        try:
            manifests[key] = json.loads(body) if body.strip() else {}
        except ValueError:
            manifests[key] = {}
    return manifests


class _Sink(io.RawIOBase):
    """Where tarfile writes: gzip'd into chunks the stdin generator hands out.

    Level 1 (not tarfile's "w|gz", whose level is fixed at 9 before Python 3.12 and costs
    ~5x the CPU). A file that does not compress (sampled: weights, archives, images) is
    stored at level 0 in a gzip member of its own: concatenated members are one valid gzip
    stream (RFC 1952, what `gzip -d` and tar's -z read), and deflating random bytes at level
    1 costs ~10x the time of storing them for nothing.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.total = 0
        self.level = 1
        self._gzip = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip header and trailer

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._add(self._gzip.compress(bytes(b)))
        return len(b)

    def use_level(self, level: int) -> None:
        """Go on at `level`, closing the current gzip member when it changes."""
        if level != self.level:
            self._add(self._gzip.flush())
            self._gzip = zlib.compressobj(level, zlib.DEFLATED, 31)
            self.level = level

    def finish(self) -> None:
        self._add(self._gzip.flush())

    def _add(self, data: bytes) -> None:
        if data:
            self.chunks.append(data)
            self.total += len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.total = 0
        return data


_SAMPLE = 64 * 1024


def _compresses(path: str, size: int) -> bool:
    """Whether deflate pays for this file: small ones always, big ones by a 64 KB sample."""
    if size < 2 * _SAMPLE:
        return True
    try:
        with open(path, "rb") as fh:
            sample = fh.read(_SAMPLE)
    except OSError:
        return True
    return len(zlib.compress(sample, 1)) < 0.9 * len(sample)


def _tar_chunks(
    entries: list[Entry],
    manifest: dict[str, list[object]],
    report: SyncReport,
    tick: Callable[[], None],
) -> Iterator[bytes]:
    """The gzip'd tar of `entries`, then the manifest as `.skymagic-manifest`, in chunks."""
    sink = _Sink()
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.rel)
            info.mode = e.mode
            info.mtime = e.mtime_ns // 1_000_000_000
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target
                tar.addfile(info)
                report.sent_files += 1
            else:
                sink.use_level(1 if _compresses(e.path, e.size) else 0)
                with open(e.path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    if size != e.size:
                        raise LaunchError(
                            f"{e.rel!r} changed size while it was being sent; launch again"
                        )
                    info.size = size
                    tar.addfile(info, fh)
                report.sent_files += 1
            if sink.total >= 1 << 20:
                data = sink.take()
                report.sent_bytes += len(data)
                tick()
                yield data
        body = json.dumps(manifest, separators=(",", ":")).encode()
        info = tarfile.TarInfo(".skymagic-manifest")
        info.size = len(body)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(body))
    sink.finish()
    data = sink.take()
    report.sent_bytes += len(data)
    tick()
    yield data


def send_files(
    client: ContextClient,
    ns: str,
    pod: str,
    files: FileSet,
    *,
    image: str = "",
    progress: Progress | None = None,
) -> SyncReport:
    """Send what changed of `files` into the pod, then mark it synced (the entrypoint waits)."""
    report = SyncReport()
    started = time.monotonic()
    previous = _previous_manifests(client, ns, pod, files.uploads, image)
    todo: list[tuple[Upload, list[Entry], dict[str, list[object]]]] = []
    total_bytes = 0
    for u in files.uploads:
        old = previous.get(u.manifest_key, {})
        manifest = {e.rel: e.key() for e in u.entries}
        changed = [e for e in u.entries if old.get(e.rel) != e.key()]
        report.skipped_files += sum(1 for e in u.entries if e.kind != "dir") - sum(
            1 for e in changed if e.kind != "dir"
        )
        total_bytes += sum(e.size for e in changed if e.kind == "file")
        todo.append((u, changed, manifest))
    total_files = sum(1 for _u, c, _m in todo for e in c if e.kind != "dir")
    last_tick = [0.0]

    def tick() -> None:
        now = time.monotonic()
        if progress is None or now - started < 1.0 or now - last_tick[0] < 0.5:
            return
        last_tick[0] = now
        progress(
            f"sending files: {report.sent_files:,} of {total_files:,} files, "
            f"{_size(report.sent_bytes)} sent ({_size(total_bytes)} before compression)",
            now - started,
        )

    for i, (u, changed, manifest) in enumerate(todo):
        last = i == len(todo) - 1
        dest = _remote_dir(u)
        keep = f'"$HOME"/{SKY_DIR}/manifests/{u.manifest_key}.json'
        script = (
            f'mkdir -p {dest} "$HOME"/{SKY_DIR}/manifests && cd {dest} && tar xzpf - && '
            f"mv .skymagic-manifest {keep}"
        )
        if last:
            script += f' && touch "$HOME"/{SKY_DIR}/synced'
        err = bytearray()
        outcome = exec_stream(
            client,
            ns,
            pod,
            ["/bin/sh", "-c", script],
            stdin=_tar_chunks(changed, manifest, report, tick),
            on_stderr=err.extend,
        )
        if outcome.exit_code != 0:
            why = bytes(err).decode("utf-8", "replace").strip().splitlines()
            raise LaunchError(
                f"sending {u.source!r} to {u.remote} in pod {ns}/{pod} failed: "
                f"{(why[-1] if why else outcome.message) or f'exit code {outcome.exit_code}'}",
                context=client.name,
            )
    report.seconds = time.monotonic() - started
    if progress is not None and report.seconds >= 1.0:
        progress(
            f"sent {report.sent_files:,} files, {_size(report.sent_bytes)} in "
            f"{report.seconds:.1f} s",
            report.seconds,
        )
    return report
