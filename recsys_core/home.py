"""Where data, runs and caches live: one home folder, ``$RECSYS_HOME`` (default ``./artifacts``)."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The root folder for datasets, runs and caches; created on first use."""
    home = Path(os.environ.get("RECSYS_HOME", "artifacts")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


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
