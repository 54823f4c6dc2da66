"""Train / validation / test splits that share one vocabulary.

* ``leave-one-out`` (He et al. 2017): per user the latest interaction is the test target, the
  second latest the validation target, the rest train.
* ``heldout-users`` (Liang et al. 2018, strong generalisation): whole users set aside; for each
  held-out user a fraction of their items is given to the model and the rest must be predicted:
  with timestamps the chronologically first items are given and the last predicted.
* ``ratio``: a random split of the explicit ratings for rating prediction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError
from .interactions import Interactions, Vocabulary, binary_csr
from .protocols import PROTOCOLS

#: protocol name -> the split kind it needs (read from :data:`recsys_core.protocols.PROTOCOLS`).
PROTOCOL_SPLITS = {name: protocol.split_kind for name, protocol in PROTOCOLS.items()}


@dataclass(frozen=True, eq=False)
class Split:
    """The parts of one split. ``validation``/``test`` hold the targets to predict.

    For ``heldout-users`` the ``*_given`` parts hold the items of held-out users that the
    model may read (fold-in); for leave-one-out they are None and the history of a user is
    train (validation) or train + validation (test).
    """

    kind: str
    train: Interactions
    validation: Interactions
    test: Interactions
    validation_given: Interactions | None = None
    test_given: Interactions | None = None
    info: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.n_users

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def part(self, name: str) -> Interactions:
        if name not in ("validation", "test"):
            raise ValueError(f"part must be 'validation' or 'test', not {name!r}")
        return getattr(self, name)

    def history(self, part: str) -> Interactions:
        """What a model may know about the users of ``part`` when it predicts their targets."""
        if self.kind == "heldout-users":
            return self.validation_given if part == "validation" else self.test_given
        if part == "validation":
            return self.train
        return self.train.concat(self.validation, name=f"{self.train.name}+validation")

    def train_with_validation(self) -> Interactions:
        """Train plus the validation targets, for refitting a chosen configuration."""
        extra = self.validation if self.kind != "heldout-users" else self.validation.concat(self.validation_given)
        return self.train.concat(extra, name=f"{self.train.name}+validation")

    def all_positives(self) -> sp.csr_matrix:
        """Every (user, item) pair in any part: the test part's sampled negatives must avoid all of them."""
        return self._positives([self.train, self.validation, self.test, self.validation_given, self.test_given])

    def known_positives(self, part: str) -> sp.csr_matrix:
        """The pairs whose items ``part``'s sampled negatives must avoid: for the test part every pair of
        the split (:meth:`all_positives`); for validation only what a model may know at validation time
        (train, and the validation users' given items) plus the validation targets. The test part is not
        read for validation, so a search sees nothing of it, not even which items are not negatives."""
        if part == "test":
            return self.all_positives()
        if part != "validation":
            raise ValueError(f"part must be 'validation' or 'test', not {part!r}")
        return self._positives([self.train, self.validation, self.validation_given])

    def _positives(self, parts: list[Interactions | None]) -> sp.csr_matrix:
        users = np.concatenate([p.user for p in parts if p is not None])
        items = np.concatenate([p.item for p in parts if p is not None])
        return binary_csr(users, items, self.train.shape, np.float32)


def _pair_keys(data: Interactions) -> np.ndarray:
    return data.user * np.int64(data.n_items) + data.item


def _has_repeated_pairs(data: Interactions) -> bool:
    """One value sort (SIMD, no argsort) of the pair keys answers whether any (user, item) repeats."""
    keys = np.sort(_pair_keys(data))
    return bool(len(keys) > 1 and (keys[1:] == keys[:-1]).any())


def _deduplicate_latest(data: Interactions) -> tuple[Interactions, np.ndarray]:
    """Keep one row per (user, item): the latest, so a pair can never sit in two parts.

    Most files have no repeated pair (MovieLens has none, and user files are merged on reading),
    so a value sort checks that first and the argsort below only runs when there is work for it.
    """
    if not _has_repeated_pairs(data):
        return data, np.arange(len(data))
    stamp = data.timestamp if data.timestamp is not None else np.zeros(len(data))
    order = np.lexsort((np.arange(len(data)), stamp, data.item, data.user))
    u, i = data.user[order], data.item[order]
    last_of_pair = np.ones(len(order), dtype=bool)
    last_of_pair[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    keep = np.sort(order[last_of_pair])
    return data.subset(keep), keep


def item_tie_ranks(items: Vocabulary, seed: int) -> np.ndarray:
    """Each item's place in a seeded random order that depends only on its raw id and the seed.

    The order sorts items by a keyed 64-bit hash (pandas' SipHash, key derived from the seed) of the
    text of their raw ids, so the same file gives the same order however its ids were encoded into
    indices (sorted as numbers or as text, or renumbered by another reader), and "42" and 42 agree.
    """
    hash_key = hashlib.blake2b(str(int(seed)).encode(), digest_size=8).hexdigest()  # 16 characters, as SipHash needs
    hashes = pd.util.hash_array(items.ids.astype(str).astype(object), hash_key=hash_key, categorize=False)
    ranks = np.empty(len(hashes), dtype=np.int64)
    ranks[np.argsort(hashes, kind="stable")] = np.arange(len(hashes))
    return ranks


def _bits(values_max: int) -> int:
    return max(1, int(values_max).bit_length())


def _order_keys(user: np.ndarray, time_rank: np.ndarray, tie: np.ndarray, n_users: int, n_ties: int) -> np.ndarray | None:
    """One int64 per row ordering by (user, time, tie) when the three fit in 63 bits, else None."""
    tie_bits, time_bits = _bits(n_ties - 1), _bits(int(time_rank.max(initial=0)))
    if _bits(n_users - 1) + time_bits + tie_bits > 63:
        return None
    return (user << np.int64(time_bits + tie_bits)) | (time_rank << np.int64(tie_bits)) | tie


def _latest_two(dedup: Interactions, time_key: np.ndarray, tie: np.ndarray, n_ties: int, min_interactions: int) -> np.ndarray:
    """Role of every row: 2 the latest of its user (test), 1 the second latest (validation), 0 train.

    Rows are ordered by (user, time, tie); with distinct (user, item) pairs and ties that rank
    items, every row's key is distinct. The keys are packed into one int64 and sorted by value (a
    SIMD sort, several times faster than an argsort); the last two keys of each user's block are then
    matched back to the rows by one gather. Only when the key cannot be packed (a time range beyond
    2^63 / (users × items), even after ranking the times) does it fall back to a lexsort.
    """
    n = len(dedup)
    counts = np.bincount(dedup.user, minlength=dedup.n_users)
    eligible = counts >= min_interactions
    time_rank = time_key - (time_key.min() if n else 0)
    keys = _order_keys(dedup.user, time_rank, tie, dedup.n_users, n_ties)
    if keys is None:  # rank the times densely (a sort of the distinct times) and try again
        time_rank = np.unique(time_key, return_inverse=True)[1].astype(np.int64)
        keys = _order_keys(dedup.user, time_rank, tie, dedup.n_users, n_ties)
    role = np.zeros(n, dtype=np.int8)
    if keys is None:
        order = np.lexsort((tie, time_rank, dedup.user))
        users_sorted = dedup.user[order]
        from_end = np.cumsum(counts)[users_sorted] - 1 - np.arange(n)
        sorted_role = np.zeros(n, dtype=np.int8)
        sorted_role[eligible[users_sorted] & (from_end == 0)] = 2
        sorted_role[eligible[users_sorted] & (from_end == 1)] = 1
        role[order] = sorted_role
        return role
    ordered = np.sort(keys)
    ends = np.cumsum(counts)
    last = np.full(dedup.n_users, -1, dtype=np.int64)
    second = np.full(dedup.n_users, -1, dtype=np.int64)
    last[eligible] = ordered[ends[eligible] - 1]
    second[eligible] = ordered[ends[eligible] - 2]
    role[keys == last[dedup.user]] = 2
    role[keys == second[dedup.user]] = 1
    return role


LooOrder = Literal["time", "random"]


def leave_one_out(data: Interactions, seed: int = 0, min_interactions: int = 3, loo_order: LooOrder = "time") -> Split:
    """Latest item of each user → test, second latest → validation, rest → train.

    Ties in timestamps are broken by a seeded random ranking of the items that depends only on the
    seed and the raw item ids (:func:`item_tie_ranks`): independent of file row order and of how the
    ids were encoded into indices. Without timestamps, or with ``loo_order="random"``, the order
    within a user is a seeded random permutation of their rows (a random held-out item per user).
    Users with fewer than ``min_interactions`` distinct items stay in train only.
    """
    if min_interactions < 3:
        raise ValueError("leave-one-out needs at least 3 interactions per held-out user")
    if loo_order not in ("time", "random"):
        raise ValueError(f"loo_order must be 'time' or 'random', not {loo_order!r}")
    dedup, _ = _deduplicate_latest(data)
    n = len(dedup)
    temporal = dedup.timestamp is not None and loo_order == "time"
    if temporal:
        stamp = dedup.timestamp
        # Whole-second (or any integer) times order exactly as int64; fractional times are ranked.
        if stamp.dtype.kind in "iu" or (len(stamp) and np.array_equal(stamp, np.floor(stamp)) and np.abs(stamp).max() < 2**62):
            time_key = stamp.astype(np.int64)
        else:
            time_key = np.unique(stamp, return_inverse=True)[1].astype(np.int64)
        # Many users rate several items in the same second. Breaking those ties by item index
        # would bias the test item towards high ids (on MovieLens: obscure titles), so ties are
        # broken by a seeded random ranking of items, the same whatever order the file had and
        # whatever indices its ids were given (a seeded hash of each raw id).
        tie = item_tie_ranks(dedup.items, seed)[dedup.item]
        n_ties = dedup.n_items
    else:
        time_key = np.random.default_rng(seed).permutation(n).astype(np.int64)
        tie = np.zeros(n, dtype=np.int64)
        n_ties = 1
    roles = _latest_two(dedup, time_key, tie, n_ties, min_interactions)
    counts = np.bincount(dedup.user, minlength=dedup.n_users)
    if temporal:
        order_info = f"temporal (latest = test), same-time ties broken by a seeded hash of the raw item ids, seed {seed}"
    elif loo_order == "random":
        order_info = f"random order within each user (loo_order='random'), seed {seed}"
    else:
        order_info = f"random order, seed {seed} (no timestamps)"
    split = Split(
        kind="leave-one-out",
        train=dedup.subset(roles == 0, name=f"{data.name}:train"),
        validation=dedup.subset(roles == 1, name=f"{data.name}:validation"),
        test=dedup.subset(roles == 2, name=f"{data.name}:test"),
        info={
            "kind": "leave-one-out",
            "order": order_info,
            "loo_order": loo_order,
            "seed": seed,
            "temporal": temporal,
            "duplicates_dropped": int(len(data) - n),
            "users_train_only": int(((counts > 0) & (counts < min_interactions)).sum()),
        },
    )
    from .checks import check_split

    check_split(split, expected_total=n)
    return split


def heldout_users(
    data: Interactions,
    n_heldout_users: int | None = None,
    given_fraction: float = 0.8,
    seed: int = 0,
    min_interactions: int = 5,
) -> Split:
    """Liang et al. 2018: N validation and N test users; 80% of each one's items given, 20% predicted.

    With timestamps the given 80% are each user's earliest items and the predicted 20% the latest.

    ``n_heldout_users`` defaults to 10% of the eligible users each (Liang et al. hold out 10k of
    136k on ML-20M). Users with fewer than ``min_interactions`` items always stay in train.
    """
    if not 0 < given_fraction < 1:
        raise ValueError("given_fraction must lie strictly between 0 and 1")
    dedup, _ = _deduplicate_latest(data)
    rng = np.random.default_rng(seed)
    counts = dedup.user_counts()
    eligible = np.flatnonzero(counts >= min_interactions)
    if n_heldout_users is None:
        n_heldout_users = max(1, int(round(0.1 * len(eligible))))
    if 2 * n_heldout_users >= len(eligible):
        raise DataError(
            f"cannot hold out 2 × {n_heldout_users} users: only {len(eligible)} users have ≥ {min_interactions} interactions",
            "Lower n_heldout_users or use a larger data set.",
        )
    chosen = rng.permutation(eligible)[: 2 * n_heldout_users]
    group = np.zeros(dedup.n_users, dtype=np.int8)  # 0 train, 1 validation, 2 test
    group[chosen[:n_heldout_users]] = 1
    group[chosen[n_heldout_users:]] = 2
    row_group = group[dedup.user]

    # Within each held-out user the first ceil(fraction * count) rows are given - at least one
    # target. With timestamps, rows are ranked by time (same-time rows at random), so the model
    # predicts each user's chronologically last items from the earlier ones, as a sequence model
    # must; without, by a random key.
    key = rng.random(len(dedup))
    temporal = dedup.timestamp is not None
    order = np.lexsort((key, dedup.timestamp, dedup.user)) if temporal else np.lexsort((key, dedup.user))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(len(dedup), dtype=np.int64)
    position[order] = np.arange(len(dedup)) - starts[dedup.user[order]]
    n_given = np.minimum(np.ceil(given_fraction * counts).astype(np.int64), counts - 1)
    given = position < n_given[dedup.user]

    split = Split(
        kind="heldout-users",
        train=dedup.subset(row_group == 0, name=f"{data.name}:train"),
        validation=dedup.subset((row_group == 1) & ~given, name=f"{data.name}:validation"),
        test=dedup.subset((row_group == 2) & ~given, name=f"{data.name}:test"),
        validation_given=dedup.subset((row_group == 1) & given, name=f"{data.name}:validation-given"),
        test_given=dedup.subset((row_group == 2) & given, name=f"{data.name}:test-given"),
        info={
            "kind": "heldout-users",
            "n_heldout_users": int(n_heldout_users),
            "given_fraction": given_fraction,
            "given": (
                f"the chronological first {given_fraction:.0%} of each held-out user's items (same-time items at random); the last {1 - given_fraction:.0%} are predicted"
                if temporal
                else f"a random {given_fraction:.0%} of each held-out user's items (no timestamps); the rest are predicted"
            ),
            "temporal": temporal,
            "seed": seed,
            "duplicates_dropped": int(len(data) - len(dedup)),
        },
    )
    from .checks import check_split

    check_split(split, expected_total=len(dedup))
    return split


def ratio_split(data: Interactions, test_fraction: float = 0.1, validation_fraction: float = 0.05, seed: int = 0) -> Split:
    """Random split of explicit ratings: ``test_fraction`` test, ``validation_fraction`` (of all) validation."""
    if data.rating is None:
        raise DataError("the ratio split is for explicit ratings, and this data set has no rating column")
    dedup, _ = _deduplicate_latest(data)
    n = len(dedup)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    n_val = int(round(validation_fraction * n))
    roles = np.zeros(n, dtype=np.int8)
    roles[perm[:n_test]] = 2
    roles[perm[n_test : n_test + n_val]] = 1
    split = Split(
        kind="ratio",
        train=dedup.subset(roles == 0, name=f"{data.name}:train"),
        validation=dedup.subset(roles == 1, name=f"{data.name}:validation"),
        test=dedup.subset(roles == 2, name=f"{data.name}:test"),
        info={"kind": "ratio", "test_fraction": test_fraction, "validation_fraction": validation_fraction, "seed": seed},
    )
    from .checks import check_split

    check_split(split, expected_total=n)
    return split


def make_split(data: Interactions, protocol: str, seed: int = 0, loo_order: LooOrder = "time", **kwargs) -> Split:
    """The split an evaluation protocol needs (see ``PROTOCOL_SPLITS``).

    ``loo_order`` picks the held-out items of leave-one-out: each user's latest (``"time"``, the
    default) or a seeded random one (``"random"``); other splits ignore it."""
    kind = PROTOCOL_SPLITS.get(protocol, protocol)
    if kind == "leave-one-out":
        return leave_one_out(data, seed=seed, loo_order=loo_order, **kwargs)
    if kind == "heldout-users":
        return heldout_users(data, seed=seed, **kwargs)
    if kind == "ratio":
        return ratio_split(data, seed=seed, **kwargs)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOL_SPLITS)}")
