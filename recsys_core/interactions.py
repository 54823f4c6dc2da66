"""The one immutable container for an interaction data set.

Users and items are contiguous integer indices; :class:`Vocabulary` maps raw ids (ints or
strings such as a medical condition or a drug name) to those indices and back. All parts of a
split share the vocabularies of the full data set, so an index means the same thing everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError, UnknownIdError


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.flags.writeable:
        array = array.copy() if not array.flags.owndata else array
        array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Raw ids in index order; ``ids[i]`` is the raw id of index ``i``."""

    ids: np.ndarray
    kind: str = "id"  # what an id names, for messages: "user", "item", "condition", "drug"
    _lookup: dict = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        if ids.dtype.kind not in "iuO" and ids.dtype.kind != "U":
            raise DataError(f"{self.kind} ids must be integers or strings, got dtype {ids.dtype}")
        if ids.dtype.kind == "U":
            ids = ids.astype(object)
        object.__setattr__(self, "ids", _readonly(ids))
        lookup = {raw: i for i, raw in enumerate(ids.tolist())}
        if len(lookup) != len(ids):
            raise DataError(f"the {self.kind} vocabulary has duplicate ids")
        object.__setattr__(self, "_lookup", lookup)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, raw: Any) -> bool:
        return self._normalise(raw) in self._lookup

    def _normalise(self, raw: Any) -> Any:
        # Command lines and text boxes hand us strings; integer vocabularies accept "42".
        if self.ids.dtype.kind in "iu" and isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            return int(raw)
        if isinstance(raw, np.generic):
            return raw.item()
        return raw

    def index(self, raw: Any) -> int:
        """Index of one raw id; raises :class:`UnknownIdError` with close matches as a hint."""
        key = self._normalise(raw)
        try:
            return self._lookup[key]
        except (KeyError, TypeError):
            hint = None
            if isinstance(key, str):
                import difflib

                close = difflib.get_close_matches(key, [str(x) for x in self._lookup], n=3)
                if close:
                    hint = "Did you mean: " + ", ".join(repr(c) for c in close) + "?"
            raise UnknownIdError(f"unknown {self.kind} {raw!r}: it is not in this data set", hint) from None

    def indices(self, raws: Iterable[Any]) -> np.ndarray:
        return np.fromiter((self.index(r) for r in raws), dtype=np.int64)

    def raw(self, index: int | np.ndarray) -> Any:
        return self.ids[index]

    @classmethod
    def from_values(cls, values: np.ndarray | pd.Series, kind: str = "id") -> tuple[Vocabulary, np.ndarray]:
        """Build a sorted vocabulary from raw values and return it with the encoded indices."""
        values = pd.Series(values)
        if values.isna().any():
            first = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataError(
                f"{kind} id is missing in row {first + 1}",
                f"Every row needs a {kind} id; drop or fill the empty cells.",
            )
        codes, uniques = pd.factorize(values, sort=True)
        uniques = np.asarray(uniques)
        if uniques.dtype.kind == "f":  # integer ids read as float because of a blank cell elsewhere
            if np.all(np.mod(uniques, 1) == 0):
                uniques = uniques.astype(np.int64)
        if uniques.dtype.kind not in "iu":
            uniques = np.array([str(u) for u in uniques], dtype=object)
        return cls(uniques, kind=kind), codes.astype(np.int64)

    def to_json(self) -> dict:
        integer = self.ids.dtype.kind in "iu"
        return {"kind": self.kind, "dtype": "int" if integer else "str", "ids": [int(x) if integer else str(x) for x in self.ids]}

    @classmethod
    def from_json(cls, data: Mapping) -> Vocabulary:
        ids = np.asarray(data["ids"], dtype=np.int64) if data["dtype"] == "int" else np.asarray(data["ids"], dtype=object)
        return cls(ids, kind=data.get("kind", "id"))


_OPTIONAL = ("rating", "timestamp", "weight")


@dataclass(frozen=True, eq=False)
class Interactions:
    """Interactions of users with items, with shared vocabularies and optional metadata.

    ``item_info`` and ``user_info`` are DataFrames with one row per index, in index order
    (row ``i`` describes item ``i``). ``extra`` holds further per-interaction columns such as
    review text; it is carried through subsets so evidence can be shown beside a suggestion.
    """

    user: np.ndarray
    item: np.ndarray
    users: Vocabulary
    items: Vocabulary
    rating: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    weight: np.ndarray | None = None
    item_info: pd.DataFrame | None = None
    user_info: pd.DataFrame | None = None
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = "data"

    def __post_init__(self) -> None:
        user = np.asarray(self.user)
        item = np.asarray(self.item)
        if user.ndim != 1 or item.ndim != 1:
            raise DataError("user and item must be one-dimensional arrays")
        if len(user) != len(item):
            raise DataError(f"user has {len(user)} entries but item has {len(item)}: they must agree")
        for label, arr, vocab in (("user", user, self.users), ("item", item, self.items)):
            if arr.dtype.kind == "f":
                if np.isnan(arr).any():
                    raise DataError(f"{label} indices contain NaN", f"Drop rows without a {label} id.")
                arr = arr.astype(np.int64)
            elif arr.dtype.kind not in "iu":
                raise DataError(f"{label} indices must be integers, got {arr.dtype}")
            if len(arr) and (arr.min() < 0 or arr.max() >= len(vocab)):
                raise DataError(f"{label} index out of range: the vocabulary has {len(vocab)} {label}s")
            object.__setattr__(self, label, _readonly(arr.astype(np.int64, copy=False)))
        for label in _OPTIONAL:
            values = getattr(self, label)
            if values is None:
                continue
            values = np.asarray(values)
            if len(values) != len(user):
                raise DataError(f"{label} has {len(values)} entries but there are {len(user)} interactions")
            if values.dtype.kind == "f" and np.isnan(values).any():
                row = int(np.flatnonzero(np.isnan(values))[0])
                raise DataError(f"{label} is missing in interaction {row + 1}", f"Fill or drop rows with an empty {label}.")
            object.__setattr__(self, label, _readonly(values))
        extra = {}
        for key, values in dict(self.extra).items():
            values = np.asarray(values)
            if len(values) != len(user):
                raise DataError(f"extra column {key!r} has {len(values)} entries, expected {len(user)}")
            extra[key] = _readonly(values)
        object.__setattr__(self, "extra", extra)
        for label, info, size in (("item_info", self.item_info, len(self.items)), ("user_info", self.user_info, len(self.users))):
            if info is not None and len(info) != size:
                raise DataError(f"{label} has {len(info)} rows but there are {size} {label[:4]}s")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        weight_col: str | None = None,
        extra_cols: Iterable[str] = (),
        item_info: pd.DataFrame | None = None,
        user_info: pd.DataFrame | None = None,
        name: str = "data",
        user_kind: str = "user",
        item_kind: str = "item",
    ) -> Interactions:
        """Encode raw ids into vocabularies.

        ``item_info``/``user_info`` may be indexed by raw id; they are aligned to the
        vocabulary (ids without metadata get empty rows; metadata of unseen ids is dropped).
        """
        for col in (user_col, item_col, rating_col, timestamp_col, weight_col, *extra_cols):
            if col is not None and col not in frame.columns:
                raise DataError(
                    f"column {col!r} is not in the data",
                    "Available columns: " + ", ".join(map(str, frame.columns)),
                )
        users, user = Vocabulary.from_values(frame[user_col].to_numpy(), kind=user_kind)
        items, item = Vocabulary.from_values(frame[item_col].to_numpy(), kind=item_kind)

        def numeric(col: str | None) -> np.ndarray | None:
            if col is None:
                return None
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() & frame[col].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"column {col!r} has a non-numeric value {frame[col].iloc[row]!r} in row {row + 1}",
                    f"{col!r} must hold numbers; pick another column or clean the file.",
                )
            return values.to_numpy()

        return cls(
            user=user,
            item=item,
            users=users,
            items=items,
            rating=numeric(rating_col),
            timestamp=numeric(timestamp_col),
            weight=numeric(weight_col),
            item_info=_align(item_info, items),
            user_info=_align(user_info, users),
            extra={c: frame[c].to_numpy() for c in extra_cols},
            name=name,
        )

    # -- basic facts --------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return len(self.user)

    def __repr__(self) -> str:
        return f"Interactions({self.name!r}: {self.n_users} users, {self.n_items} items, {len(self)} interactions)"

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    def to_csr(self, values: str = "binary", dtype=np.float32) -> sp.csr_matrix:
        """Users × items sparse matrix; duplicates are summed (binary: clipped to 1)."""
        if values == "binary":
            return binary_csr(self.user, self.item, self.shape, dtype)
        if values in _OPTIONAL:
            data = getattr(self, values)
            if data is None:
                raise DataError(f"this data set has no {values} column")
            data = data.astype(dtype)
        else:
            raise ValueError(f"values must be 'binary', 'rating', 'timestamp' or 'weight', not {values!r}")
        matrix = sp.csr_matrix((data, (self.user, self.item)), shape=self.shape, dtype=dtype)
        matrix.sum_duplicates()
        matrix.sort_indices()
        return matrix

    def stats(self) -> dict:
        users = self.user_counts()
        items = self.item_counts()
        quantiles = (0.0, 0.25, 0.5, 0.75, 1.0)
        active_users = users[users > 0]
        active_items = items[items > 0]
        out = {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self),
            "density": len(self) / max(1, self.n_users * self.n_items),
            "interactions_per_user": {f"q{int(q * 100)}": float(np.quantile(active_users, q)) if len(active_users) else 0.0 for q in quantiles},
            "interactions_per_item": {f"q{int(q * 100)}": float(np.quantile(active_items, q)) if len(active_items) else 0.0 for q in quantiles},
            "has_rating": self.rating is not None,
            "has_timestamp": self.timestamp is not None,
        }
        out["interactions_per_user"]["mean"] = float(active_users.mean()) if len(active_users) else 0.0
        out["interactions_per_item"]["mean"] = float(active_items.mean()) if len(active_items) else 0.0
        return out

    # -- derived data sets --------------------------------------------------------------
    def subset(self, mask_or_index: np.ndarray, name: str | None = None) -> Interactions:
        """Rows selected by a boolean mask or an index array; vocabularies are kept."""
        sel = np.asarray(mask_or_index)

        def pick(a):
            return None if a is None else a[sel]

        return replace(
            self,
            user=self.user[sel],
            item=self.item[sel],
            rating=pick(self.rating),
            timestamp=pick(self.timestamp),
            weight=pick(self.weight),
            extra={k: v[sel] for k, v in self.extra.items()},
            name=name or self.name,
        )

    def concat(self, other: Interactions, name: str | None = None) -> Interactions:
        """Rows of both; both must share this object's vocabularies."""
        if other.users is not self.users or other.items is not self.items:
            if not (np.array_equal(other.users.ids, self.users.ids) and np.array_equal(other.items.ids, self.items.ids)):
                raise DataError("cannot concatenate interactions with different vocabularies")

        def cat(a, b):
            if a is None or b is None:
                return None
            return np.concatenate([a, b])

        return replace(
            self,
            user=np.concatenate([self.user, other.user]),
            item=np.concatenate([self.item, other.item]),
            rating=cat(self.rating, other.rating),
            timestamp=cat(self.timestamp, other.timestamp),
            weight=cat(self.weight, other.weight),
            extra={k: np.concatenate([v, other.extra[k]]) for k, v in self.extra.items() if k in other.extra},
            name=name or self.name,
        )

    def to_frame(self, raw_ids: bool = True) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "user": self.users.ids[self.user] if raw_ids else self.user,
                "item": self.items.ids[self.item] if raw_ids else self.item,
            }
        )
        for label in _OPTIONAL:
            values = getattr(self, label)
            if values is not None:
                frame[label] = values
        for key, values in self.extra.items():
            frame[key] = values
        return frame

    def content_hash(self) -> str:
        """sha256 over the encoded interactions and vocabularies: equal data, equal hash.

        Computed once per object (the arrays are read-only, so it cannot go stale)."""
        cached = self.__dict__.get("_content_hash")
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        # Rows by (user, item): a stable sort of one combined key is the same order as the two-key
        # lexsort, and 6× quicker at ML-20M's 20M rows.
        order = np.argsort(self.user.astype(np.int64) * self.n_items + self.item.astype(np.int64), kind="stable")
        digest.update(self.user[order].tobytes())
        digest.update(self.item[order].tobytes())
        for label in _OPTIONAL:
            values = getattr(self, label)
            if values is not None:
                digest.update(label.encode())
                digest.update(np.ascontiguousarray(values[order], dtype=np.float64).tobytes())
        for vocab in (self.users, self.items):
            digest.update("\x1f".join(map(str, vocab.ids.tolist())).encode())
        object.__setattr__(self, "_content_hash", digest.hexdigest()[:16])
        return self.__dict__["_content_hash"]

    def item_titles(self) -> np.ndarray:
        """A display name for every item: its title where known, else its raw id."""
        return display_titles(self.items, self.item_info)


def binary_csr(user: np.ndarray, item: np.ndarray, shape: tuple[int, int], dtype) -> sp.csr_matrix:
    """The 0/1 users × items matrix of (user, item) pairs, repeats once, indices sorted: what
    ``csr_matrix((ones, (user, item)))`` + ``sum_duplicates`` + ``sort_indices`` give, from one value
    sort of the pair keys (a split's parts and the evaluator build it a dozen times a run; at ML-20M
    the per-row index sort was 1.6 s of each).
    """
    n_users, n_items = shape
    keys = np.sort(user.astype(np.int64) * n_items + item.astype(np.int64))
    if len(keys) > 1:
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    rows, columns = np.divmod(keys, n_items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    index_dtype = np.int32 if max(n_users, n_items, len(keys)) < np.iinfo(np.int32).max else np.int64
    matrix = sp.csr_matrix((np.ones(len(keys), dtype=dtype), columns.astype(index_dtype), indptr.astype(index_dtype)), shape=shape)
    matrix.has_sorted_indices = True
    return matrix


def display_titles(items: Vocabulary, item_info: pd.DataFrame | None) -> np.ndarray:
    """Each item's title where the metadata has one, else its raw id (for data sets and saved runs)."""
    raw = items.ids.astype(str).astype(object)
    if item_info is None or "title" not in item_info.columns:
        return raw
    titles = item_info["title"].astype(object).to_numpy()
    return np.where(pd.isna(titles), raw, titles).astype(object)


def _align(info: pd.DataFrame | None, vocab: Vocabulary) -> pd.DataFrame | None:
    if info is None:
        return None
    info = info[~info.index.duplicated(keep="first")]
    if vocab.ids.dtype.kind in "iu" and info.index.dtype.kind not in "iu":
        try:
            info = info.set_axis(info.index.astype(np.int64))
        except (TypeError, ValueError):
            pass
    elif vocab.ids.dtype.kind not in "iu":
        info = info.set_axis(info.index.astype(str))
    return info.reindex(vocab.ids.tolist()).reset_index(drop=True)
