"""Splits and negative sampling: leak-free by construction and by check."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_core.checks import LeakageError, check_negatives, check_split
from recsys_core.errors import DataError
from recsys_core.interactions import Interactions
from recsys_core.sampling import sample_eval_negatives, sample_train_negatives
from recsys_core.splits import heldout_users, item_tie_ranks, leave_one_out, make_split, ratio_split


def test_ml100k_has_the_documented_size(ml100k):
    assert (ml100k.n_users, ml100k.n_items, len(ml100k)) == (943, 1682, 100_000)


def test_leave_one_out_on_ml100k(ml100k):
    split = leave_one_out(ml100k)
    assert len(split.test) == 943 and len(split.validation) == 943
    assert len(split.train) + len(split.validation) + len(split.test) == 100_000
    # the test item is each user's latest interaction, the validation item the second latest
    frame = ml100k.to_frame(raw_ids=False)
    latest = frame.groupby("user")["timestamp"].max()
    assert (split.test.timestamp == latest.loc[split.test.user].to_numpy()).all()
    train_latest = pd.Series(split.train.timestamp).groupby(split.train.user).max()
    val = pd.Series(split.validation.timestamp, index=split.validation.user)
    assert (val.loc[train_latest.index] >= train_latest).all()
    assert (
        split.test.timestamp >= pd.Series(split.validation.timestamp, index=split.validation.user).loc[split.test.user].to_numpy()
    ).all()
    assert split.train.users is ml100k.users and split.test.items is ml100k.items


def test_leave_one_out_is_deterministic_and_seed_only_moves_ties(ml100k):
    a, b = leave_one_out(ml100k, seed=0), leave_one_out(ml100k, seed=0)
    assert np.array_equal(a.test.item, b.test.item)
    c = leave_one_out(ml100k, seed=1)
    # a different seed may only change which of several same-second items is the target
    by_user = lambda split: split.test.timestamp[np.argsort(split.test.user)]  # noqa: E731
    assert np.array_equal(by_user(a), by_user(c))


def _raw_pairs(part) -> set:
    return set(zip(part.users.ids[part.user].tolist(), [str(item) for item in part.items.ids[part.item].tolist()]))


def test_leave_one_out_ties_depend_on_the_seed_and_raw_ids_not_on_the_encoding(ml100k):
    """Re-encoding the item ids (as text they sort "10" < "2", so every index moves) gives the same split."""
    frame = ml100k.to_frame()
    as_text = Interactions.from_frame(frame.assign(item=frame["item"].astype(str)), timestamp_col="timestamp")
    assert not np.array_equal(as_text.items.ids.astype(str), ml100k.items.ids.astype(str))  # the indices did move
    for seed in (0, 7):
        ints, texts = leave_one_out(ml100k, seed=seed), leave_one_out(as_text, seed=seed)
        assert _raw_pairs(ints.test) == _raw_pairs(texts.test)
        assert _raw_pairs(ints.validation) == _raw_pairs(texts.validation)
    # the ranking is a permutation, fixed by the seed, and another seed gives another one
    ranks = item_tie_ranks(ml100k.items, 0)
    assert np.array_equal(np.sort(ranks), np.arange(ml100k.n_items)) and np.array_equal(ranks, item_tie_ranks(ml100k.items, 0))
    assert not np.array_equal(ranks, item_tie_ranks(ml100k.items, 1))


def _frame(rows):
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "timestamp"]), timestamp_col="timestamp")


def test_leave_one_out_small_users_stay_in_train_and_duplicates_collapse():
    data = _frame([(1, "a", 1), (1, "b", 2), (1, "c", 3), (1, "c", 0), (2, "a", 1), (2, "b", 2)])
    split = leave_one_out(data)
    assert split.test.users.ids[split.test.user].tolist() == [1]
    assert split.test.items.ids[split.test.item].tolist() == ["c"]
    assert len(split.train) == 3  # user 1's "a", user 2's two items; the older duplicate (1, c) is gone
    assert split.info["duplicates_dropped"] == 1
    assert split.info["users_train_only"] == 1


def test_leave_one_out_without_timestamps_is_seeded():
    frame = pd.DataFrame({"user": np.repeat(np.arange(20), 6), "item": np.tile(np.arange(6), 20)})
    data = Interactions.from_frame(frame)
    a, b = leave_one_out(data, seed=3), leave_one_out(data, seed=3)
    assert np.array_equal(a.test.item, b.test.item)
    assert "random order, seed 3" in a.info["order"]
    assert not np.array_equal(a.test.item, leave_one_out(data, seed=4).test.item)


def _reference_roles(data: Interactions, seed: int) -> np.ndarray:
    """The former implementation: a lexsort by (user, time, seeded item rank), positions from the end."""
    tie = item_tie_ranks(data.items, seed)[data.item]
    order = np.lexsort((tie, data.timestamp.astype(np.float64), data.user))
    counts = np.bincount(data.user, minlength=data.n_users)
    users_sorted = data.user[order]
    from_end = np.cumsum(counts)[users_sorted] - 1 - np.arange(len(data))
    role = np.where(counts[users_sorted] >= 3, np.select([from_end == 0, from_end == 1], [2, 1], 0), 0)
    roles = np.empty(len(data), dtype=np.int64)
    roles[order] = role
    return roles


def _roles(split, data: Interactions) -> np.ndarray:
    keys = data.user * data.n_items + data.item
    roles = np.zeros(len(data), dtype=np.int64)
    for value, part in ((1, split.validation), (2, split.test)):
        roles[np.isin(keys, part.user * data.n_items + part.item)] = value
    return roles


@pytest.mark.parametrize("stamp_scale", [1, 2**40, 0.25])  # whole seconds (packed key), huge range (ranked times), fractions
def test_leave_one_out_matches_the_lexsort_reference(ml100k, stamp_scale):
    data = (
        ml100k
        if stamp_scale == 1
        else Interactions(ml100k.user, ml100k.item, ml100k.users, ml100k.items, timestamp=ml100k.timestamp * stamp_scale)
    )
    for seed in (0, 5):
        np.testing.assert_array_equal(_roles(leave_one_out(data, seed=seed), data), _reference_roles(data, seed))


def test_leave_one_out_random_order_holds_out_a_seeded_random_item(ml100k):
    by_time = leave_one_out(ml100k, seed=0)
    random = leave_one_out(ml100k, seed=0, loo_order="random")
    again = make_split(ml100k, "loo-full", seed=0, loo_order="random")
    assert random.info["loo_order"] == "random" and not random.info["temporal"]
    assert by_time.info["loo_order"] == "time"
    assert np.array_equal(random.test.item, again.test.item) and len(random.test) == 943
    # mostly not the latest item: a random one of ~100 per user
    assert np.mean(random.test.item != by_time.test.item) > 0.9
    latest = pd.Series(ml100k.timestamp).groupby(ml100k.user).max().to_numpy()
    assert np.mean(random.test.timestamp < latest[random.test.user]) > 0.8
    with pytest.raises(ValueError, match="loo_order"):
        leave_one_out(ml100k, loo_order="newest")


def test_check_split_allows_a_pair_repeated_inside_one_part(ml100k):
    split = leave_one_out(ml100k)
    repeated = split.train.concat(split.train.subset(np.arange(10)))
    check_split(type(split)(kind=split.kind, train=repeated, validation=split.validation, test=split.test))


def test_heldout_users_partition(ml100k):
    split = heldout_users(ml100k, n_heldout_users=50, seed=0)
    val_users = np.unique(split.validation.user)
    test_users = np.unique(split.test.user)
    assert len(val_users) == 50 and len(test_users) == 50
    assert not set(val_users) & set(test_users)
    assert not set(np.unique(split.train.user)) & (set(val_users) | set(test_users))
    given = np.bincount(split.test_given.user, minlength=ml100k.n_users)[test_users]
    target = np.bincount(split.test.user, minlength=ml100k.n_users)[test_users]
    np.testing.assert_allclose(given / (given + target), 0.8, atol=0.05)
    total = sum(len(p) for p in (split.train, split.validation, split.test, split.validation_given, split.test_given))
    assert total == 100_000


def test_ratio_split(ml100k):
    split = ratio_split(ml100k, seed=0)
    assert len(split.test) == 10_000
    assert len(split.train) + len(split.validation) + len(split.test) == 100_000


def test_check_split_catches_a_leak(ml100k):
    split = leave_one_out(ml100k)
    leaky = type(split)(kind=split.kind, train=split.train.concat(split.test), validation=split.validation, test=split.test)
    with pytest.raises(LeakageError, match="both train and test"):
        check_split(leaky)


def _random_positives(n_users, n_items, density, seed):
    rng = np.random.default_rng(seed)
    matrix = sp.random(n_users, n_items, density=density, format="csr", random_state=rng, dtype=np.float32)
    matrix.data[:] = 1
    return matrix


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(300, 500), st.floats(0.0, 0.5), st.integers(0, 10_000))
def test_eval_negatives_are_distinct_unseen_and_exactly_n(n_users, n_items, density, seed):
    positives = _random_positives(n_users, n_items, density, seed)
    users = np.arange(n_users)
    negatives = sample_eval_negatives(positives, users, 99, np.random.default_rng(seed))
    assert negatives.shape == (n_users, 99)
    check_negatives(positives, users, negatives)  # raises on a positive or a duplicate
    again = sample_eval_negatives(positives, users, 99, np.random.default_rng(seed))
    assert np.array_equal(negatives, again)


def test_eval_negatives_for_a_user_who_knows_almost_everything():
    positives = sp.csr_matrix(np.ones((1, 200), dtype=np.float32))
    positives[0, :100] = 0
    positives.eliminate_zeros()
    negatives = sample_eval_negatives(positives, np.array([0]), 99, np.random.default_rng(0))
    assert set(negatives[0]) <= set(range(100)) and len(set(negatives[0])) == 99
    with pytest.raises(DataError, match="only 100 items are unseen"):
        sample_eval_negatives(positives, np.array([0]), 101, np.random.default_rng(0))


def test_check_negatives_catches_positives_and_duplicates():
    positives = sp.csr_matrix(np.array([[1, 0, 0, 0]], dtype=np.float32))
    with pytest.raises(LeakageError, match="positive"):
        check_negatives(positives, np.array([0]), np.array([[0, 1]]))
    with pytest.raises(LeakageError, match="duplicates"):
        check_negatives(positives, np.array([0]), np.array([[2, 2]]))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(5, 200), st.floats(0.0, 0.7), st.integers(1, 6), st.integers(0, 10_000))
def test_train_negatives_are_never_positives(n_users, n_items, density, k, seed):
    positives = _random_positives(n_users, n_items, density, seed)
    counts = np.diff(positives.indptr)
    users = np.repeat(np.arange(n_users), 3)[counts.repeat(3) < n_items]
    negatives = sample_train_negatives(positives, users, k, np.random.default_rng(seed))
    assert negatives.shape == (len(users), k)
    dense = positives.toarray()
    assert not dense[users[:, None], negatives].any()


def test_train_negatives_are_uniform_over_unseen_items():
    positives = sp.csr_matrix(np.array([[1, 1, 0, 0, 0]], dtype=np.float32))
    draws = sample_train_negatives(positives, np.zeros(30_000, dtype=np.int64), 1, np.random.default_rng(0)).ravel()
    counts = np.bincount(draws, minlength=5)
    assert counts[:2].sum() == 0
    np.testing.assert_allclose(counts[2:] / 30_000, 1 / 3, atol=0.015)


def test_packed_bitmap_and_key_search_agree(monkeypatch):
    from recsys_core.sampling import PositiveLookup

    positives = _random_positives(300, 517, 0.07, 4)
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 300, 50_000), rng.integers(0, 517, 50_000)
    with_bitmap = PositiveLookup(positives)
    assert with_bitmap.bitmap is not None
    monkeypatch.setattr(PositiveLookup, "max_bitmap_bytes", 0)
    searched = PositiveLookup(positives)
    assert searched.bitmap is None
    expected = np.asarray(positives[users, items]).ravel() > 0
    np.testing.assert_array_equal(with_bitmap.contains(users, items), expected)
    np.testing.assert_array_equal(searched.contains(users, items), expected)
