"""Tuning with Optuna: a tiny study on ml-100k that never evaluates the test split during the search."""

from __future__ import annotations

import dataclasses
import json

import pytest

from recsys_core import evaluation, splits, tuning
from recsys_core.splits import Split, make_split


@pytest.fixture
def evaluated_parts(monkeypatch):
    """Every (part, protocol) an Evaluator is built for while the fixture is active."""
    parts: list[tuple[str, str]] = []
    original = evaluation.Evaluator.__init__

    def spy(self, split, part="test", protocol="loo-sampled", *args, **kwargs):
        parts.append((part, protocol))
        original(self, split, part, protocol, *args, **kwargs)

    monkeypatch.setattr(evaluation.Evaluator, "__init__", spy)
    return parts


def test_search_sees_only_validation_then_best_is_tested_once_and_recorded(ml100k, evaluated_parts):
    from recsys_core.runs import load_run

    study = tuning.run_study(ml100k, "bpr", "loo-sampled", trials=2, seed=0, device="cpu", epochs=2)
    assert evaluated_parts and {part for part, _ in evaluated_parts} == {"validation"}, "the search touched the test split"
    trials = tuning.trials_records(study)
    assert len(trials) == 2 and all(t["state"] == "COMPLETE" for t in trials)
    # Each trial reported its validation NDCG@10 after every epoch (what the median pruner reads).
    assert all(t["epochs"] == 2 for t in trials)
    space = tuning.SEARCH_SPACES["bpr"]
    # The first trial is the default configuration, so the search never ends below it on validation.
    assert (
        trials[0]["params"]
        == tuning.default_params("bpr")
        == {"embedding_size": 64, "learning_rate": 1e-2, "weight_decay": 3e-3, "n_negatives": 4}
    )
    for trial in trials:
        assert set(trial["params"]) == set(space)
        lr = trial["params"]["learning_rate"]
        assert space["learning_rate"].low <= lr <= space["learning_rate"].high

    # Resumable: the same data, model, protocol and seed continue the stored study.
    study = tuning.run_study(ml100k, "bpr", "loo-sampled", trials=1, seed=0, device="cpu", epochs=2)
    assert len(study.trials) == 3
    assert tuning.study_name(ml100k, "bpr", "loo-sampled", 0) in tuning.list_studies()
    assert tuning.storage_path().exists()

    evaluated_parts.clear()
    result = tuning.train_best(study, ml100k, "bpr", "loo-sampled", seed=0, device="cpu", epochs=2)
    assert [p for p, _ in evaluated_parts].count("test") == 2  # loo-sampled and its loo-full companion, once each
    record = load_run(result.run_id).record
    assert record["config"]["learning_rate"] == pytest.approx(result.best_params["learning_rate"])
    assert record["study"]["best_value"] == pytest.approx(max(t["value"] for t in tuning.trials_records(study)))
    assert len(record["study"]["trials"]) == 3 and set(record["study"]["space"]) == set(space)
    assert record["study"]["space"]["learning_rate"]["log"] is True
    assert record["study"]["objective"] == "validation NDCG@10 (maximize)"


class _WatchedSplit(Split):
    """A split that records every read of its test parts."""

    def __getattribute__(self, name):
        if name in ("test", "test_given"):
            object.__getattribute__(self, "info").setdefault("test reads", []).append(name)
        return super().__getattribute__(name)


@pytest.mark.parametrize("protocol, model", [("loo-sampled", "bpr"), ("heldout-users", "ease")])
def test_the_search_reads_no_test_part_of_the_split(ml100k, protocol, model, monkeypatch):
    """Not only is no test Evaluator built: the split's test targets are never read, not even to keep
    them out of the validation negatives (``Split.known_positives``)."""
    split = make_split(ml100k, protocol, seed=0)
    watched = _WatchedSplit(**{f.name: getattr(split, f.name) for f in dataclasses.fields(Split)} | {"info": dict(split.info)})
    tuning.run_study(ml100k, model, protocol, trials=1, seed=0, device="cpu", epochs=1, split=watched)
    assert watched.info.get("test reads") is None
    # `tune` itself, which builds its own split: the search part of it reads no test part either
    monkeypatch.setattr(splits, "make_split", lambda *args, **kwargs: watched)
    tuning.tune(ml100k, model, protocol, trials=1, seed=1, device="cpu", epochs=1, train=False)
    assert watched.info.get("test reads") is None
    watched.test  # noqa: B018 - the instrument itself works
    assert watched.info["test reads"] == ["test"]


def test_validation_negatives_avoid_what_is_known_at_validation_time_and_test_negatives_everything(ml100k):
    split = make_split(ml100k, "loo-sampled", seed=0)
    known = split.known_positives("validation")
    assert known.nnz == len(split.train) + len(split.validation)
    assert split.known_positives("test").nnz == known.nnz + len(split.test)
    with pytest.raises(ValueError, match="part must be"):
        split.known_positives("train")


def test_sampler_is_seeded(ml100k, monkeypatch):
    """Two studies with the same seed (in two data homes) propose the same first configurations."""
    import os

    first = tuning.run_study(ml100k, "ease", "loo-sampled", trials=2, seed=3, device="cpu")
    params = [t.params for t in first.trials]
    monkeypatch.setenv("RECSYS_HOME", os.environ["RECSYS_HOME"] + "-again")
    second = tuning.run_study(ml100k, "ease", "loo-sampled", trials=2, seed=3, device="cpu")
    assert [t.params for t in second.trials] == params
    assert [t.value for t in second.trials] == pytest.approx([t.value for t in first.trials])


def test_layer_choices_round_trip():
    param = tuning.SEARCH_SPACES["neumf"]["layers"]
    assert all(tuning._choice_value(c) == tuple(v) for c, v in zip(param.to_json()["choices"], param.choices))


def test_untunable_model_and_cli(ml100k, ml100k_dir, capsys):
    from recsys_core.cli import main
    from recsys_core.datasets import fetch

    with pytest.raises(Exception, match="no search space"):
        tuning.search_space("pop")
    with pytest.raises(Exception, match="cannot be tuned on the ratings protocol"):
        tuning.run_study(ml100k, "ease", "ratings", trials=1)
    fetch("ml-100k", source=ml100k_dir)
    assert main(["tune", "--dataset", "ml-100k", "--model", "itemknn", "--trials", "2", "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["trials"] == 2 and summary["run_id"] and set(summary["best_params"]) == {"neighbours", "shrinkage"}
    assert "HR@10" in summary["test_metrics"]
    assert main(["tune", "--model", "pop", "--trials", "1"]) == 2
    assert "no search space" in capsys.readouterr().err
