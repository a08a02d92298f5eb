"""Docs cite what a reader of the repository can open.

`facts.md` was a research note kept outside the repository; code and docs that cite it send a
reader nowhere. Say the fact, or cite its public source (a Kubernetes docs URL, a SkyPilot
source path or issue). Files that still cite it are listed in STILL_CITED (issue 11): each must
still cite it, so the list only shrinks as they are fixed.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STALE = "facts.md"
STILL_CITED: set[str] = set()


def _sources() -> list[Path]:
    files = [*ROOT.glob("*.md")]
    for folder in ("skymagic", "bench", "tests", "notebooks", "scripts", "widgets"):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.suffix in (".py", ".md", ".yaml", ".ipynb") and p.is_file()
        ]
    return sorted(files)


def test_nothing_cites_a_note_outside_the_repository() -> None:
    citing = {
        str(p.relative_to(ROOT))
        for p in _sources()
        if p.name != Path(__file__).name and STALE in p.read_text(encoding="utf-8")
    }
    assert not citing - STILL_CITED, f"say the fact or a public source instead of {STALE}"
    assert not STILL_CITED - citing, f"fixed, remove from STILL_CITED: {STILL_CITED - citing}"
