"""The end-to-end experiment: sources, refit, protocol checks."""

import shutil

import pytest

from recsys_core.errors import DataError, ModelError
from recsys_core.experiment import DataSource, run_experiment


def test_refit_on_train_plus_validation_is_recorded(ml100k):
    plain = run_experiment(ml100k, "ease", device="cpu", refit=False, save=False)
    refit = run_experiment(ml100k, "ease", device="cpu", refit=True, save=False)
    assert refit.record["refit"]["done"] and not plain.record["refit"]["done"]
    # EASE is closed-form: its refit claims no epoch count
    assert refit.record["refit"]["epochs"] is None and refit.record["settings"]["refit_epochs"] is None
    assert refit.model.meta["l2"] == plain.model.meta["l2"]  # the validation-chosen λ is kept
    # more data for the final fit: never a large loss on the untouched test split
    assert refit.test.metrics["HR@10"] >= plain.test.metrics["HR@10"] - 0.03


def test_ratings_protocol_needs_a_rating_model(ml100k):
    with pytest.raises(ModelError, match="cannot be evaluated on ratings"):
        run_experiment(ml100k, "ease", protocol="ratings", save=False)


def test_heldout_users_with_fold_in(ml100k):
    result = run_experiment(ml100k, "ease", protocol="heldout-users", device="cpu", save=False)
    # Each held-out user's chronologically last 20% is predicted from the first 80%: harder than a
    # random 20% (EASE about 0.19 Recall@20 against 0.46), and still above popularity (about 0.155).
    popularity = run_experiment(ml100k, "pop", protocol="heldout-users", device="cpu", save=False)
    assert result.test.metrics["Recall@20"] > popularity.test.metrics["Recall@20"] + 0.02
    assert result.test.metrics["Recall@20"] > 0.17 and result.test.metrics["NDCG@100"] > 0.25
    assert "chronological" in result.test.info["given"]
    assert result.record["split"]["kind"] == "heldout-users"


def test_a_drugscom_file_brought_by_the_user(drugs_sample_dir, tmp_path):
    from recsys_core.home import uploads_dir

    path = uploads_dir() / "reviews.tsv"  # sources are read only from the data home (see tests/test_runs_untrusted.py)
    shutil.copyfile(drugs_sample_dir / "drugsComTrain.tsv", path)
    source = DataSource.drugscom_file(path, name="my reviews")
    data = source.load()
    assert data.users.kind == "condition" and data.items.kind == "drug" and "review" in data.extra
    result = run_experiment(data, "itemknn", protocol="loo-full", device="cpu", source=source)
    assert result.record["dataset"]["source"]["kind"] == "drugscom-file"
    assert DataSource.from_json(result.record["dataset"]["source"]).load().content_hash() == data.content_hash()


def test_a_missing_source_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no longer there"):
        DataSource.drugscom_file(tmp_path / "gone.tsv").load()


def test_progress_names_the_split_before_training_and_each_test_protocol_after(ml100k):
    """A large upload spends seconds splitting and a minute testing (full ranking): the progress line
    says so instead of sitting at 0% or 100%."""
    from webapp.train_ui import describe_event

    events = []
    run_experiment(ml100k, "pop", protocol="loo-sampled", seed=0, device="cpu", save=False, callback=events.append)
    phases = [event.phase for event in events]
    assert phases[0] == "split" and phases[-2:] == ["test", "test"]
    assert set(phases[1:-2]) <= {"selection", "refit"} and len(phases) > 3
    assert describe_event(events[0]) == "Splitting 100,000 interactions for loo-sampled…"
    assert [describe_event(e) for e in events[-2:]] == [
        "Testing on the held-out data: loo-sampled (1 of 2)…",
        "Testing on the held-out data: loo-full (2 of 2)…",
    ]
