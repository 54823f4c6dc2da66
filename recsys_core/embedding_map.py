"""A 2-D UMAP map of a run's item or user embeddings, computed once per run and kept beside it.

``<run folder>/map-items.npz`` and ``map-users.npz`` hold plain arrays (``coords`` and the
settings they were made with), written with ``np.savez`` through a temporary file and read with
``allow_pickle=False``. umap-learn is imported inside :func:`embedding_map` only: its first import
compiles with numba (tens of seconds), which the app must never pay at start-up.

UMAP's cost grows with the number of points (the first item map of MovieLens 100K took 130 s on a busy
2-core machine, most of it numba compiling), so it is fitted on at most ``MAX_UMAP_POINTS`` points, a
seeded random sample; the points outside the sample get NaN coordinates (not drawn) and the page says
how many are shown. Until the UMAP map exists the page draws :func:`pca_map`, the two principal
directions of the same unit vectors: exact, instant, and coarser.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import limits
from .errors import ModelError
from .safe_files import open_regular_file

log = logging.getLogger(__name__)

KINDS = ("items", "users")
N_NEIGHBORS = 15
RANDOM_STATE = 42
MAX_DIMENSIONS = 64
"""Vectors with more dimensions (e.g. EASE's rows of B, one weight per item) are first reduced to
this many by a truncated SVD of the unit-length vectors, which keeps their cosine geometry."""

MAX_UMAP_POINTS = 20_000
"""UMAP is fitted on at most this many points (a seeded random sample); the rest are left off the map."""

Progress = Callable[[str, float], None]
"""``progress(stage, fraction)`` with stage "importing umap", "fitting" or "done"."""


def map_path(folder: str | Path, kind: str) -> Path:
    _check_kind(kind)
    return Path(folder) / f"map-{kind}.npz"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ModelError(f"unknown map kind {kind!r}", "Use 'items' or 'users'.")


def embeddings(model, kind: str) -> np.ndarray | None:
    """The model's item or user vectors (None when it has none)."""
    _check_kind(kind)
    vectors = model.item_embeddings() if kind == "items" else model.user_embeddings()
    return None if vectors is None else np.asarray(vectors, dtype=np.float32)


def has_embeddings(model, kind: str) -> bool:
    return embeddings(model, kind) is not None


def no_embeddings_message(model_name: str, kind: str) -> str:
    what = "item" if kind == "items" else "user"
    return (
        f"The {model_name} model has no {what} embeddings, so there is no {what} map to draw. "
        f"Choose a run of a model that learns a vector per {what} (an embedding model such as NeuMF or BPR"
        + (", an autoencoder's decoder, or EASE's item weights)." if kind == "items" else ").")
    )


def load_map(folder: str | Path, kind: str, n_points: int | None = None) -> np.ndarray | None:
    """The cached coordinates, or None when absent, unreadable, or made for another size or settings."""
    from .errors import RecsysError

    path = map_path(folder, kind)
    if not os.path.lexists(path):
        return None
    try:
        with open_regular_file(path, f"{path.name} of run {Path(folder).name}", limits.MAX_MAP_BYTES, root=Path(folder)) as handle:
            _check_npz_sizes(handle, path.name, limits.MAX_MAP_BYTES)
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as stored:
                coords = np.asarray(stored["coords"], dtype=np.float32)
                settings = np.asarray(stored["settings"])
    except RecsysError as refused:  # a link, a pipe, a device or a bomb: not read; the page draws (and saves) a fresh map
        log.warning("%s", refused.message)
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if coords.ndim != 2 or coords.shape[1] != 2 or (n_points is not None and coords.shape[0] != n_points):
        return None
    if settings.tolist() != [N_NEIGHBORS, RANDOM_STATE, MAX_DIMENSIONS]:
        return None
    return coords


def _check_npz_sizes(handle, name: str, max_bytes: int) -> None:
    """Refuse an .npz before loading it when its members (zip directory sizes, and the shapes and dtypes in
    each .npy header) would decode to more than ``max_bytes``: a 3.9 MB file can inflate to gigabytes."""
    from .errors import RunFileError

    with zipfile.ZipFile(handle) as archive:
        members = archive.infolist()
        if len(members) > 8:
            raise RunFileError(f"{name} holds {len(members)} arrays; a map holds 2")
        declared = sum(member.file_size for member in members)
        if declared > max_bytes:
            raise RunFileError(f"{name} inflates to {declared / 2**20:,.0f} MiB, more than the {max_bytes / 2**20:,.0f} MiB a map may have")
        for member in members:
            with archive.open(member) as stream:
                major, _ = np.lib.format.read_magic(stream)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(stream, max_header_size=10_000)
            size = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if dtype.hasobject or size > max_bytes or size > member.file_size:
                raise RunFileError(f"{name}: the array {member.filename} declares {size / 2**20:,.0f} MiB in {member.file_size:,} bytes")


def _save_map(folder: Path, kind: str, coords: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".map-{kind}.", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, coords=coords.astype(np.float32), settings=np.array([N_NEIGHBORS, RANDOM_STATE, MAX_DIMENSIONS]))
        os.replace(tmp, map_path(folder, kind))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reduce(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, 1e-12)
    if unit.shape[1] <= MAX_DIMENSIONS:
        return unit
    from sklearn.decomposition import TruncatedSVD

    n_components = min(MAX_DIMENSIONS, unit.shape[0] - 1)
    return TruncatedSVD(n_components=n_components, algorithm="randomized", random_state=RANDOM_STATE).fit_transform(unit)


def umap_sample(n: int, max_points: int = MAX_UMAP_POINTS) -> np.ndarray:
    """The indices UMAP is fitted on: all ``n`` up to ``max_points``, else a seeded sample (sorted)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(RANDOM_STATE).choice(n, size=max_points, replace=False))


def mapped_count(coords: np.ndarray) -> int:
    """How many points a map places (the rest, outside UMAP's sample, are NaN)."""
    return int(np.isfinite(coords).all(axis=1).sum())


def pca_map(vectors: np.ndarray) -> np.ndarray:
    """The instant preview: every point projected on the two principal directions of the unit vectors.

    Unit length first, as for UMAP's cosine metric, so both maps place points by direction; a
    randomized SVD (Halko et al. 2011, four power iterations) keeps this to a fraction of a second
    even for wide vectors (EASE's item rows). Plain numpy: the page calls this while UMAP may be
    importing scikit-learn in the background thread, and two threads importing it at once fail.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centred = unit - unit.mean(axis=0, keepdims=True)
    if min(centred.shape) < 2:
        return np.zeros((len(vectors), 2), dtype=np.float32)
    width = min(centred.shape[1], 12)  # 2 components + oversampling
    basis = centred @ np.random.default_rng(RANDOM_STATE).normal(size=(centred.shape[1], width))
    for _ in range(4):  # power iterations sharpen the leading directions
        basis, _r = np.linalg.qr(basis)
        basis = centred @ (centred.T @ basis)
    basis, _r = np.linalg.qr(basis)
    left, singular, _vt = np.linalg.svd(basis.T @ centred, full_matrices=False)
    return ((basis @ left[:, :2]) * singular[:2]).astype(np.float32)


def fit_umap(vectors: np.ndarray, progress: Progress | None = None, max_points: int = MAX_UMAP_POINTS) -> np.ndarray:
    """UMAP (cosine, ``N_NEIGHBORS`` neighbours, fixed seed) of ``vectors`` into 2-D.

    With more than ``max_points`` vectors it is fitted on ``umap_sample`` of them and the others get
    NaN coordinates (``mapped_count`` says how many are placed).
    """
    report = progress or (lambda stage, fraction: None)
    total = len(vectors)
    sample = umap_sample(total, max_points)
    vectors = np.asarray(vectors)[sample] if len(sample) < total else vectors
    n = len(vectors)
    if n < 4:
        raise ModelError(f"a map needs at least 4 points, and there are {n}", "Use a data set with more items or users.")
    report("importing umap", 0.0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import umap

    report("fitting", 0.3)
    points = _reduce(np.asarray(vectors, dtype=np.float32))
    # Zero vectors (items never seen in training) have no direction; a whisper of seeded noise
    # places them together instead of making the cosine undefined.
    zero = np.linalg.norm(points, axis=1) < 1e-9
    if zero.any():
        points = points.copy()
        points[zero] = np.random.default_rng(RANDOM_STATE).normal(scale=1e-6, size=(int(zero.sum()), points.shape[1]))
    reducer = umap.UMAP(
        n_neighbors=min(N_NEIGHBORS, n - 1),
        n_components=2,
        metric="cosine",
        random_state=RANDOM_STATE,
        n_jobs=1,
        init="spectral" if n > N_NEIGHBORS + 2 else "random",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coords = reducer.fit_transform(points)
    report("done", 1.0)
    if n == total:
        return np.asarray(coords, dtype=np.float32)
    placed = np.full((total, 2), np.nan, dtype=np.float32)
    placed[sample] = coords
    return placed


def embedding_map(run, kind: str = "items", progress: Progress | None = None, force: bool = False) -> np.ndarray:
    """2-D coordinates of every item (or user) of a saved run, one row per index.

    Read from ``<run folder>/map-<kind>.npz`` when there; otherwise computed with UMAP and saved
    there. Raises :class:`ModelError` (with the reason) when the model has no such embeddings.
    """
    vectors = embeddings(run.model, kind)
    if vectors is None:
        raise ModelError(no_embeddings_message(run.model.name, kind))
    if not force:
        cached = load_map(run.path, kind, n_points=len(vectors))
        if cached is not None:
            if progress is not None:
                progress("done", 1.0)
            return cached
    coords = fit_umap(vectors, progress)
    try:
        _save_map(Path(run.path), kind, coords)
    except OSError as error:  # a read-only run folder: show the map anyway, compute it again next time
        log.warning("could not save the %s map of %s: %s", kind, run.path, error)
    return coords
