"""The Train page's Tune mode, driven with Streamlit's AppTest: a tiny study, its table and plots, "use best"."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys_core.experiment import DataSource

REPO = Path(__file__).resolve().parents[1]


def test_tune_mode_runs_a_study_and_saves_the_best(ml100k_dir, finish_training):
    from recsys_core import tuning
    from recsys_core.datasets import fetch
    from recsys_core.runs import list_runs

    fetch("ml-100k", source=ml100k_dir)
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=300)
    at.session_state["source"] = DataSource.builtin("ml-100k").to_json()
    at.run()
    at.radio(key="train_mode").set_value("Tune").run()
    assert not at.exception, [e.message for e in at.exception]
    at.selectbox(key="tune_model").set_value("ease").run()
    space = at.dataframe[0].value
    assert list(space["setting"]) == ["l2"] and space["scale"].item() == "log"
    assert "No study" in " ".join(i.value for i in at.info)
    at.number_input(key="tune_trials").set_value(3).run()
    at.button(key="tune_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    finish_training(at)  # the search is a background job of the training service; the page reruns when it ends
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    trials = at.dataframe[-1].value
    assert len(trials) == 3 and set(trials["state"]) == {"COMPLETE"} and "l2" in trials.columns
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [s["layout"].get("title", {}).get("text", "") for s in specs]
    assert "Optimization History Plot" in titles and any("Importance" in t for t in titles)
    assert "Best so far" in " ".join(m.value for m in at.markdown)
    history = next(s for s in specs if s["layout"].get("title", {}).get("text") == "Optimization History Plot")
    assert history["layout"]["xaxis"]["dtick"] == 1 and history["layout"]["xaxis"]["tick0"] == 0
    assert "From 3 finished trials only" in " ".join(c.value for c in at.caption)
    assert "No study" not in " ".join(i.value for i in at.info)
    study_name = tuning.list_studies()[0]

    # A second tab (a fresh session) sees the stored study without running anything.
    other = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=300)
    other.session_state["source"] = DataSource.builtin("ml-100k").to_json()
    other.run()
    other.radio(key="train_mode").set_value("Tune").run()
    other.selectbox(key="tune_model").set_value("ease").run()
    assert len(other.dataframe[-1].value) == 3 and study_name in " ".join(h.value for h in other.subheader)

    at.button(key="tune_use_best").click().run()
    assert not at.exception, [e.message for e in at.exception]
    finish_training(at)
    assert not at.exception, [e.message for e in at.exception]
    assert "Saved run" in " ".join(s.value for s in at.success)
    record = list_runs()[0]
    assert record.model.name == "ease" and record.study["study_name"] == study_name and len(record.study["trials"]) == 3
    assert at.session_state["run_id"] == record.run_id


def test_a_click_during_a_search_leaves_it_running_and_cancel_keeps_the_finished_trials(ml100k_dir, monkeypatch):
    """The search runs in the background (webapp.train_jobs): another click reruns the page without stopping it,
    the page shows "Trial k of n"; Cancel stops it at its next step, says so, and the trials finished before stay
    in the stored study."""
    import threading

    from recsys_core import tuning
    from recsys_core.datasets import fetch
    from webapp import train_jobs

    fetch("ml-100k", source=ml100k_dir)
    st.cache_resource.clear()
    second_trial, gate = threading.Event(), threading.Event()
    starts = []
    original = train_jobs.TuneJob.record

    def hold_the_second_trial(self, event):
        original(self, event)
        if event.kind == "start":
            starts.append(event)
            if len(starts) == 2:  # the second trial waits here until the test lets it go on
                second_trial.set()
                gate.wait(60)
                if self.cancel.is_set():  # as the trainer's check at the next batch of an iterative model
                    raise train_jobs.TrainingCancelled("training was cancelled")

    monkeypatch.setattr(train_jobs.TuneJob, "record", hold_the_second_trial)
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=300)
    at.session_state["source"] = DataSource.builtin("ml-100k").to_json()
    at.run()
    at.radio(key="train_mode").set_value("Tune").run()
    at.selectbox(key="tune_model").set_value("ease").run()
    at.number_input(key="tune_trials").set_value(3).run()
    at.button(key="tune_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert second_trial.wait(120), "the search did not reach its second trial"
    job = train_jobs.job_for(at.session_state["train_session_key"])
    at.number_input(key="tune_timeout").set_value(600).run()  # any click: the search goes on
    assert job.running and at.button(key="tune_start").disabled
    assert "Trial 2 of 3" in " ".join(c.value for c in at.caption)
    # While it runs, its live view shows the study: no stale "No study yet" box and no second copy of the table.
    assert "No study" not in " ".join(i.value for i in at.info) and not at.subheader
    at.button(key="tune_cancel").click().run()
    assert job.cancel.is_set()
    gate.set()
    assert job.finished.wait(120), "the search did not stop after Cancel"
    at.run()  # the rerun the progress fragment asks for when the job has ended
    assert not at.exception, [e.message for e in at.exception]
    assert "was cancelled" in " ".join(w.value for w in at.warning)
    states = [t["state"] for t in tuning.trials_records(tuning.load_study(tuning.list_studies()[0]))]
    assert states.count("COMPLETE") == 1 and len(states) <= 2
    assert len(at.dataframe[-1].value) == len(states), "the stored study is shown with the finished trial"


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_search_progress_names_the_trial_and_the_time_left_with_a_fake_clock():
    from recsys_core.fit_context import TrainingEvent
    from webapp import train_ui

    clock = _Clock()
    progress = train_ui.SearchProgress(trials=10, clock=clock)
    assert progress.text(TrainingEvent("start")) == "Trial 1 of 10 · starting · estimating time left…"
    clock.now += 30  # a third of the first trial's epochs in 30 s: 90 s a trial, 10 trials
    event = TrainingEvent("epoch", epoch=10, epochs=30, loss=0.41234)
    assert progress.text(event) == "Trial 1 of 10 · epoch 10 of 30 · loss 0.4123 · about 14:30 left"
    clock.now += 30
    progress.trial_finished()  # the first trial took 60 s: 9 more of 60 s
    assert progress.text(TrainingEvent("start")) == "Trial 2 of 10 · starting · about 9:00 left"
    clock.now += 20
    staged = TrainingEvent("batch", epoch=2, epochs=5, stage="pretraining GMF", stage_index=0, stage_count=3)
    assert progress.text(staged).startswith("Trial 2 of 10 · pretraining GMF (stage 1 of 3) · epoch 2 of 5 · about 8:40 left")
    # A time limit caps it: no trial starts after it, the running one finishes.
    limited = train_ui.SearchProgress(trials=10, timeout=120, clock=clock)
    clock.now += 50
    limited.trial_finished()
    clock.now += 10
    assert limited.text(TrainingEvent("start")) == "Trial 2 of 10 · starting · about 1:40 left"


def test_an_estimate_under_a_second_is_said_in_words_not_as_a_zero_clock():
    from webapp.train_ui import estimate_text

    assert [estimate_text(s) for s in (0.0, 0.4, 0.99, 1.0, 65.2, 3725)] == [
        "under a second", "under a second", "under a second", "about 0:01", "about 1:05", "about 1:02:05",
    ]  # fmt: skip


def test_best_settings_print_to_three_significant_figures():
    from webapp import tune_ui

    assert (
        tune_ui.best_params_text({"l2": 5.547119471592122e-05, "factors": 64, "dropout": 0.5})
        == "`l2=5.55e-05`, `factors=64`, `dropout=0.5`"
    )


def test_a_redrawn_study_draws_its_figures_again_only_when_a_trial_finished(monkeypatch):
    """The live view redraws every second: the same finished trials must not fit fANOVA's importances again."""
    import optuna

    from webapp import tune_ui

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="redraw-test", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
    drawn = []
    real = tune_ui.study_figures
    monkeypatch.setattr(tune_ui, "study_figures", lambda s: drawn.append(len(s.trials)) or real(s))
    tune_ui._figures_of.clear()
    tune_ui.show_study(study, "a")
    tune_ui.show_study(study, "b")
    assert drawn == [3]
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=1)
    tune_ui.show_study(study, "c")
    assert drawn == [3, 4]
