"""Where data, runs and caches live: one home folder, ``$RECSYS_HOME`` (default ``./artifacts``).

Work in progress is written under dot-names next to its final place (``runs/.<run_id>.<pid>.*``,
``uploads/.upload-*``, ``datasets/.<name>.tmp-*`` and ``*.part`` downloads) and renamed into place
when complete. A process killed mid-write leaves such an entry behind; the first use of a home in a
process removes the ones whose writer is gone (its process id no longer runs, or nothing in the entry
changed for :data:`STALE_SECONDS`), so a live writer in another process is never disturbed.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

STALE_SECONDS = 3600
# (glob under the home, where the writer's process id sits in the name); datasets/.downloads itself is
# a cache of finished downloads and stays.
_STAGING_PATTERNS = (
    ("runs/.*", re.compile(r"\.(\d+)\.[^.]+$")),  # .<run_id>.<pid>.<random>
    ("runs/*/.map-*", None),  # an embedding map being written inside a run
    ("uploads/.upload-*", re.compile(r"^\.upload-(\d+)-")),
    ("datasets/.*.tmp-*", re.compile(r"\.tmp-(\d+)-")),
    ("datasets/.*.pip-*", re.compile(r"\.pip-(\d+)-")),
    ("datasets/.*.old-*", re.compile(r"\.old-(\d+)-")),
    ("datasets/.downloads/.*.part", re.compile(r"\.(\d+)\.[^.]+\.part$")),
)
_cleaned: set[Path] = set()


def data_home() -> Path:
    """The root folder for datasets, runs and caches; created on first use."""
    home = Path(os.environ.get("RECSYS_HOME", "artifacts")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    if home not in _cleaned:
        _cleaned.add(home)
        clean_stale_staging(home)
    return home


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _last_change(path: Path) -> float:
    """The newest mtime of an entry and, for a folder, of what it directly holds."""
    try:
        times = [path.lstat().st_mtime]
        if path.is_dir() and not path.is_symlink():
            times += [child.lstat().st_mtime for child in path.iterdir()]
    except OSError:
        return time.time()
    return max(times)


def _writer_gone(path: Path, pid_pattern: re.Pattern | None, now: float) -> bool:
    match = pid_pattern.search(path.name) if pid_pattern is not None else None
    if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
        return True
    return now - _last_change(path) > STALE_SECONDS


def clean_stale_staging(home: Path) -> list[Path]:
    """Remove half-written entries left by killed processes under runs/, uploads/ and datasets/; returns them."""
    removed, now = [], time.time()
    for pattern, pid_pattern in _STAGING_PATTERNS:
        for entry in home.glob(pattern):
            if not _writer_gone(entry, pid_pattern, now):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _folder(name: str) -> Path:
    path = data_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    return _folder("datasets")


def runs_dir() -> Path:
    return _folder("runs")


def uploads_dir() -> Path:
    """Files users upload or pass to ``train --csv``; the app never stores uploads elsewhere."""
    return _folder("uploads")


def cache_dir() -> Path:
    return _folder("cache")
