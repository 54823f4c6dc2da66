"""MovieLens-shaped synthetic implicit feedback with a known structure, for scale tests and demos.

The generative story, every step a vectorised numpy draw (no Python loop over rows):

* ``n_groups`` hidden taste groups. Every user and every item belongs to one group, drawn uniformly.
* Item popularity follows a power law (Zipf): the item of popularity rank ``r`` has weight
  ``r ** -popularity_exponent``; ranks are a random permutation of the items, so popularity is
  independent of the group and of the id.
* User activity is heavy-tailed too: each user's share of the interactions is a Pareto draw, every user
  gets at least ``min_per_user`` interactions (MovieLens keeps users with ≥ 20 ratings) and at most
  half the items.
* Each interaction of a user picks, with probability ``affinity``, an item of the user's own group and
  otherwise any item, in both cases in proportion to popularity (inverse-CDF sampling over the
  cumulative weights, with each group's items contiguous so one ``searchsorted`` serves all rows).
* Repeated (user, item) pairs are redrawn in bulk until every pair is distinct, as in MovieLens:
  twice by the same rule, then uniformly over all items (heavy users exhaust their group's popular
  items, and the heaviest have more interactions than their group has items). At ML-20M sizes about
  a tenth of the rows end up uniform, which blurs but does not hide the groups.
* Timestamps: each user is active over a random window inside ``[start, end]`` (unix seconds);
  their interactions fall uniformly inside it, in whole seconds (so same-second ties occur, as in
  MovieLens).

The hidden groups are returned (and written beside the interactions by :func:`write_synthetic`) so a
page or a test can ask whether a model's embeddings recovered them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and shape of a synthetic data set; the defaults are MovieLens-20M's sizes."""

    n_users: int = 138_493
    n_items: int = 26_744
    n_interactions: int = 20_000_263
    n_groups: int = 20
    """Hidden taste groups shared by users and items."""
    affinity: float = 0.8
    """Probability that an interaction goes to an item of the user's own group."""
    popularity_exponent: float = 1.0
    """Zipf exponent of item popularity (weight of rank r is r ** -exponent)."""
    activity_shape: float = 1.2
    """Pareto shape of user activity: smaller is more skewed."""
    min_per_user: int = 20
    seed: int = 0
    start: int = 946_684_800  # 2000-01-01
    end: int = 1_420_070_400  # 2015-01-01

    def __post_init__(self) -> None:
        if self.n_users < 1 or self.n_items < 2 or self.n_groups < 1:
            raise DataError("a synthetic data set needs at least 1 user, 2 items and 1 group")
        if self.n_groups > self.n_items:
            raise DataError(f"{self.n_groups} groups cannot be spread over {self.n_items} items", "Use fewer groups.")
        if not 0.0 <= self.affinity <= 1.0:
            raise DataError(f"affinity must lie in [0, 1], not {self.affinity}")
        capacity = self.n_users * (self.n_items // 2)
        if self.n_interactions > capacity:
            raise DataError(
                f"{self.n_interactions:,} distinct interactions do not fit {self.n_users:,} users who each see at most half of {self.n_items:,} items",
                "Use more users or items, or fewer interactions.",
            )
        if self.n_interactions < self.n_users:
            raise DataError(f"{self.n_interactions:,} interactions are fewer than {self.n_users:,} users", "Every user needs an interaction.")
        if self.end <= self.start:
            raise DataError("the end time must come after the start time")


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """Interactions (raw ids start at 1, as in MovieLens) and the hidden structure behind them."""

    frame: pd.DataFrame
    """Columns ``user``, ``item`` (int32 raw ids) and ``timestamp`` (int64 unix seconds), grouped by user."""
    user_groups: pd.DataFrame
    """``user``, ``group``: the hidden group of every user."""
    item_groups: pd.DataFrame
    """``item``, ``group``, ``popularity``: hidden group and popularity weight (sums to 1) of every item."""
    config: SyntheticConfig


def _activity(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: a Pareto share of the total, clipped to [min_per_user, n_items // 2]."""
    low = min(config.min_per_user, config.n_interactions // config.n_users)
    high = config.n_items // 2
    share = rng.pareto(config.activity_shape, config.n_users) + 1.0
    # Clipping moves the total, so find the scale whose clipped counts add up to it (bisection, vectorised
    # over users), then hand the last few interactions out one each to distinct random users with room.
    low_scale, high_scale = 0.0, config.n_interactions / share.min()
    for _ in range(100):
        scale = (low_scale + high_scale) / 2
        if np.clip(np.floor(share * scale), low, high).sum() > config.n_interactions:
            high_scale = scale
        else:
            low_scale = scale
    counts = np.clip(np.floor(share * low_scale), low, high).astype(np.int64)
    for _ in range(100):
        missing = config.n_interactions - int(counts.sum())
        if missing == 0:
            break
        open_users = np.flatnonzero(counts < high) if missing > 0 else np.flatnonzero(counts > low)
        if not len(open_users):
            break
        chosen = rng.choice(open_users, size=min(abs(missing), len(open_users)), replace=False)
        counts[chosen] += 1 if missing > 0 else -1
    if int(counts.sum()) != config.n_interactions:
        raise DataError("could not spread the interactions over the users", "Use more users or fewer interactions.")
    return counts


def generate_synthetic(config: SyntheticConfig | None = None, **settings) -> SyntheticData:
    """Draw a synthetic data set; the same config (seed included) gives the same rows.

    The draws come from one generator in a fixed order (groups and popularity, activity, items, repeats,
    times): reordering the steps would change every seeded data set.
    """
    config = config or SyntheticConfig(**settings)
    rng = np.random.default_rng(config.seed)
    n_users, n_items = config.n_users, config.n_items
    user_group, item_group, popularity = _hidden_structure(config, rng)
    draw_items = _ItemSampler.build(item_group, popularity, config.n_groups, config.affinity)
    counts = _activity(config, rng)
    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    item = draw_items(user_group[user], rng)
    _redraw_repeats(user, item, user_group, n_items, draw_items, rng)
    timestamp = _timestamps(config, user, rng)

    frame = pd.DataFrame({"user": (user + 1).astype(np.int32), "item": (item + 1).astype(np.int32), "timestamp": timestamp})
    user_groups = pd.DataFrame({"user": np.arange(1, n_users + 1, dtype=np.int32), "group": user_group.astype(np.int32)})
    item_groups = pd.DataFrame(
        {"item": np.arange(1, n_items + 1, dtype=np.int32), "group": item_group.astype(np.int32), "popularity": popularity}
    )
    return SyntheticData(frame, user_groups, item_groups, config)


def _hidden_structure(config: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The group of every user and every item, and every item's popularity (Zipf over a random ranking, sums to 1)."""
    n_items, n_groups = config.n_items, config.n_groups
    user_group = rng.integers(0, n_groups, config.n_users)
    # Every group gets at least one item: the first n_groups items take one group each, the rest at random.
    item_group = np.concatenate([rng.permutation(n_groups), rng.integers(0, n_groups, n_items - n_groups)])
    item_group = rng.permutation(item_group)
    popularity = np.arange(1, n_items + 1, dtype=np.float64) ** -config.popularity_exponent
    popularity = rng.permutation(popularity)
    popularity /= popularity.sum()
    return user_group, item_group, popularity


@dataclass(frozen=True, eq=False)
class _ItemSampler:
    """Draws items in proportion to popularity, from the user's own group with probability ``affinity``:
    inverse-CDF sampling over the cumulative weights of the items sorted by group, each group one
    contiguous block ``[low, high)`` of them."""

    by_group: np.ndarray
    """Item of each position of the cumulative weights (items sorted by group)."""
    cumulative: np.ndarray
    low: np.ndarray
    high: np.ndarray
    guide: np.ndarray
    """First position of each of ``len(guide)`` equal buckets of [0, 1)."""
    affinity: float

    @classmethod
    def build(cls, item_group: np.ndarray, popularity: np.ndarray, n_groups: int, affinity: float) -> _ItemSampler:
        by_group = np.argsort(item_group, kind="stable")
        cumulative = np.cumsum(popularity[by_group])
        block_end = np.searchsorted(item_group[by_group], np.arange(n_groups), side="right")
        block_start = np.concatenate([[0], block_end[:-1]])
        low = np.where(block_start > 0, cumulative[np.maximum(block_start - 1, 0)], 0.0)
        high = cumulative[block_end - 1]
        cumulative[-1] = max(cumulative[-1], 1.0)  # rounding must not leave a sliver above the last item
        n_buckets = 1 << 22
        guide = np.searchsorted(cumulative, np.arange(n_buckets) / n_buckets, side="right")
        return cls(by_group, cumulative, low, high, guide, affinity)

    def __call__(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item for each row, whose user is in ``group``."""
        cumulative, n_buckets, n_items = self.cumulative, len(self.guide), len(self.cumulative)
        own = rng.random(len(group)) < self.affinity
        lo = np.where(own, self.low[group], 0.0)
        hi = np.where(own, self.high[group], cumulative[-1])
        target = lo + rng.random(len(group)) * (hi - lo)
        # Inverse CDF with a guide table: a binary search per row costs ~15 cache-missing steps, so
        # start from the bucket's first item and step forward only where the bucket holds a boundary.
        position = self.guide[np.minimum((target * n_buckets).astype(np.int64), n_buckets - 1)]
        behind = np.flatnonzero(cumulative[position] <= target)
        while len(behind):
            position[behind] += 1
            np.minimum(position, n_items - 1, out=position)
            behind = behind[(cumulative[position[behind]] <= target[behind]) & (position[behind] < n_items - 1)]
        return self.by_group[position]


def _redraw_repeats(
    user: np.ndarray, item: np.ndarray, user_group: np.ndarray, n_items: int, draw_items: _ItemSampler, rng: np.random.Generator
) -> None:
    """Redraw the items of repeated (user, item) pairs, in place, until every pair is distinct."""
    # Sort the pair keys once, then redraw only the repeats against the sorted accepted keys.
    keys = user * n_items + item
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeat = np.zeros(len(keys), dtype=bool)
    repeat[order[1:]] = sorted_keys[1:] == sorted_keys[:-1]
    accepted = sorted_keys[np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]])] if len(keys) else sorted_keys
    todo = np.flatnonzero(repeat)
    rounds = 0
    while len(todo):
        rounds += 1
        # Heavy users exhaust the popular items of their group (the heaviest have more interactions
        # than their group has items), so after two popularity-weighted rounds the repeats are redrawn
        # uniformly over all items, which ends in a few rounds.
        new_items = draw_items(user_group[user[todo]], rng) if rounds <= 2 else rng.integers(0, n_items, len(todo))
        new_keys = user[todo] * n_items + new_items
        position = np.minimum(np.searchsorted(accepted, new_keys), max(0, len(accepted) - 1))
        clash = accepted[position] == new_keys
        _, first = np.unique(new_keys, return_index=True)
        fresh = np.zeros(len(todo), dtype=bool)
        fresh[first] = True
        ok = fresh & ~clash
        item[todo[ok]] = new_items[ok]
        accepted = np.sort(np.concatenate([accepted, new_keys[ok]]), kind="stable")  # two sorted runs: a linear merge
        todo = todo[~ok]
        if rounds > 200:
            raise DataError("could not draw distinct (user, item) pairs", "Use more items or fewer interactions per user.")


def _timestamps(config: SyntheticConfig, user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole unix seconds, uniform inside each user's random window (at least a day) within [start, end]."""
    span = config.end - config.start
    window = np.maximum(rng.random(config.n_users) * span, 86_400.0)
    first_time = config.start + rng.random(config.n_users) * (span - np.minimum(window, span))
    return np.floor(first_time[user] + rng.random(len(user)) * window[user]).astype(np.int64)


def group_paths(path: str | Path) -> tuple[Path, Path]:
    """Where :func:`write_synthetic` puts the hidden groups: ``NAME.user_groups.parquet`` and ``NAME.item_groups.parquet``."""
    path = Path(path)
    stem = path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.stem
    return path.with_name(f"{stem}.user_groups.parquet"), path.with_name(f"{stem}.item_groups.parquet")


def write_synthetic(data: SyntheticData, path: str | Path) -> tuple[Path, Path, Path]:
    """Write the interactions as parquet (``user``, ``item``, ``timestamp``) and the hidden groups beside them."""
    path = Path(path)
    if path.suffix != ".parquet":
        raise DataError(f"{path.name} does not end in .parquet", "Name the output file NAME.parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    users_path, items_path = group_paths(path)
    data.frame.to_parquet(path, index=False)
    data.user_groups.to_parquet(users_path, index=False)
    data.item_groups.to_parquet(items_path, index=False)
    return path, users_path, items_path
