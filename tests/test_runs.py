"""Saved runs: atomic, pickle-free, reloadable without the training data."""

import json

import numpy as np
import pytest

from recsys_core.errors import RunNotFoundError, UnknownIdError
from recsys_core.experiment import run_experiment
from recsys_core.home import runs_dir
from recsys_core.run_store import record_text
from recsys_core.runs import list_runs, load_run


def test_run_roundtrip_and_contents(ml100k):
    result = run_experiment(ml100k, "itemknn", device="cpu")
    folder = runs_dir() / result.run_id
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "model.json", "run.json", "vocab.json", "items.parquet", "users.parquet"} <= names
    assert {"evaluation-loo-sampled.json", "evaluation-loo-full.json"} <= names
    assert not [p for p in folder.iterdir() if p.suffix in (".pkl", ".pickle", ".pt")]
    record = json.loads((folder / "run.json").read_text())
    for key in (
        "model",
        "config",
        "dataset",
        "split",
        "protocol",
        "seed",
        "versions",
        "device",
        "fit_seconds",
        "history",
        "validation",
        "test",
    ):
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

    monkeypatch.setattr(runs, "clean_for_parquet", broken)
    with pytest.raises(OSError):
        run_experiment(ml100k, "pop", device="cpu")
    assert list(runs_dir().iterdir()) == []


def test_runs_saved_in_the_same_second_list_newest_first(ml100k):
    first = run_experiment(ml100k, "pop", device="cpu").run_id
    second = run_experiment(ml100k, "pop", device="cpu").run_id
    assert [r.run_id for r in list_runs()] == [second, first]


# ---------------------------------------------------------------------------------- the typed record
def test_run_record_round_trip_and_typed_fields(ml100k):
    from recsys_core.runs import RunRecord

    result = run_experiment(ml100k, "itemknn", device="cpu")
    raw = json.loads((runs_dir() / result.run_id / "run.json").read_text())
    record = RunRecord.from_json(raw)
    assert record.to_json() == raw  # nothing read is lost, nothing is added
    # ... and written again it is the same text: the entries in run.json's order, nothing reformatted.
    assert record_text(record.to_json()) == (runs_dir() / result.run_id / "run.json").read_text()
    assert result.info == record  # the experiment returns the record it saved
    assert RunRecord.from_json(record.to_json()) == record
    assert (record.run_id, record.model.name, record.dataset.name, record.protocol, record.headline) == (
        result.run_id, "itemknn", ml100k.name, "loo-sampled", "HR@10",
    )  # fmt: skip
    assert record.dataset.content_hash == ml100k.content_hash()
    assert record.headline_value == pytest.approx(result.test.metrics["HR@10"])
    assert record.scores.interval("HR@10") == pytest.approx(result.test.intervals["HR@10"])
    assert set(record.test) == {"loo-sampled", "loo-full"} and record.test["loo-full"].scores.get("HR@10") == pytest.approx(
        result.evaluations["loo-full"].metrics["HR@10"]
    )
    assert record.refit.done and record.loo_order == "time" and record.beyond is not None
    assert record.settings.seed == 0 and record.settings.refit and record.settings.kl is None and record.settings.threshold is None
    assert [r.run_id for r in list_runs()] == [record.run_id] and list_runs()[0] == record
    assert load_run(result.run_id).info == record


def test_an_old_format_run_json_loads_with_defaults():
    """A run.json as early versions wrote it: no headline, positive rule, loo order, refit, created or beyond."""
    from recsys_core.runs import RunRecord

    old = {
        "run_id": "20250101-120000-ml-100k-pop-abcdef",
        "model": "pop",
        "config": {},
        "dataset": {
            "name": "ml-100k",
            "source": {"kind": "builtin", "name": "ml-100k", "path": None, "options": None},
            "content_hash": "x",
        },
        "protocol": "loo-full",
        "split": {"kind": "leave-one-out"},
        "seed": 3,
        "metrics": {"HR@10": 0.25, "NDCG@10": 0.125},
        "history": [],
        "test": {"loo-full": {"protocol": "loo-full", "metrics": {"HR@10": 0.25}}},
    }
    record = RunRecord.from_json(old)
    assert record.headline == "HR@10" and record.headline_value == 0.25 and record.scores.interval("HR@10") is None
    assert record.dataset.positive_rule.threshold is None and not record.dataset.rule_recorded
    assert record.loo_order == "time" and not record.refit.done and record.created == "" and record.beyond is None
    assert record.history.device == "?" and record.history.epochs_run is None and not record.history.has_loss
    assert record.test["loo-full"].n_users is None and record.test["loo-full"].meaning_note() is None
    assert "positive_rule" not in record.to_json()["dataset"]  # an old run is not given a rule it never had

    from webapp.run_labels import run_label

    assert run_label(record) == "Popularity · ml-100k · abcdef · HR@10 0.250, full ranking"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": "3"}, "seed is not a whole number"),
        ({"metrics": {"HR@10": "high"}}, "metric HR@10 is not a number"),
        ({"intervals": {"HR@10": [0.1]}}, "interval of HR@10 is not a pair"),
        ({"history": {"loss": 1}}, "history is not a list"),
        ({"dataset": {"source": {}}}, "dataset has no name"),
        ({"test": {"loo-full": []}}, "test.loo-full is a list"),
    ],
)
def test_a_run_json_with_wrong_types_is_a_run_file_error(change, message):
    from recsys_core.errors import RunFileError
    from recsys_core.runs import RunRecord

    base = {"run_id": "r", "model": "pop", "dataset": {"name": "d"}, "protocol": "loo-full"}
    with pytest.raises(RunFileError, match=message) as caught:
        RunRecord.from_json({**base, **change}, "run.json of run r")
    assert caught.value.message.startswith("run.json of run r is damaged") and caught.value.hint


# ---------------------------------------------------------------------------------- seen items
@pytest.mark.parametrize("refit", [True, False])
def test_the_seen_items_are_saved_beside_the_model_and_re_evaluation_matches(ml100k, refit):
    from recsys_core.experiment import evaluate_run
    from recsys_core.runs import SEEN_FILE

    result = run_experiment(ml100k, "ease", device="cpu", refit=refit, overrides={"l2": 500.0})
    assert (runs_dir() / result.run_id / SEEN_FILE).exists()
    run = load_run(result.run_id)
    fitted = result.split.train_with_validation() if refit else result.split.train
    # What the model scores from is what it was fitted on; what it must not recommend is everything.
    assert (run.model.known != fitted.to_csr()).nnz == 0
    assert (run.seen != ml100k.to_csr()).nnz == 0
    assert run.info.extra["known_history"] == ("train + validation" if refit else "train")
    again = evaluate_run(result.run_id, data=ml100k)
    assert again.metrics == pytest.approx(result.test.metrics)
    # Recommendations from the run never repeat a seen item, in any part of the data.
    user = ml100k.users.index(1)
    seen = set(ml100k.item[ml100k.user == user])
    assert not seen & set(run.recommend(1, k=50)["item_index"])


def test_a_run_saved_before_seen_items_still_loads_recommends_and_re_evaluates(ml100k):
    """Old runs stored every interaction as the model's known: they fall back to it, as before."""
    import scipy.sparse as sp
    from safetensors.torch import load_file, save_file

    from recsys_core.experiment import evaluate_run
    from recsys_core.runs import MODEL_FILE, SEEN_FILE

    result = run_experiment(ml100k, "itemknn", device="cpu")
    folder = runs_dir() / result.run_id
    tensors = load_file(str(folder / MODEL_FILE))
    seen = load_file(str(folder / SEEN_FILE))
    tensors["known.indptr"], tensors["known.indices"] = seen["seen.indptr"], seen["seen.indices"]
    save_file(tensors, str(folder / MODEL_FILE))
    (folder / SEEN_FILE).unlink()

    run = load_run(result.run_id)
    assert run.seen_saved is None and (run.seen != ml100k.to_csr()).nnz == 0
    assert isinstance(run.seen, sp.csr_matrix)
    assert not set(ml100k.item[ml100k.user == ml100k.users.index(1)]) & set(run.recommend(1, k=20)["item_index"])
    assert evaluate_run(result.run_id, data=ml100k).metrics == pytest.approx(result.test.metrics)


def test_a_damaged_seen_items_file_is_a_clear_error(ml100k):
    from recsys_core.errors import RunFileError
    from recsys_core.runs import SEEN_FILE

    result = run_experiment(ml100k, "pop", device="cpu")
    (runs_dir() / result.run_id / SEEN_FILE).write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(RunFileError, match="seen.safetensors of run .* is not a safetensors file"):
        load_run(result.run_id)


def test_run_record_round_trip_keeps_model_specific_settings(ml100k):
    """Mult-VAE records its KL schedule under settings; the typed record reads it and writes it back."""
    from recsys_core.runs import RunRecord

    result = run_experiment(ml100k, "multvae", device="cpu", epochs=1)
    raw = json.loads((runs_dir() / result.run_id / "run.json").read_text())
    record = RunRecord.from_json(raw)
    assert record.to_json() == raw
    assert record_text(record.to_json()) == (runs_dir() / result.run_id / "run.json").read_text()  # kl before the threshold, as saved
    assert record.settings.kl is not None and record.settings.kl["total_anneal_steps"] == raw["settings"]["kl"]["total_anneal_steps"]
    assert record.settings.epoch_budget == 1 and record.history.has_loss


# ---------------------------------------------------------------------------------- saving and updating run.json
def test_the_experiment_builds_the_record_it_saves(ml100k):
    """run_experiment hands save_run a RunRecord; the saved run.json is that record, with the id, model and versions."""
    from recsys_core.runs import RunRecord

    result = run_experiment(ml100k, "pop", device="cpu", seed=2)
    text = (runs_dir() / result.run_id / "run.json").read_text()
    assert isinstance(result.info, RunRecord) and result.info.run_id == result.run_id
    assert record_text(result.info.to_json()) == text and RunRecord.from_json(json.loads(text)) == result.info
    assert list(json.loads(text))[:5] == ["run_id", "model", "config", "versions", "dataset"]
    assert result.info.model.name == "pop" and result.info.seed == 2 and result.info.extra["seen_items"] == "all interactions of the data set"
    assert result.summary()["dataset"] == ml100k.name and result.summary()["refit"] is True
    unsaved = run_experiment(ml100k, "pop", device="cpu", save=False)
    assert unsaved.run_id is None and unsaved.info.run_id == "" and "known_history" not in unsaved.record
    assert unsaved.record["metrics"] == pytest.approx(result.record["metrics"], abs=0.1)


def test_update_run_changes_only_its_annotations_and_keeps_every_other_byte(ml100k):
    from recsys_core.runs import update_run

    run_id = run_experiment(ml100k, "pop", device="cpu").run_id
    path = runs_dir() / run_id / "run.json"
    before = path.read_text()
    record = update_run(run_id, title="baseline", distributed={"world_size": 2, "backend": "gloo"})
    assert record.title == "baseline" and load_run(run_id).info == record
    after = path.read_text()
    assert after.startswith(before[: before.rindex("\n}")]) and json.loads(after)["distributed"]["world_size"] == 2
    update_run(run_id, title=None, distributed=None)  # None removes an annotation
    assert path.read_text() == before
    with pytest.raises(ValueError, match="not metrics"):
        update_run(run_id, metrics={"HR@10": 1.0})  # a run's results never change
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_a_failed_update_leaves_the_old_run_json_intact(ml100k, monkeypatch):
    """A crash between writing the new run.json and renaming it over the old one, or a value JSON cannot
    hold, leaves the old run.json byte for byte and no temporary file behind."""
    import os

    import recsys_core.run_store as run_store
    from recsys_core.runs import rename_run, update_run

    run_id = run_experiment(ml100k, "pop", device="cpu").run_id
    folder = runs_dir() / run_id
    before = (folder / "run.json").read_bytes()

    def crash(source, target):
        assert os.path.getsize(source) > len(before)  # the new text was written in full, beside the old
        raise OSError("power cut")

    with monkeypatch.context() as patched:
        patched.setattr(run_store.os, "replace", crash)
        with pytest.raises(OSError, match="power cut"):
            rename_run(run_id, "a name")
    with pytest.raises(TypeError, match="cannot store object"):
        update_run(run_id, study={"sampler": object()})
    assert (folder / "run.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert load_run(run_id).info.title == ""
