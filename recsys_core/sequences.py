"""Ordered histories for the models that read order (``uses_timestamps``: SVAE).

A CSR history row says *which* items a user has, not in which order: its indices are sorted by item
index. A sequence model fed that row reads a user's films sorted by id, not by time. So everything
that hands a model a history — the Evaluator, fold-in (``Recommender.fold_in``,
``score_histories``) and the Recommend page's own profile — can hand a :class:`Sequences` beside the
CSR rows: one item sequence per row, earliest first. Models with ``uses_timestamps`` read it; every
other model ignores it, so one call serves all models.

The order a sequence carries is named, because it does not always mean time:

* ``"time"``: the user's interactions ordered by timestamp (:meth:`Sequences.from_interactions`);
  same-time interactions keep the order of the rows in the data; a repeated (user, item) pair
  counts at its latest time.
* ``"as-added"``: a history with no times, e.g. a profile built by hand, read in the order the
  items were added (:meth:`Sequences.from_item_lists`; a repeated item counts at its last position).

Sequences are stored CSR-style (``items`` concatenated, ``indptr`` offsets) and every operation on
them is vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from .errors import DataError
from .interactions import Interactions

SequenceOrder = Literal["time", "as-added"]

ORDER_DESCRIPTIONS: dict[SequenceOrder, str] = {
    "time": "time order (earliest first; same-time items in data row order)",
    "as-added": "the order the items were added (no times exist for a profile built by hand)",
}


@dataclass(frozen=True, eq=False)
class Sequences:
    """One ordered item sequence per row: row ``b`` is ``items[indptr[b] : indptr[b + 1]]``, earliest first."""

    items: np.ndarray
    """Item indices (int64) of all rows, concatenated."""
    indptr: np.ndarray
    """Row offsets into ``items`` (int64, one more than the number of rows)."""
    order: SequenceOrder
    """What the order means (see the module docstring)."""

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or len(self.indptr) == 0 or self.indptr[0] != 0 or self.indptr[-1] != len(self.items):
            raise DataError("a Sequences indptr must start at 0 and end at the number of items")

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def row(self, index: int) -> np.ndarray:
        return self.items[self.indptr[index] : self.indptr[index + 1]]

    def rows(self, index: slice | np.ndarray) -> Sequences:
        """The sequences of the rows ``index`` (a slice or an array of row numbers), in that order."""
        selected = np.arange(self.n_rows)[index] if isinstance(index, slice) else np.asarray(index, dtype=np.int64)
        if isinstance(index, slice) and (index.step in (None, 1)) and len(selected):
            # A contiguous block: a view, no gather.
            lo, hi = self.indptr[selected[0]], self.indptr[selected[-1] + 1]
            return Sequences(self.items[lo:hi], self.indptr[selected[0] : selected[-1] + 2] - lo, self.order)
        starts = self.indptr[selected]
        lengths = self.indptr[selected + 1] - starts
        return Sequences(self.items[_gather_positions(starts, lengths)], _offsets(lengths), self.order)

    def to_csr(self, n_items: int) -> sp.csr_matrix:
        """The binary history rows (order lost), e.g. for the models that ignore order."""
        data = np.ones(len(self.items), dtype=np.float32)
        matrix = sp.csr_matrix((data, self.items, self.indptr), shape=(self.n_rows, n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1
        return matrix

    @classmethod
    def from_interactions(cls, data: Interactions, users: np.ndarray | None = None) -> Sequences:
        """Each user's distinct items in time order; row ``b`` is user ``users[b]`` (default: every user).

        Needs timestamps: without them the data holds no order to pass on."""
        if data.timestamp is None:
            raise DataError(f"{data.name} has no timestamps, so its histories have no time order")
        n = len(data)
        order = np.lexsort((np.arange(n), data.timestamp, data.user))
        user, item = data.user[order].astype(np.int64), data.item[order].astype(np.int64)
        keys = user * np.int64(data.n_items) + item
        # Keep the last occurrence of each (user, item): its first occurrence in reversed order.
        _, first_reversed = np.unique(keys[::-1], return_index=True)
        keep = np.sort(n - 1 - first_reversed)
        indptr = _offsets(np.bincount(user[keep], minlength=data.n_users))
        everyone = cls(item[keep], indptr, "time")
        return everyone if users is None else everyone.rows(np.asarray(users, dtype=np.int64))

    @classmethod
    def from_item_lists(cls, lists: Sequence[Sequence[int] | np.ndarray], order: SequenceOrder = "as-added") -> Sequences:
        """Sequences from item lists in the order given; a repeated item counts at its last position."""
        kept = []
        for values in lists:
            values = np.atleast_1d(np.asarray(values, dtype=np.int64))
            unique, first_reversed = np.unique(values[::-1], return_index=True)
            kept.append(unique[np.argsort(len(values) - 1 - first_reversed, kind="stable")])
        lengths = np.array([len(v) for v in kept], dtype=np.int64)
        items = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        return cls(items.astype(np.int64), _offsets(lengths), order)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _gather_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Positions ``starts[b] + 0 … starts[b] + lengths[b] - 1`` of every row, concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + within
