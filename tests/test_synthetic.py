"""The synthetic data set: MovieLens-like structure that a test can check, drawn deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.datasets.synthetic import SyntheticConfig, generate_synthetic, group_paths
from recsys_core.errors import DataError

SMALL = dict(n_users=600, n_items=400, n_interactions=30_000, n_groups=5)


def test_structure_popularity_groups_and_distinct_pairs():
    data = generate_synthetic(**SMALL, seed=1)
    frame = data.frame
    assert list(frame.columns) == ["user", "item", "timestamp"]
    assert len(frame) == 30_000
    assert not frame.duplicated(["user", "item"]).any()
    assert frame["user"].nunique() == 600
    assert frame["timestamp"].between(SyntheticConfig.start, SyntheticConfig.end).all()

    # Power-law popularity: item counts fall with rank on a log-log line of negative slope, and the
    # top 10% of items hold far more than 10% of the interactions.
    counts = np.sort(frame["item"].value_counts().to_numpy())[::-1]
    ranks = np.arange(1, len(counts) + 1)
    slope = np.polyfit(np.log(ranks[:200]), np.log(counts[:200]), 1)[0]
    assert slope < -0.4
    assert counts[: len(counts) // 10].sum() > 0.2 * counts.sum()  # uniform popularity would give 0.1
    # Heavy-tailed activity: the most active user has many times the median.
    per_user = frame.groupby("user").size()
    assert per_user.max() > 3 * per_user.median()

    # Hidden groups are recoverable: most users' most frequent item group is their own group.
    item_group = data.item_groups.set_index("item")["group"]
    user_group = data.user_groups.set_index("user")["group"]
    joined = pd.DataFrame({"user": frame["user"], "group": item_group.loc[frame["item"]].to_numpy()})
    dominant = joined.groupby("user")["group"].agg(lambda g: g.value_counts().idxmax())
    assert (dominant == user_group.loc[dominant.index]).mean() > 0.9
    assert np.isclose(data.item_groups["popularity"].sum(), 1.0)


def test_same_seed_same_data_other_seed_other_data():
    a = generate_synthetic(**SMALL, seed=3).frame
    b = generate_synthetic(**SMALL, seed=3).frame
    c = generate_synthetic(**SMALL, seed=4).frame
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_impossible_sizes_are_refused():
    with pytest.raises(DataError, match="do not fit"):
        SyntheticConfig(n_users=10, n_items=10, n_interactions=1_000, n_groups=2)


def test_generate_command_writes_parquet_and_groups(tmp_path, capsys):
    out = tmp_path / "synth.parquet"
    code = main(["generate", "--users", "200", "--items", "150", "--interactions", "5000", "--seed", "2", "--out", str(out)])
    assert code == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user", "item", "timestamp"] and len(frame) == 5000
    users_path, items_path = group_paths(out)
    assert len(pd.read_parquet(users_path)) == 200 and len(pd.read_parquet(items_path)) == 150
    assert "5,000 interactions" in capsys.readouterr().out
    assert main(["generate", "--users", "5", "--items", "5", "--interactions", "100", "--out", str(out)]) == 2
