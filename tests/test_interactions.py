"""The Interactions container: encoding, validation, views and hashing."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import DataError, UnknownIdError
from recsys_core.interactions import Interactions, Vocabulary


def sample():
    frame = pd.DataFrame(
        {"user": ["ann", "bob", "ann", "cy"], "item": [10, 20, 20, 30], "rating": [4.0, 5.0, 3.0, 1.0], "ts": [3, 1, 2, 4]}
    )
    info = pd.DataFrame({"title": ["Ten", "Twenty", "Thirty", "Unused"]}, index=[10, 20, 30, 99])
    return Interactions.from_frame(frame, rating_col="rating", timestamp_col="ts", item_info=info, name="tiny")


def test_string_and_integer_ids_become_contiguous_indices():
    data = sample()
    assert data.users.ids.tolist() == ["ann", "bob", "cy"]
    assert data.items.ids.tolist() == [10, 20, 30]
    assert data.user.tolist() == [0, 1, 0, 2] and data.item.tolist() == [0, 1, 1, 2]
    assert data.users.index("bob") == 1 and data.items.index("20") == 1  # text input for integer ids
    assert data.item_info["title"].tolist() == ["Ten", "Twenty", "Thirty"]  # aligned, unused metadata dropped


def test_arrays_are_read_only():
    data = sample()
    with pytest.raises(ValueError):
        data.user[0] = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"


def test_csr_counts_and_stats():
    data = sample()
    csr = data.to_csr()
    assert csr.shape == (3, 3) and csr.nnz == 4 and csr.max() == 1
    assert data.to_csr("rating")[0, 1] == 3.0
    assert data.user_counts().tolist() == [2, 1, 1] and data.item_counts().tolist() == [1, 2, 1]
    stats = data.stats()
    assert stats["interactions"] == 4 and stats["density"] == pytest.approx(4 / 9)
    assert stats["interactions_per_user"]["q50"] == 1.0


def test_validation_messages():
    vocab = Vocabulary(np.array([1, 2]))
    with pytest.raises(DataError, match="must agree"):
        Interactions(np.array([0, 1]), np.array([0]), vocab, vocab)
    with pytest.raises(DataError, match="out of range"):
        Interactions(np.array([0, 2]), np.array([0, 1]), vocab, vocab)
    with pytest.raises(DataError, match="NaN"):
        Interactions(np.array([0.0, np.nan]), np.array([0, 1]), vocab, vocab)
    with pytest.raises(DataError, match="row 2"):
        Interactions.from_frame(pd.DataFrame({"user": [1, None], "item": [1, 2]}))
    with pytest.raises(DataError, match="non-numeric value 'five' in row 2"):
        Interactions.from_frame(pd.DataFrame({"user": [1, 2], "item": [1, 2], "r": [4, "five"]}), rating_col="r")
    with pytest.raises(DataError, match="Available columns"):
        Interactions.from_frame(pd.DataFrame({"u": [1]}), user_col="user")


def test_unknown_id_suggests_close_matches():
    data = sample()
    with pytest.raises(UnknownIdError) as info:
        data.users.index("anne")
    assert "ann" in str(info.value.hint)


def test_subset_concat_and_frame_roundtrip():
    data = sample()
    first, rest = data.subset(np.array([0, 1])), data.subset(np.array([2, 3]))
    assert first.users is data.users
    whole = first.concat(rest)
    assert whole.content_hash() == data.content_hash()
    frame = whole.to_frame()
    assert frame["user"].tolist() == ["ann", "bob", "ann", "cy"]


def test_content_hash_ignores_row_order_but_not_content():
    data = sample()
    shuffled = data.subset(np.array([3, 1, 0, 2]))
    assert shuffled.content_hash() == data.content_hash()
    changed = Interactions.from_frame(data.to_frame().assign(rating=[4.0, 5.0, 3.0, 2.0]), rating_col="rating", timestamp_col="timestamp")
    assert changed.content_hash() != data.content_hash()


def test_vocabulary_json_roundtrip():
    for ids in (np.array([3, 1, 2]), np.array(["a", "b"], dtype=object)):
        vocab = Vocabulary(ids, kind="drug")
        again = Vocabulary.from_json(vocab.to_json())
        assert again.ids.tolist() == vocab.ids.tolist() and again.kind == "drug"


def testbinary_csr_is_the_summed_clipped_sorted_matrix():
    """The binary matrix from one sort of the pair keys is exactly the COO-built one (repeats once,
    indices sorted, same dtypes), for int32 and int64 ids and for no rows at all."""
    import scipy.sparse as sp

    from recsys_core.interactions import binary_csr

    rng = np.random.default_rng(1)
    for dtype in (np.int32, np.int64):
        user, item = rng.integers(0, 50, 3000).astype(dtype), rng.integers(0, 70, 3000).astype(dtype)
        for u, i in ((user, item), (user[:0], item[:0])):
            expected = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(50, 70))
            expected.sum_duplicates()
            expected.data[:] = 1
            expected.sort_indices()
            got = binary_csr(u, i, (50, 70), np.float32)
            for part in ("data", "indices", "indptr"):
                assert np.array_equal(getattr(got, part), getattr(expected, part))
                assert getattr(got, part).dtype == getattr(expected, part).dtype
            assert got.has_sorted_indices and got.has_canonical_format
