"""UMAP maps computed in the background, one thread per run and kind for the whole server process.

The Embeddings page must not block for the minutes the first UMAP map can take. When a run's map is
not on disk, the page calls :func:`start_map`; a daemon thread runs ``embedding_map.embedding_map``,
which writes the map beside the run (the cache the page reads first). Meanwhile the page draws the
PCA preview and polls :func:`job_for`. The registry is process-wide (a module dict under a lock), so
two sessions opening the same run share one computation, and a session that leaves does not stop it.
The thread never calls Streamlit: it only records its stage, its fraction and any error.

The first map took 130 s on a busy 2-core machine, so the page should rarely be the one to start it:
:func:`start_maps_on_save` starts a run's maps as soon as the app has saved the run (items
first, then users; one UMAP at a time), and the Embeddings page usually finds them on disk.
``RECSYS_MAPS_ON_SAVE=0`` turns this off (the test suite does, to keep UMAP off its two cores).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from recsys_core import embedding_map


@dataclass
class MapJob:
    """One background UMAP computation: where it is, and how it ended."""

    run_path: str
    kind: str
    stage: str = "queued"
    fraction: float = 0.0
    started: float = field(default_factory=time.monotonic)
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def update(self, stage: str, fraction: float) -> None:  # embedding_map's progress callback
        self.stage, self.fraction = stage, fraction

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


_JOBS: dict[tuple[str, str], MapJob] = {}
_LOCK = threading.Lock()
# One UMAP at a time per process: two at once on a 2-core machine only make both slower.
_COMPUTE = threading.Lock()


def job_for(run_path: str | Path, kind: str) -> MapJob | None:
    with _LOCK:
        return _JOBS.get((str(run_path), kind))


def start_map(run, kind: str) -> MapJob:
    """The background job computing ``run``'s ``kind`` map, started unless one is running.

    The page calls this only while the map is not on disk, so a finished job (failed, or its file
    since removed) is started again. ``run`` is a loaded run (its model gives the vectors).
    """
    key = (str(run.path), kind)
    with _LOCK:
        job = _JOBS.get(key)
        if job is not None and not job.done:
            return job
        job = MapJob(str(run.path), kind)
        _JOBS[key] = job

    def work() -> None:
        try:
            with _COMPUTE:
                job.started = time.monotonic()
                embedding_map.embedding_map(run, kind, progress=job.update)
        except BaseException as error:  # kept for the page, which shows it
            job.error = error
        finally:
            job.finished.set()

    threading.Thread(target=work, name=f"umap-{kind}-{Path(run.path).name}", daemon=True).start()
    return job


MAP_KINDS = ("items", "users")


def maps_on_save() -> bool:
    """Whether saving a run in the app starts its maps (``RECSYS_MAPS_ON_SAVE``, default on)."""
    return os.environ.get("RECSYS_MAPS_ON_SAVE", "1") != "0"


def start_maps_on_save(run) -> list[MapJob]:
    """Start the UMAP maps of a run just saved: each kind it has vectors for and no map on disk yet.

    ``run`` is the loaded run (``webapp.loading.load_run``). Returns the jobs started (none when the
    model has no vectors, the maps exist, or ``RECSYS_MAPS_ON_SAVE=0``)."""
    if not maps_on_save():
        return []
    jobs = []
    for kind in MAP_KINDS:  # items first: the Embeddings page opens on the item map
        if not embedding_map.has_embeddings(run.model, kind):
            continue
        n_points = run.model.n_items if kind == "items" else run.model.n_users
        if embedding_map.load_map(run.path, kind, n_points) is None:
            jobs.append(start_map(run, kind))
    return jobs
