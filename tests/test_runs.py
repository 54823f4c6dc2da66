"""Saved runs: atomic, pickle-free, reloadable without the training data."""

import json

import numpy as np
import pytest

from recsys_core.errors import RunNotFoundError, UnknownIdError
from recsys_core.experiment import run_experiment
from recsys_core.home import runs_dir
from recsys_core.runs import list_runs, load_run


def test_run_roundtrip_and_contents(ml100k):
    result = run_experiment(ml100k, "itemknn", device="cpu")
    folder = runs_dir() / result.run_id
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "model.json", "run.json", "vocab.json", "items.parquet", "users.parquet"} <= names
    assert {"evaluation-loo-sampled.json", "evaluation-loo-full.json"} <= names
    assert not [p for p in folder.iterdir() if p.suffix in (".pkl", ".pickle", ".pt")]
    record = json.loads((folder / "run.json").read_text())
    for key in ("model", "config", "dataset", "split", "protocol", "seed", "versions", "device", "fit_seconds", "history", "validation", "test"):
        assert key in record, key
    assert record["dataset"]["content_hash"] == ml100k.content_hash()

    run = load_run(result.run_id)
    users = np.arange(ml100k.n_users)
    np.testing.assert_allclose(run.model.score(users[:50]), result.model.score(users[:50]), rtol=1e-6)
    table = run.recommend(1, k=5)
    assert len(table) == 5 and table["title"].str.len().min() > 0
    seen = set(ml100k.items.ids[ml100k.item[ml100k.user == ml100k.users.index(1)]])
    assert not seen & set(table["item"])  # excludes everything the user has seen, in any split part
    with pytest.raises(UnknownIdError):
        run.recommend(99999)
    assert run.evaluation("loo-sampled").metrics["HR@10"] == pytest.approx(result.test.metrics["HR@10"])
    assert [r.run_id for r in list_runs()] == [result.run_id]


def test_missing_run_is_a_clear_error():
    with pytest.raises(RunNotFoundError, match="no saved run"):
        load_run("20990101-nothing")
    with pytest.raises(RunNotFoundError, match="not a valid run id"):
        load_run("../escape")


def test_a_failed_save_leaves_nothing_behind(ml100k, monkeypatch):
    import recsys_core.runs as runs

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "_clean_for_parquet", broken)
    with pytest.raises(OSError):
        run_experiment(ml100k, "pop", device="cpu")
    assert list(runs_dir().iterdir()) == []


def test_runs_saved_in_the_same_second_list_newest_first(ml100k):
    first = run_experiment(ml100k, "pop", device="cpu").run_id
    second = run_experiment(ml100k, "pop", device="cpu").run_id
    assert [r.run_id for r in list_runs()] == [second, first]
