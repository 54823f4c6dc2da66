import pytest
from model_contract import ModelContract

from recsys_core.models.als import IALSConfig


class TestPopularity(ModelContract):
    model_name = "pop"
    # Popularity ignores the user: on a checkerboard every item is equally popular, so it can only
    # be checked for the interface, not for finding the held-out item.
    min_accuracy = 0.0


class TestItemKNN(ModelContract):
    model_name = "itemknn"
    overrides = {"neighbours": 10, "shrinkage": 0.0}


class TestEASE(ModelContract):
    model_name = "ease"
    overrides = {"l2": 10.0}


class TestEASEWithAnItemCapOfEveryItem(ModelContract):
    # The capped code path (item subset, −∞ outside it) with a cap that keeps every item.
    model_name = "ease"
    overrides = {"l2": 10.0, "item_cap": 24}


def test_ease_matches_the_float64_closed_form(ml100k):
    import numpy as np
    import torch

    from recsys_core.models import create_model
    from recsys_core.trainer import fit_model

    model = fit_model(create_model("ease", l2=200.0), ml100k, device="cpu")
    x = torch.as_tensor(ml100k.to_csr().toarray(), dtype=torch.float64)
    precision = torch.linalg.inv(x.T @ x + 200.0 * torch.eye(ml100k.n_items, dtype=torch.float64))
    expected = -precision / torch.diagonal(precision)[None, :]
    expected.fill_diagonal_(0.0)
    np.testing.assert_allclose(model.item_embeddings(), expected.numpy(), atol=2e-5)


def test_ease_item_cap_models_the_most_popular_items_and_records_it(ml100k, tmp_path):
    import numpy as np

    from recsys_core.models import create_model
    from recsys_core.runs import load_model, save_model
    from recsys_core.trainer import fit_model

    model = fit_model(create_model("ease", l2=200.0, item_cap=300), ml100k, device="cpu")
    popular = np.argsort(-ml100k.item_counts(), kind="stable")[:300]
    assert model.meta["item_cap"] == 300 and sorted(model.meta["kept_items"]) == sorted(popular.tolist())
    scores = model.score(np.arange(5))
    outside = np.setdiff1d(np.arange(ml100k.n_items), popular)
    assert np.isneginf(scores[:, outside]).all() and np.isfinite(scores[:, popular]).all()
    items, _ = model.recommend(np.arange(50), k=10)
    assert np.isin(items, popular).all()
    save_model(model, tmp_path)
    again = load_model(tmp_path)
    assert again.meta["item_cap"] == 300
    np.testing.assert_allclose(again.score(np.arange(5)), scores)


def test_ease_refuses_with_its_estimate_when_memory_is_short(ml100k, monkeypatch):
    import pytest

    from recsys_core.errors import ModelError
    from recsys_core.models import create_model
    from recsys_core.models.ease import ease_memory_bytes
    from recsys_core.trainer import fit_model

    assert ease_memory_bytes(26_744, tuning=True) > 2 * ease_memory_bytes(26_744, tuning=False) - 2**27
    monkeypatch.setenv("RECSYS_MEMORY_LIMIT_GB", "0.01")
    with pytest.raises(ModelError, match=r"needs about .* GiB") as error:
        fit_model(create_model("ease"), ml100k, device="cpu")
    assert "item_cap" in error.value.hint
    monkeypatch.setenv("RECSYS_MEMORY_LIMIT_GB", "0.07")  # 1,682 items do not fit; the hinted cap does
    with pytest.raises(ModelError) as error:
        fit_model(create_model("ease", l2=100.0), ml100k, device="cpu")
    cap = int(error.value.hint.split("item_cap=")[1].split(")")[0])
    assert fit_model(create_model("ease", l2=100.0, item_cap=cap), ml100k, device="cpu").meta["item_cap"] == cap


def test_ease_memory_estimate_matches_the_measured_peak(tmp_path):
    """Peak RSS growth of a fit in a fresh process (high-water mark reset just before), against the estimate."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from recsys_core.models.ease import ease_memory_bytes

    script = tmp_path / "peak.py"
    script.write_text(
        """
import json, sys
import numpy as np, pandas as pd
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.trainer import fit_model
n_items, tuning = int(sys.argv[1]), sys.argv[2] == "tune"
rng = np.random.default_rng(0)
frame = pd.DataFrame({"user": rng.integers(0, 3000, 200_000), "item": rng.integers(0, n_items, 200_000)}).drop_duplicates()
data = Interactions.from_frame(frame)
model = create_model("ease", l2=None if tuning else 100.0, l2_grid=(100.0, 200.0))
from recsys_core.splits import leave_one_out
split = leave_one_out(data)
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark to the current RSS
before = status("VmRSS")
fit_model(model, split.train, validation=split if tuning else None, device="cpu")
print(json.dumps({"grown": status("VmHWM") - before}))
"""
    )
    for mode in ("fixed", "tune"):
        repo = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, str(script), "3000", mode], capture_output=True, text=True, cwd=repo, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        grown = json.loads(out.stdout.strip().splitlines()[-1])["grown"]
        estimate = ease_memory_bytes(3000, tuning=mode == "tune")
        matrices = (2 if mode == "tune" else 1) * 4 * 3000 * 3000
        # the estimate covers what was measured, and is not more than the matrices plus its stated overhead
        assert matrices * 0.8 <= grown <= estimate, (mode, grown, estimate)


def test_popularity_recommends_the_most_popular_unseen_items():
    import numpy as np
    import pandas as pd

    from recsys_core.interactions import Interactions
    from recsys_core.models import create_model
    from recsys_core.trainer import fit_model

    # item 2 is seen by 3 users, item 1 by 2, item 0 by 1; user 0 has seen item 2
    frame = pd.DataFrame({"user": [0, 1, 2, 1, 2, 2, 3], "item": [2, 2, 2, 1, 1, 0, 3]})
    model = fit_model(create_model("pop"), Interactions.from_frame(frame), device="cpu")
    items, scores = model.recommend(np.array([0]), k=3)
    assert items[0][0] == 1 and set(items[0][1:].tolist()) == {0, 3}  # 0 and 3 tie on one user each
    assert scores[0].tolist() == [2.0, 1.0, 1.0]


class TestIALS(ModelContract):
    model_name = "ials"
    overrides = {"factors": 8, "regularization": 0.1, "epochs": 10}


@pytest.mark.slow
def test_ials_default_run_on_ml100k_is_as_accurate_as_the_strong_models(ml100k):
    """The default run (selection with early stopping, refit on train + validation, test once): on ml-100k
    it reaches the floor of the strongest models here (EASE 0.635), and folds in held-out users."""
    from recsys_core.experiment import run_experiment

    result = run_experiment(ml100k, "ials", device="cpu", save=False)
    assert result.record["metrics"]["HR@10"] > 0.635, result.record["metrics"]
    assert 1 <= result.record["refit"]["epochs"] <= IALSConfig().epochs
    heldout = run_experiment(ml100k, "ials", protocol="heldout-users", device="cpu", save=False)
    assert heldout.record["metrics"]["Recall@20"] > 0.15, heldout.record["metrics"]  # popularity: about 0.09
