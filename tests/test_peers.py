"""benchmarks/peers.py: its settings stay valid for our models, and one measurement runs end to end."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest

from benchmarks import peers
from recsys_core.models import MODEL_NAMES, create_model
from recsys_core.splits import leave_one_out


@pytest.mark.parametrize("key", list(peers.COMPARISONS))
def test_ours_settings_name_real_config_fields(key):
    """A renamed or removed setting must fail here, not silently time ours at other settings."""
    comparison = peers.COMPARISONS[key]
    if comparison["ours"] not in MODEL_NAMES:
        assert comparison["ours"] == "ials"  # the one model the zoo may not have yet; the harness notes its absence
        return
    for wanted in (comparison["ours_default"], comparison["ours_at_peer"]):
        overrides, why = peers._resolve_overrides(comparison["ours"], wanted)
        assert overrides is not None, why
        config = create_model(comparison["ours"], **overrides).config
        assert all(getattr(config, name) == (tuple(value) if isinstance(value, list) else value) for name, value in overrides.items())


def test_a_setting_the_config_lacks_is_reported():
    overrides, why = peers._resolve_overrides("bpr", {("embedding_size",): 64, ("no_such_setting", "nor_this"): 1})
    assert overrides is None and "no_such_setting/nor_this" in why


def test_prepared_rows_are_our_training_split(tmp_path, ml100k, ml100k_dir):
    info = peers.prepare_data(str(ml100k_dir), tmp_path)
    train = leave_one_out(ml100k).train
    assert info == {"users": train.n_users, "items": train.n_items, "training_rows": len(train)}
    matrix = peers._train_csr(tmp_path)
    assert matrix.shape == train.shape and matrix.nnz == len(train) and set(np.unique(matrix.data)) == {1.0}
    recbole_train = (tmp_path / "recbole" / "peers" / "peers.train.inter").read_text().splitlines()
    assert recbole_train[0] == "user_id:token\titem_id:token" and len(recbole_train) == len(train) + 1


def test_ours_and_a_peer_each_run_in_one_thread_in_their_own_process(tmp_path, ml100k_dir):
    peers.prepare_data(str(ml100k_dir), tmp_path)
    common = {"folder": str(tmp_path), "data": str(ml100k_dir), "epochs": 2}
    ours = peers.run_child({**common, "library": "ours", "model": "ease", "variant": "default", "overrides": {"l2": 500.0}}, sys.executable)
    assert "error" not in ours, ours.get("error")
    assert ours["unit"] == "fit" and len(ours["seconds"]) == 1 and ours["seconds"][0] > 0 and ours["torch_threads"] == 1
    assert ours["config"]["l2"] == 500.0 and ours["load_before"] >= 0
    settings = peers.COMPARISONS["ials"]["peers"][0]
    peer = peers.run_child({**common, **settings}, sys.executable)
    assert "error" not in peer, peer.get("error")
    assert peer["unit"] == "epoch" and len(peer["seconds"]) == 2 and min(peer["seconds"]) > 0


def test_a_missing_model_and_a_missing_recbole_are_said_in_the_table(tmp_path, monkeypatch):
    recbole_peer = peers.COMPARISONS["gmf"]["peers"][0]
    monkeypatch.setitem(
        peers.COMPARISONS, "fake", {**peers.COMPARISONS["ials"], "ours": "no-such-model", "label": "Fake", "peers": [recbole_peer]}
    )
    args = argparse.Namespace(epochs=1, warmup=0, repeats=1, data="unused")
    rows, measurements = peers.compare("fake", args, tmp_path, recbole_python=None)
    assert measurements["runs"] == []  # nothing could run, and nothing was timed in its place
    assert rows[0]["ours s/epoch"] == "–" and rows[0]["peer s/epoch"] == "–" and rows[0]["ours ÷ peer"] == "–"
    assert "no model 'no-such-model'" in rows[0]["settings"] and "RecBole not installed" in rows[0]["settings"]


def test_the_figure_is_the_median_after_each_process_warm_up():
    epochs = [{"unit": "epoch", "seconds": [9.0, 1.0, 2.0]}, {"unit": "epoch", "seconds": [8.0, 3.0, 4.0]}, {"error": "failed"}]
    assert peers._median(epochs, warmup=1) == 2.5 and peers._unit(epochs) == "epoch"
    fits = [{"unit": "fit", "seconds": [0.5]}, {"unit": "fit", "seconds": [0.7]}]
    assert peers._median(fits, warmup=1) == pytest.approx(0.6) and peers._unit(fits) == "fit"  # a whole fit has no warm-up epoch
    assert peers._median([{"error": "failed"}], warmup=1) is None
