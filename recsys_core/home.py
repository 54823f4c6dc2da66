"""Where data, runs and caches live: one home folder, ``$RECSYS_HOME`` (default ``./artifacts``)."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The root folder for datasets, runs and caches; created on first use."""
    home = Path(os.environ.get("RECSYS_HOME", "artifacts")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def datasets_dir() -> Path:
    path = data_home() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = data_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def uploads_dir() -> Path:
    path = data_home() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_home() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path
