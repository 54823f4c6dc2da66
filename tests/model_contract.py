"""The checks every model must pass, shared as a mixin (after implicit's test suite).

A subclass names the model and, where the defaults would be slow on a tiny matrix, a few
settings. The data is a checkerboard: user u interacted with every item of its own parity
except item u, which is held out and must come back as the top recommendation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys_core.errors import ModelError
from recsys_core.fit_context import FitContext
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.runs import load_model, save_model
from recsys_core.trainer import fit_model

N = 24


def bare_context(seed: int = 0) -> FitContext:
    """A fit context outside the trainer (CPU, no validation, no progress), for tests that call a
    model's hooks one by one; its generator is ``default_rng(seed)``."""

    def no_nested_fit(*args, **kwargs):
        raise AssertionError("this test fits no sub-model")

    return FitContext(
        device=torch.device("cpu"), rng=np.random.default_rng(seed), seed=seed, mixed_precision=False,
        on_batch=lambda batch, batches: None, evaluator=None, fit_nested=no_nested_fit,
    )  # fmt: skip


def checkerboard(n: int = N, ratings: bool = False, seed: int = 0) -> Interactions:
    """Implicit: (u, i) with u ≡ i (mod 2), minus the diagonal. With ``ratings``: those pairs rated 5
    and about half the other-parity pairs rated 1, so a rating model learns the pattern too."""
    u, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    u, i = u.ravel(), i.ravel()
    same = (u + i) % 2 == 0
    keep = same & (u != i)
    rating = None
    if ratings:
        other = ~same & (((u * 7 + i * 3) % 4) < 2)
        keep = keep | other
        rating = np.where(same, 5.0, 1.0)[keep]
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user": u[keep], "item": i[keep], "timestamp": rng.permutation(int(keep.sum()))})
    if rating is not None:
        frame["rating"] = rating
    return Interactions.from_frame(
        frame, "user", "item", rating_col="rating" if ratings else None, timestamp_col="timestamp", name="checkerboard"
    )


class ModelContract:
    model_name: str = ""
    overrides: dict = {}
    ratings: bool = False
    #: share of users whose held-out diagonal item must come first (1.0 unless a model says why not)
    min_accuracy: float = 1.0

    @pytest.fixture(scope="class")
    def data(self):
        return checkerboard(ratings=self.ratings)

    @pytest.fixture(scope="class")
    def model(self, data):
        return fit_model(create_model(self.model_name, **self.overrides), data, device="cpu", seed=0)

    def test_heldout_diagonal_comes_first(self, model):
        items, scores = model.recommend(np.arange(N), k=1)
        accuracy = (items[:, 0] == np.arange(N)).mean()
        assert accuracy >= self.min_accuracy, f"held-out item first for only {accuracy:.0%} of users"

    def test_score_shapes_and_candidates_agree(self, model):
        users = np.array([0, 3, 5])
        full = model.score(users)
        assert full.shape == (3, N) and full.dtype == np.float32
        assert np.isfinite(full).all()
        same_items = model.score(users, np.array([1, 2, 7]))
        assert same_items.shape == (3, 3)
        np.testing.assert_allclose(same_items, full[:, [1, 2, 7]], rtol=1e-5, atol=1e-5)
        candidates = np.array([[0, 1, 2], [3, 4, 5], [9, 8, 7]])
        per_user = model.score(users, candidates)
        np.testing.assert_allclose(per_user, np.take_along_axis(full, candidates, axis=1), rtol=1e-5, atol=1e-5)

    def test_recommend_never_returns_seen(self, model, data):
        seen = data.to_csr()
        k = min(8, int(N - np.diff(seen.indptr).max()))  # the rated board leaves only 7 items unseen
        items, _ = model.recommend(np.arange(N), k=k)
        for user in range(N):
            assert not set(items[user]) & set(seen[user].indices)
        with_seen, _ = model.recommend(np.arange(N), k=N, exclude_seen=False)
        assert with_seen.shape == (N, N)

    def test_save_and_load_give_identical_scores(self, model, tmp_path):
        save_model(model, tmp_path)
        loaded = load_model(tmp_path)
        users = np.arange(N)
        np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(loaded.recommend(users, k=3)[0], model.recommend(users, k=3)[0])

    def test_fold_in_scores_a_new_user(self, model, data):
        # A rating model's new user says how much they liked each item: bare ids could not tell the
        # board's 1-rated items from its 5-rated ones, so the ratings go in as weights.
        seen = data.to_csr("rating" if self.ratings else "binary")
        hits = 0
        for user in range(0, N, 3):
            row = seen[user]
            weights = row.data if self.ratings else None
            scores = model.fold_in(row.indices, weights)
            assert scores.shape == (N,) and np.isfinite(scores).all()
            items, _ = model.recommend_for_history(row.indices, k=1, weights=weights)
            hits += int(items[0] % 2 == user % 2)
        assert hits / len(range(0, N, 3)) >= self.min_accuracy

    def test_unknown_user_is_a_clear_error(self, model):
        with pytest.raises(ModelError, match="out of range"):
            model.recommend(np.array([N + 3]))

    def test_embeddings_have_one_row_per_entity(self, model):
        users, items = model.user_embeddings(), model.item_embeddings()
        assert users is None or users.shape[0] == N
        assert items is None or items.shape[0] == N

    def test_similar_items_are_other_known_items_most_similar_first(self, model):
        # After implicit's similar_items checks. Documented (Recommender.similar_items): the k most similar
        # *other* items, so the item itself is excluded; every model answers (its item vectors, else co-occurrence).
        items, k = np.array([0, 5, 11, 23]), 6
        similar, scores = model.similar_items(items, k=k)
        assert similar.shape == scores.shape == (len(items), k)
        assert ((similar >= 0) & (similar < N)).all()
        assert not (similar == items[:, None]).any(), "an item was listed as similar to itself"
        assert all(len(set(row)) == k for row in similar.tolist())
        assert np.isfinite(scores).all() and (np.diff(scores, axis=1) <= 0).all(), "not sorted, most similar first"
        expected = np.take_along_axis(model.item_similarity(items).astype(np.float32), similar, axis=1)
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
        _, single = model.similar_items(5, k=k)  # one item as an int: the same list (up to ties) as in the batch
        np.testing.assert_allclose(single[0], scores[1], rtol=1e-5, atol=1e-6)
        with pytest.raises(ModelError, match="not fitted"):
            create_model(self.model_name, **self.overrides).similar_items(items)

    def test_a_user_with_an_empty_history_gets_a_ranked_list(self, model):
        # A new user who has interacted with nothing (fold-in of an empty history), and known users whose
        # history is given as empty: a full, valid, ranked list, no error.
        k = 5
        items, scores = model.recommend_for_history(np.array([], dtype=np.int64), k=k)
        assert items.shape == scores.shape == (k,) and len(set(items.tolist())) == k
        assert ((items >= 0) & (items < N)).all()
        assert np.isfinite(scores).all() and (np.diff(scores) <= 0).all()
        users = np.array([0, 1, 7])
        items, scores = model.recommend(users, k=k, history=sp.csr_matrix((N, N), dtype=np.float32))
        assert items.shape == scores.shape == (len(users), k)
        assert all(len(set(row)) == k for row in items.tolist()) and ((items >= 0) & (items < N)).all()
        assert np.isfinite(scores).all() and (np.diff(scores, axis=1) <= 0).all()

    def test_fit_is_deterministic_on_cpu(self, model, data):
        again = fit_model(create_model(self.model_name, **self.overrides), data, device="cpu", seed=0)
        np.testing.assert_allclose(again.score(np.arange(N)), model.score(np.arange(N)), rtol=1e-5, atol=1e-6)
