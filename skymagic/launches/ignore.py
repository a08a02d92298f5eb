"""Which files of a folder a launch leaves behind: SkyPilot's .skyignore-then-.gitignore rule.

SkyPilot (sky/data/storage_utils.py, get_excluded_files) reads `.skyignore` when the folder
has one, and only then: each non-comment line is a glob, `/x` anchored at the folder, any
other `x` matching at every depth (`**/x`), expanded with Python's glob (so, as there, `*`
does not match names starting with a dot). Without `.skyignore` it asks git for the ignored
untracked paths (`git ls-files --others --ignore --exclude-standard --directory`, which reads
.gitignore, .git/info/exclude and the global excludes); not a git repository, or no git
installed: nothing is excluded. Submodules are not visited separately (SkyPilot does).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

__all__ = ["SKYIGNORE", "excluded_paths"]

SKYIGNORE = ".skyignore"


def excluded_paths(folder: str) -> tuple[set[str], str]:
    """(relative paths to leave out, which rule said so: '.skyignore', '.gitignore' or '')."""
    root = os.path.expanduser(folder)
    skyignore = os.path.join(root, SKYIGNORE)
    if os.path.exists(skyignore):
        return _from_skyignore(root, skyignore), SKYIGNORE
    found = _from_git(root)
    return found, ".gitignore" if found else ""


def _from_skyignore(root: str, path: str) -> set[str]:
    out: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            pattern = "." + line if line.startswith("/") else "**/" + line
            for match in glob.glob(os.path.join(root, pattern), recursive=True):
                rel = os.path.relpath(match, root)
                if rel != ".":
                    out.add(rel.rstrip(os.sep))
    return out


def _from_git(root: str) -> set[str]:
    if shutil.which("git") is None:
        return set()
    try:
        proc = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--others", "--ignored",
             "--exclude-standard", "--directory"],
            capture_output=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if proc.returncode != 0:
        return set()  # not a git repository
    items = [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    if "./" in items:
        return set()  # the whole folder is ignored: SkyPilot then ignores git's rules
    return {p.rstrip("/") for p in items}
