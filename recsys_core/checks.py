"""Correctness checks enforced in code: a leak is an exception, never a silently better number."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .errors import RecsysError
from .sampling import PositiveLookup, _is_positive, positive_keys


class LeakageError(RecsysError):
    """A split or a set of sampled candidates would leak targets into training."""


def _pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    return users.astype(np.int64) * n_items + items.astype(np.int64)


def check_split(split, expected_total: int | None = None) -> None:
    """No target in train for its user, no pair in two parts, counts add up."""
    n_items = split.n_items
    parts = {
        "train": split.train,
        "validation": split.validation,
        "test": split.test,
        "validation_given": split.validation_given,
        "test_given": split.test_given,
    }
    present = {name: p for name, p in parts.items() if p is not None}
    # A pair in two parts is a repeated key in the concatenation of all parts: one value sort
    # (SIMD, no argsort) clears the common case exactly. Only when some key repeats (a leak, or a
    # pair repeated inside one part, which is allowed) are the parts compared pairwise to say which.
    everything = np.sort(np.concatenate([_pair_keys(p.user, p.item, n_items) for p in present.values()]))
    if len(everything) > 1 and (everything[1:] == everything[:-1]).any():
        keys = {name: np.unique(_pair_keys(p.user, p.item, n_items)) for name, p in present.items()}
        names = list(keys)
        for a_index, a in enumerate(names):
            for b in names[a_index + 1 :]:
                shared = np.intersect1d(keys[a], keys[b], assume_unique=True)
                if len(shared):
                    user, item = divmod(int(shared[0]), n_items)
                    raise LeakageError(f"{len(shared)} (user, item) pairs are in both {a} and {b}, e.g. user {user}, item {item}")
    if split.kind == "leave-one-out":
        for name in ("validation", "test"):
            per_user = np.bincount(parts[name].user, minlength=split.n_users)
            if per_user.max(initial=0) > 1:
                raise LeakageError(f"leave-one-out {name} has more than one target for a user")
    if split.kind == "heldout-users":
        in_train = np.zeros(split.n_users, dtype=bool)
        in_train[split.train.user] = True
        for name in ("validation", "test", "validation_given", "test_given"):
            if in_train[parts[name].user].any():
                raise LeakageError(f"held-out users of {name} also appear in train")
    if expected_total is not None:
        total = sum(len(p) for p in parts.values() if p is not None)
        if total != expected_total:
            raise LeakageError(f"the parts of the split hold {total} interactions but the input had {expected_total}")


def check_negatives(positives: sp.csr_matrix, users: np.ndarray, negatives: np.ndarray, keys: PositiveLookup | None = None) -> None:
    """Sampled evaluation negatives: none a positive of that user, none repeated in a row. ``keys``:
    the lookup of ``positives`` the sampler used (built here when not given)."""
    keys = positive_keys(positives) if keys is None else keys
    n_items = positives.shape[1]
    flat_users = np.repeat(np.asarray(users), negatives.shape[1])
    if _is_positive(keys, flat_users, negatives.ravel(), n_items).any():
        raise LeakageError("a sampled negative is a positive of its user")
    ordered = np.sort(negatives, axis=1)
    if (ordered[:, 1:] == ordered[:, :-1]).any():
        raise LeakageError("a user's sampled negatives contain duplicates")
