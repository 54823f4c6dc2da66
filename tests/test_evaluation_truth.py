"""Issue 7: settings mean what they say, one test-time history for every model, honest notes.

Each test here would have failed before the fix it names: the epoch budget reaching KL annealing and
NeuMF's pretraining, validation candidates following the run's seed, the refit on train +
validation by default, the derived settings in the run record and the "not meaningful" rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_contract import checkerboard

from recsys_core.evaluation import NOT_MEANINGFUL_WIDTH, Evaluator
from recsys_core.experiment import run_experiment
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.models.vae import anneal_steps
from recsys_core.splits import leave_one_out
from recsys_core.trainer import Trainer


# ---------------------------------------------------------------------------- one epoch budget
def test_epochs_override_reaches_kl_annealing():
    # Mult-VAE's own budget is 200 epochs; annealing used to be computed from it whatever the
    # trainer's epochs, so 5 epochs reached β = 0.2 · 5/200 · … instead of nearly the cap.
    model = create_model("multvae", layers=(8, 4), batch_size=8)
    history = Trainer(device="cpu", seed=0, epochs=5).fit(model, checkerboard())
    per_epoch = -(-24 // 8)
    assert model.config.epochs == 5
    assert model.meta["total_anneal_steps"] == anneal_steps(None, 5, per_epoch, 0.2)
    assert history.epochs[-1]["beta"] == pytest.approx(0.2 * 14 / 15)


def test_epochs_override_reaches_svae_annealing():
    model = create_model("svae", embedding_size=8, rnn_size=8, hidden_size=8, latent_size=4, batch_size=8)
    Trainer(device="cpu", seed=0, epochs=2).fit(model, checkerboard())
    assert model.config.epochs == 2
    assert model.derived_settings() == {"total_anneal_steps": anneal_steps(None, 2, 3, 0.2)}


def test_epochs_override_reaches_neumf_pretraining():
    small = {"embedding_size": 4, "layers": (8, 4), "batch_size": 64}
    model = create_model("neumf", **small)  # its config says 20 epochs
    Trainer(device="cpu", seed=0, epochs=2).fit(model, checkerboard())
    assert model.meta["pretrained"]["gmf"]["epochs_run"] == 2 and model.meta["pretrained"]["mlp"]["epochs_run"] == 2
    assert model.derived_settings() == {"pretrain_epochs": (2, 2)}


def test_fixed_pretrain_epochs_train_that_long_without_early_stopping():
    data = checkerboard()
    split = leave_one_out(data, seed=0)
    model = create_model("neumf", embedding_size=4, layers=(8, 4), batch_size=64, epochs=1, pretrain_epochs=(3, 2))
    validation = Evaluator(split, "validation", "loo-sampled", n_negatives=5, ks=(10,))
    Trainer(device="cpu", seed=0).fit(model, split.train, validation=validation)
    assert model.meta["pretrained"]["gmf"]["epochs_run"] == 3 and model.meta["pretrained"]["mlp"]["epochs_run"] == 2
    assert create_model("neumf", pretrain_epochs="4,5").config.pretrain_epochs == (4, 5)  # as --set gives it


def test_validation_candidates_follow_the_run_seed(ml100k):
    split = leave_one_out(ml100k, seed=0)
    model = create_model("pop")
    three = Trainer(device="cpu", seed=3)._validation_evaluator(model, split)
    zero = Trainer(device="cpu", seed=0)._validation_evaluator(model, split)
    assert three.seed == 3 and zero.seed == 0
    assert not np.array_equal(three.candidates, zero.candidates)
    assert np.array_equal(zero.candidates, Evaluator(split, "validation", "loo-sampled", ks=(10,), seed=0).candidates)


def test_run_records_the_settings_used_and_derived():
    data = informative_validation()
    events = []
    result = run_experiment(
        data, "multvae", device="cpu", epochs=3, overrides={"layers": (8, 4), "batch_size": 50}, save=False, callback=events.append
    )
    # a live view can tell the refit's epochs from the selection's (no validation curve there)
    training = [e for e in events if e.phase not in ("split", "test")]
    assert {e.phase for e in training} == {"selection", "refit"} and training[-1].phase == "refit"
    settings = result.record["settings"]
    assert settings["epoch_budget"] == 3 and settings["validation_seed"] == 0 and settings["refit"] is True
    steps = anneal_steps(None, 3, 4, 0.2)
    assert settings["derived"] == {"total_anneal_steps": steps} and settings["kl"]["total_anneal_steps"] == steps
    assert settings["kl"]["beta_cap"] == 0.2 and 0 < settings["kl"]["beta_reached"] < 0.2 and not settings["kl"]["cap_reached"]
    # the refit reuses the selection's schedule, not one recomputed from the refit's epoch count
    refit = result.record["refit"]
    assert refit["done"] and refit["settings"]["total_anneal_steps"] == steps
    assert result.model.meta["total_anneal_steps"] == steps and result.model.config.epochs == refit["epochs"]


# ---------------------------------------------------------------------------- one test-time history
def informative_validation(n_users: int = 200, n_noise: int = 200, per_user: int = 6, seed: int = 0) -> Interactions:
    """Users in two groups. Training items are noise shared by both groups; the validation item
    (second latest) and the test item (latest) come from a small set of the user's group's items,
    which nobody has in training. Only a model that learns from the validation interactions can
    know that a group's items belong together."""
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % 2
    noise = np.stack([rng.choice(n_noise, per_user, replace=False) for _ in range(n_users)])
    own = np.stack([rng.choice(10, 2, replace=False) for _ in range(n_users)]) + n_noise + 10 * group[:, None]
    items = np.concatenate([noise, own], axis=1)
    users = np.repeat(np.arange(n_users), per_user + 2)
    stamps = np.tile(np.arange(per_user + 2), n_users)
    frame = pd.DataFrame({"user": users, "item": items.ravel(), "timestamp": stamps})
    return Interactions.from_frame(frame, "user", "item", timestamp_col="timestamp", name="informative-validation")


@pytest.mark.parametrize("model_name, overrides", [("pop", {}), ("bpr", {"epochs": 15, "embedding_size": 16, "learning_rate": 0.05, "batch_size": 256})])
def test_refit_lets_every_model_read_the_validation_interaction(model_name, overrides):
    data = informative_validation()
    plain = run_experiment(data, model_name, device="cpu", overrides=overrides, refit=False, save=False)
    refit = run_experiment(data, model_name, device="cpu", overrides=overrides, save=False)  # the default
    assert refit.record["refit"]["done"] and not plain.record["refit"]["done"]
    # Without the validation interaction the group's items are unknown (never in training);
    # with it, the test item is among the group's items that users of the group had.
    assert plain.test.metrics["HR@10"] < 0.2, plain.test.metrics
    assert refit.test.metrics["HR@10"] > plain.test.metrics["HR@10"] + 0.3, (plain.test.metrics, refit.test.metrics)


# ---------------------------------------------------------------------------- "not meaningful"
def test_not_meaningful_when_the_headline_interval_is_wide(drugs_sample, ml100k):
    small = run_experiment(drugs_sample, "pop", device="cpu", save=False)
    width = small.test.headline_interval_width
    assert width > NOT_MEANINGFUL_WIDTH and not small.test.differences_meaningful
    assert "not meaningful" in small.test.meaning_note and "HR@10" in small.test.meaning_note
    assert small.summary()["differences_meaningful"] is False and small.summary()["note"] == small.test.meaning_note
    large = run_experiment(ml100k, "pop", device="cpu", save=False)
    assert large.test.headline_interval_width < NOT_MEANINGFUL_WIDTH
    assert large.test.differences_meaningful and large.test.meaning_note is None
    assert large.test.to_json()["differences_meaningful"] is True


def test_cli_train_and_evaluate_say_when_differences_are_not_meaningful(capsys, drugs_sample_dir):
    import json

    from recsys_core.cli import main
    from recsys_core.datasets import fetch
    from recsys_core.runs import load_run

    fetch("drugscom-sample", source=drugs_sample_dir, progress=False)
    assert main(["train", "--dataset", "drugscom-sample", "--model", "pop", "--device", "cpu", "--no-refit"]) == 0
    out = capsys.readouterr().out
    assert "differences between models on this data are not meaningful" in out
    run_id = out.split()[1].rstrip(":")
    assert load_run(run_id).record["refit"] == {"done": False}  # --no-refit is recorded
    assert main(["evaluate", "--run", run_id]) == 0
    assert "not meaningful" in capsys.readouterr().out
    assert main(["evaluate", "--run", run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["differences_meaningful"] is False
