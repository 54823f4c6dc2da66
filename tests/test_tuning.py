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
    space = tuning.search_space("bpr")
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
    param = tuning.search_space("neumf")["layers"]
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


# The search spaces as the name table in recsys_core/tuning.py (SEARCH_SPACES) gave them before each model
# declared its own (Recommender.search_space): same names, ranges, log flags, choices and order, so a seeded
# study proposes the same trials.
_P = tuning.Param
_LR = _P("float", 1e-4, 3e-2, log=True, doc="Adam step size; log scale, as its effect is multiplicative")
_DECAY = _P("float", 1e-6, 1e-1, log=True, doc="L2 penalty; log scale over five decades")
_NEG = _P("int", 1, 8, doc="sampled negatives per positive")
OLD_SEARCH_SPACES = {
    "itemknn": {
        "neighbours": _P("int", 10, 500, log=True, doc="neighbours kept per item"),
        "shrinkage": _P("float", 0.0, 200.0, doc="added to the cosine's denominator; damps rare co-occurrence"),
    },
    "ease": {"l2": _P("float", 1.0, 1e4, log=True, doc="λ of EASE; log scale (Steck 2019 uses 100s to 1000s)")},
    "ials": {
        "factors": _P("categorical", choices=(16, 32, 64, 128, 256), doc="factors per user and item"),
        "regularization": _P("float", 1e-2, 1e3, log=True, doc="λ on every vector; log scale (Rendle et al. 2022 tune it over decades)"),
        "alpha": _P("float", 0.1, 100.0, log=True, doc="confidence of an observed interaction; log scale"),
    },
    "bpr": {
        "embedding_size": _P("categorical", choices=(16, 32, 64, 128), doc="factors per user and item"),
        "learning_rate": _LR,
        "weight_decay": _DECAY,
        "n_negatives": _NEG,
    },
    "gmf": {"embedding_size": _P("categorical", choices=(8, 16, 32, 64)), "learning_rate": _LR, "n_negatives": _NEG},
    "mlp": {
        "layers": _P("categorical", choices=((32, 16, 8), (64, 32, 16, 8), (128, 64, 32, 16)), doc="tower widths"),
        "learning_rate": _LR,
        "n_negatives": _NEG,
    },
    "neumf": {
        "embedding_size": _P("categorical", choices=(8, 16, 32, 64), doc="GMF factors"),
        "layers": _P("categorical", choices=((32, 16, 8), (64, 32, 16, 8), (128, 64, 32, 16)), doc="MLP tower widths"),
        "learning_rate": _LR,
        "n_negatives": _NEG,
    },
    "multvae": {
        "dropout": _P("float", 0.0, 0.8, doc="input dropout"),
        "beta_cap": _P("float", 0.05, 1.0, log=True, doc="largest KL weight β after annealing"),
        "learning_rate": _LR,
        "weight_decay": _P("float", 1e-7, 1e-2, log=True, doc="L2 penalty"),
    },
    "multdae": {
        "dropout": _P("float", 0.0, 0.8, doc="input dropout"),
        "learning_rate": _LR,
        "weight_decay": _P("float", 1e-7, 1e-2, log=True, doc="L2 penalty"),
    },
    "cdae": {
        "hidden": _P("categorical", choices=(50, 100, 200, 400), doc="hidden units"),
        "corruption": _P("float", 0.0, 0.8, doc="share of input items dropped"),
        "learning_rate": _LR,
        "weight_decay": _DECAY,
    },
    "svae": {
        "latent_size": _P("categorical", choices=(32, 64, 128), doc="latent dimensions"),
        "dropout": _P("float", 0.0, 0.5, doc="dropout on the GRU input"),
        "learning_rate": _LR,
    },
    "autorec": {
        "hidden": _P("categorical", choices=(100, 300, 500)),
        "learning_rate": _LR,
        "weight_decay": _P("float", 1e-2, 1e3, log=True),
    },
    "deeprec": {"dropout": _P("float", 0.0, 0.9), "learning_rate": _LR, "weight_decay": _DECAY},
}


def _sampled(space: dict, seed: int, trials: int = 12) -> list[dict]:
    """What a seeded TPE study proposes over ``space``, suggesting its settings in the space's order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4), direction="maximize")
    proposed = []
    for number in range(trials):
        trial = study.ask()
        params = {name: param.suggest(trial, name) for name, param in space.items()}
        proposed.append(params)
        study.tell(trial, float(number % 5))  # some feedback, so TPE's model (not only random start-up) is compared
    return proposed


def test_every_model_declares_the_search_space_of_the_old_table():
    from recsys_core.models import MODEL_NAMES

    assert tuning.tunable_models() == [name for name in MODEL_NAMES if name in OLD_SEARCH_SPACES]
    for name in MODEL_NAMES:
        if name not in OLD_SEARCH_SPACES:
            with pytest.raises(Exception, match="no search space"):
                tuning.search_space(name)
            continue
        space = tuning.search_space(name)
        assert list(space.items()) == list(OLD_SEARCH_SPACES[name].items()), name  # order included: it is the order of suggestions
        assert [p.to_json() for p in space.values()] == [p.to_json() for p in OLD_SEARCH_SPACES[name].values()]
        assert _sampled(space, seed=7) == _sampled(OLD_SEARCH_SPACES[name], seed=7), name
        assert tuning.default_params(name).keys() <= space.keys()
