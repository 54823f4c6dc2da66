"""The UMAP map of a run's embeddings: computed once, cached beside the run as plain arrays."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from recsys_core import embedding_map as em
from recsys_core.errors import ModelError


class _Model:
    name = "stub"

    def __init__(self, items: np.ndarray | None, users: np.ndarray | None = None):
        self._items, self._users = items, users

    def item_embeddings(self):
        return self._items

    def user_embeddings(self):
        return self._users


def _clusters(n_per: int = 40, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 5
    labels = np.repeat(np.arange(3), n_per)
    return (centres[labels] + rng.normal(size=(len(labels), dim))).astype(np.float32), labels


def test_map_is_computed_once_and_cached_beside_the_run(tmp_path, monkeypatch):
    vectors, labels = _clusters()
    run = SimpleNamespace(model=_Model(vectors), path=tmp_path)
    stages = []
    coords = em.embedding_map(run, "items", progress=lambda stage, fraction: stages.append((stage, fraction)))
    assert [s for s, _ in stages] == ["importing umap", "fitting", "done"]
    assert [f for _, f in stages] == sorted(f for _, f in stages)
    assert coords.shape == (len(vectors), 2) and np.isfinite(coords).all()

    # Neighbours on the map belong to the same cluster: the map keeps the geometry.
    distances = np.linalg.norm(coords[:, None, :] - coords[None, :, :], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert (labels[distances.argmin(axis=1)] == labels).mean() > 0.95

    path = tmp_path / "map-items.npz"
    with np.load(path, allow_pickle=False) as stored:
        assert set(stored.files) == {"coords", "settings"}
        np.testing.assert_array_equal(stored["coords"], coords)
    assert not list(tmp_path.glob(".map-*"))  # no temporary file left behind

    def no_fit(*args, **kwargs):
        raise AssertionError("the cached map must be reused")

    monkeypatch.setattr(em, "fit_umap", no_fit)
    stages.clear()
    again = em.embedding_map(run, "items", progress=lambda stage, fraction: stages.append(stage))
    np.testing.assert_array_equal(again, coords)
    assert stages == ["done"]


def test_the_same_vectors_give_the_same_map(tmp_path):
    vectors, _ = _clusters(n_per=15, seed=1)
    first = em.fit_umap(vectors)
    second = em.fit_umap(vectors)
    np.testing.assert_allclose(first, second, atol=1e-5)


def test_a_stale_or_foreign_cache_is_recomputed(tmp_path, monkeypatch):
    calls = []

    def fake_fit(vectors, progress=None):
        calls.append(len(vectors))
        return np.zeros((len(vectors), 2), dtype=np.float32)

    monkeypatch.setattr(em, "fit_umap", fake_fit)
    run = SimpleNamespace(model=_Model(np.ones((10, 4), dtype=np.float32)), path=tmp_path)
    em.embedding_map(run, "items")
    assert calls == [10]
    run.model = _Model(np.ones((12, 4), dtype=np.float32))  # another size: the stored map does not fit
    em.embedding_map(run, "items")
    assert calls == [10, 12]
    (tmp_path / "map-items.npz").write_bytes(b"not a zip")
    em.embedding_map(run, "items")
    assert calls == [10, 12, 12]
    em.embedding_map(run, "items", force=True)
    assert calls == [10, 12, 12, 12]
    assert em.load_map(tmp_path, "items", 12) is not None


def test_a_read_only_run_folder_still_gets_its_map(tmp_path, monkeypatch):
    monkeypatch.setattr(em, "fit_umap", lambda v, progress=None: np.zeros((len(v), 2), dtype=np.float32))

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(em, "_save_map", refuse)
    run = SimpleNamespace(model=_Model(np.ones((5, 3))), path=tmp_path)
    assert em.embedding_map(run, "items").shape == (5, 2)
    assert not (tmp_path / "map-items.npz").exists()


def test_users_and_items_are_kept_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(em, "fit_umap", lambda v, progress=None: np.full((len(v), 2), float(len(v)), dtype=np.float32))
    run = SimpleNamespace(model=_Model(np.ones((6, 3)), np.ones((9, 3))), path=tmp_path)
    assert em.embedding_map(run, "users").shape == (9, 2)
    assert em.embedding_map(run, "items").shape == (6, 2)
    assert {p.name for p in tmp_path.iterdir()} == {"map-items.npz", "map-users.npz"}


def test_models_without_embeddings_say_so(tmp_path):
    run = SimpleNamespace(model=_Model(None, None), path=tmp_path)
    run.model.name = "pop"
    with pytest.raises(ModelError, match="pop model has no item embeddings"):
        em.embedding_map(run, "items")
    with pytest.raises(ModelError, match="no user embeddings"):
        em.embedding_map(run, "users")
    assert not em.has_embeddings(run.model, "items")
    with pytest.raises(ModelError, match="unknown map kind"):
        em.embedding_map(run, "genres")
    assert not list(tmp_path.iterdir())


def test_too_few_points():
    with pytest.raises(ModelError, match="at least 4 points"):
        em.fit_umap(np.ones((3, 2), dtype=np.float32))


def test_wide_vectors_are_reduced_keeping_directions():
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(100, 300)).astype(np.float32)
    reduced = em._reduce(wide)
    assert reduced.shape == (100, em.MAX_DIMENSIONS)
    narrow = em._reduce(wide[:, :10])
    np.testing.assert_allclose(np.linalg.norm(narrow, axis=1), 1.0, rtol=1e-5)


def test_umap_is_not_imported_at_module_import():
    import subprocess
    import sys

    code = "import sys, recsys_core.embedding_map, recsys_core.explain; print('umap' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_umap_is_fitted_on_a_documented_sample_and_the_rest_left_off():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 5)).astype(np.float32)
    coords = em.fit_umap(vectors, max_points=40)
    placed = np.isfinite(coords).all(axis=1)
    assert em.mapped_count(coords) == 40 == placed.sum()
    assert np.array_equal(np.flatnonzero(placed), em.umap_sample(60, 40)), "the seeded sample is the one placed"
    assert np.array_equal(em.umap_sample(30, 40), np.arange(30))
    assert em.MAX_UMAP_POINTS == 20_000


def test_pca_preview_places_every_point_by_direction():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(50, 8)).astype(np.float32)
    coords = em.pca_map(base)
    assert coords.shape == (50, 2) and np.isfinite(coords).all()
    # Scaling a vector does not move it (cosine geometry, as UMAP's metric).
    scaled = base * rng.uniform(0.5, 5.0, size=(50, 1)).astype(np.float32)
    assert np.allclose(np.abs(em.pca_map(scaled)), np.abs(coords), atol=1e-4)
    # The preview spreads the first principal direction the most.
    assert coords[:, 0].var() >= coords[:, 1].var()
    # With well separated directions it is the exact PCA of the unit vectors (up to sign).
    spread = rng.normal(size=(300, 40)) * np.r_[5.0, 3.0, np.ones(38)]
    unit = spread / np.linalg.norm(spread, axis=1, keepdims=True)
    left, singular, _ = np.linalg.svd(unit - unit.mean(axis=0), full_matrices=False)
    assert np.allclose(np.abs(em.pca_map(spread)), np.abs(left[:, :2] * singular[:2]), atol=2e-3)
