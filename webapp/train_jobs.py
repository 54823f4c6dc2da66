"""The app's one training service: every fit the app starts (Train, the Home page's first fit, Tune's search and its
"Use best") goes through here.

Written once here: taking the server's training queue (``recsys_core.jobs.TRAINING_SLOTS``: one training per
browser session, at most ``MAX_CONCURRENT_TRAININGS`` at once; :func:`queue_slot`), what follows a saved run (its
UMAP maps started, webapp/map_jobs.py: :func:`after_save`), and what the session learns of it afterwards (the runs
trained, the active run, the failures and notices: :func:`collect`).

The Train page's few-second speed probe (:func:`measure`) takes the queue too, in the page's script. A job is one
click of **Train**, **Tune** or **Use best**: a daemon thread of the server process, kept in a
process-wide registry keyed by the browser session (``session_key``), so a page change in the same tab finds its job
again; a click no longer interrupts a training or a search, only **Cancel** stops it (``TrainingJob.cancel``,
checked by the trainer at every batch and while queued).

The thread never calls Streamlit. It records what it is doing (the model, the trainer's latest event, the
selection's epochs for the curves, the search's trials, the place in the queue) and what came of it (run ids,
failures). Pages read that: the Train page draws the running model's bar and curves (Tune mode the search's line
"Trial k of n · about m:ss left") and every page's sidebar a one-line progress, in fragments refreshed every second
(:func:`sidebar_progress`). The first script run of the session after the job ended hands its results to the
session (:func:`collect`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from recsys_core.errors import LimitError, RecsysError, TrainingCancelled
from recsys_core.protocols import get_protocol

from .safe_output import plain

#: How often the Train page's progress and the sidebar's line redraw while a job runs (seconds).
REFRESH_SECONDS = 1.0
OUT_OF_MEMORY_ADVICE = "Lower the batch size or the embedding size, or choose a smaller data set."


@dataclass
class TrainingJob:
    """One click of Train (or Use best): what it trains, where it is, and what came of it (written by its thread only)."""

    session: str
    models: list[str]
    data_name: str
    protocol: str
    seed: int
    kept_active: str | None = None  # the active run when the job started (None: the first run trained becomes it)
    activate: bool = False  # the first run saved becomes the active run (Use best: the person asked for that run)
    current: str | None = None
    event: Any = None  # the trainer's latest TrainingEvent for the current model
    history: list[dict] = field(default_factory=list)  # the current model's selection epochs, for its curves
    queue_place: int | None = None
    time_left: Any = None  # the current model's webapp.train_ui.TimeLeft
    done: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    test_metrics: dict[str, dict] = field(default_factory=dict)  # run id -> its test metrics
    failures: list[tuple[str, BaseException, str | None]] = field(default_factory=list)
    cancelled_model: str | None = None
    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    collected: bool = False

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def record(self, event) -> None:
        """The trainer's callback: keep the latest event, the selection's epochs and the time left."""
        if self.time_left is None:
            from .train_ui import TimeLeft

            self.time_left = TimeLeft(n_tests=len(get_protocol(self.protocol).companions))
        self.time_left.update(event)
        self.event = event
        if event.kind == "epoch" and getattr(event, "phase", "selection") == "selection":
            self.history.append({"epoch": event.epoch, "loss": event.loss, **event.metrics})

    def position(self) -> str:
        """ "GMF (2 of 3)" """
        index = len(self.done) + len(self.failures) + 1
        return f"{self.current or self.models[0]} ({min(index, len(self.models))} of {len(self.models)})"

    def status(self) -> str:
        """The job in one line: the model and where it is ("GMF (1 of 2) · epoch 6/20 · … left")."""
        from .train_ui import describe_event

        if self.queue_place is not None:
            return f"{self.position()} · waiting, number {self.queue_place} in the server's queue"
        if self.event is None:
            return f"{self.position()} · starting…"
        return f"{self.position()} · {describe_event(self.event, self.time_left)}"


@dataclass
class TuneJob(TrainingJob):
    """One click of Tune: an Optuna search of ``trials`` more trials on validation, stored in the study ``study``."""

    study: str = ""
    trials: int = 0
    timeout: float | None = None
    search: Any = None  # webapp.train_ui.SearchProgress: the trial and the time left

    @property
    def finished_trials(self) -> int:
        return self.search.finished

    def record(self, event) -> None:
        self.event = event

    def trial_finished(self, study) -> None:  # run_study's on_trial
        self.search.trial_finished()

    def status(self) -> str:
        """ "Trial 2 of 20 · epoch 3 of 50 · loss 0.41 · about 4:10 left" """
        if self.queue_place is not None:
            return f"Search for {self.models[0]} · waiting, number {self.queue_place} in the server's queue"
        if self.event is None:
            return f"Trial {min(self.finished_trials + 1, self.trials)} of {self.trials} · starting · estimating time left…"
        return self.search.text(self.event)


_JOBS: dict[str, TrainingJob] = {}
_LOCK = threading.Lock()


def session_key() -> str:
    """This browser session's key (kept in its session state; the queue and the registry know it by this)."""
    return st.session_state.setdefault("train_session_key", uuid.uuid4().hex)


def job_for(session: str) -> TrainingJob | None:
    with _LOCK:
        return _JOBS.get(session)


# -- written once: the queue, and what follows a saved run ----------------------------------------------------------------
@contextmanager
def queue_slot(session: str, job: TrainingJob | None = None) -> Iterator[None]:
    """Hold the server's training queue for ``session`` while the block runs; a job's place in the queue is recorded on
    it while it waits, and its Cancel also leaves the queue."""
    from recsys_core.jobs import TRAINING_SLOTS

    def waiting(place: int) -> None:
        if job is not None:
            job.queue_place = place
            if job.cancel.is_set():
                raise TrainingCancelled("training was cancelled while it waited in the queue")

    with TRAINING_SLOTS.slot(session, on_wait=waiting if job is not None else None):
        if job is not None:
            job.queue_place = None
        yield


def train_in_slot(job: TrainingJob, **experiment: Any):
    """``run_experiment`` inside the server's training queue (:func:`queue_slot`)."""
    from recsys_core.experiment import run_experiment

    with queue_slot(job.session, job):
        return run_experiment(**experiment)


def after_save(run_id: str) -> RecsysError | None:
    """What follows every run the app saves: its UMAP maps start in the background (the Embeddings page should find
    them ready, not start them). Returns the error when they could not be started (the run itself is saved)."""
    from recsys_core.runs import load_run

    from . import map_jobs

    try:
        if map_jobs.maps_on_save():
            map_jobs.start_maps_on_save(load_run(run_id))
    except RecsysError as error:
        return error
    return None


def _saved(job: TrainingJob, name: str, result) -> None:
    job.run_ids.append(result.run_id)
    # A search's run (recsys_core.tuning.TuneResult) carries its test metrics; an experiment's are in its test result.
    job.test_metrics[result.run_id] = dict(getattr(result, "test_metrics", None) or result.test.metrics)
    job.done.append(name)
    if (error := after_save(result.run_id)) is not None:
        job.failures.append(("The run was saved, but its embedding maps could not be started", error, None))


def _fit_one(job: TrainingJob, name: str, fit: Callable[[], Any]) -> bool:
    """Run one model's ``fit`` (which saves a run); record what came of it. False: the job was cancelled."""
    job.current, job.event, job.history, job.time_left = name, None, [], None
    try:
        result = fit()
    except TrainingCancelled:
        job.cancelled_model = name
        return False
    except RecsysError as error:
        job.failures.append((f"{name} could not be trained", error, None))
        return True
    except Exception as error:  # e.g. out of memory: a message on the page, not a traceback
        advice = OUT_OF_MEMORY_ADVICE if "out of memory" in str(error).lower() else None
        job.failures.append((f"{name} stopped with an error", error, advice))
        return True
    _saved(job, name, result)
    return True


def _start(job: TrainingJob, work: Callable[[], None]) -> TrainingJob:
    """Register ``job`` for its session and run ``work`` in a daemon thread; refused while the session's last job runs."""
    with _LOCK:
        previous = _JOBS.get(job.session)
        if previous is not None and previous.running:
            raise LimitError(
                "this browser session is already training a model",
                "Wait for it to finish (or cancel it) before starting another; one training per user runs at a time.",
            )
        _JOBS[job.session] = job

    def run() -> None:
        try:
            work()
        finally:
            job.current = None
            job.finished.set()

    threading.Thread(target=run, name=f"train-{job.session[:8]}", daemon=True).start()
    return job


# -- the jobs ---------------------------------------------------------------------------------------------------------------
def start_training(
    *, data, source, models: list[str], protocol: str, seed: int, overrides: dict, loo_order: str, kept_active: str | None,
    device: str = "auto", threads: int | None = None,
) -> TrainingJob:  # fmt: skip
    """Start training ``models`` one after the other in the background for this browser session."""
    job = TrainingJob(session_key(), list(models), data.name, protocol, int(seed), kept_active=kept_active)

    def work() -> None:
        for name in job.models:
            if job.cancel.is_set():
                job.cancelled_model = job.cancelled_model or name
                return
            fit = lambda name=name: train_in_slot(  # noqa: E731
                job, data=data, model_name=name, protocol=protocol, seed=int(seed), device=device, overrides=overrides.get(name),
                callback=job.record, cancel=job.cancel, source=source, loo_order=loo_order, threads=threads,
            )  # fmt: skip
            if not _fit_one(job, name, fit):
                return

    return _start(job, work)


def start_tuning(*, data, model: str, protocol: str, trials: int, timeout: int | None, seed: int, epochs: int | None,
                 device: str = "auto") -> TuneJob:  # fmt: skip
    """Start an Optuna search of ``trials`` more trials in the background (``recsys_core.tuning.run_study``): it takes
    the queue like a training; its trials are stored as they finish, so a cancelled search keeps them."""
    from recsys_core import tuning

    from .train_ui import SearchProgress

    tuning.list_studies()  # read here first: a damaged or unreadable store is said at once on the page, not by the job
    job = TuneJob(session_key(), [model], data.name, protocol, int(seed), study=tuning.study_name(data, model, protocol, seed),
                  trials=int(trials), timeout=timeout or None, search=SearchProgress(int(trials), timeout or None))  # fmt: skip

    def work() -> None:
        job.current = model
        try:
            with queue_slot(job.session, job):
                job.search.restart()  # the time left counts from the search's start, not from the queue's
                tuning.run_study(data, model, protocol, trials=job.trials, timeout=job.timeout, seed=int(seed), device=device,
                                 epochs=epochs, on_trial=job.trial_finished, callback=job.record, cancel=job.cancel)  # fmt: skip
            if job.cancel.is_set():  # a trial that cannot stop midway (a closed-form fit) finished, then the search stopped
                job.cancelled_model = model
        except TrainingCancelled:
            job.cancelled_model = model
        except RecsysError as error:
            job.failures.append(("The search stopped", error, None))

    return _start(job, work)


def start_best(*, data, source, model: str, protocol: str, seed: int, epochs: int | None, device: str = "auto") -> TrainingJob:
    """Train a study's best configuration in the background, test it once and save the run, which becomes active."""
    from recsys_core import tuning

    name = tuning.study_name(data, model, protocol, seed)
    job = TrainingJob(session_key(), [model], data.name, protocol, int(seed), activate=True)

    def fit():
        with queue_slot(job.session, job):
            return tuning.train_best(tuning.load_study(name), data, model, protocol, seed=int(seed), device=device, epochs=epochs,
                                     source=source, callback=job.record, cancel=job.cancel)  # fmt: skip

    return _start(job, lambda: _fit_one(job, model, fit))


def fit_first_model(data, source, session: str, callback=None) -> str:
    """The Home page's first fit: the newest run on ``data``, else EASE fitted in the server's queue and saved
    (``train_ui.auto_fit``), with what follows a saved run. Runs in the caller's thread; returns the run id."""
    from .train_ui import auto_fit

    with queue_slot(session):
        run_id, fitted = auto_fit(data, source, callback=callback)
    if fitted:
        after_save(run_id)  # the maps are a bonus: a failure to start them must not hide the first model
    return run_id


def measure(models: list[str], data, protocol: str, overrides: dict, device: str = "auto") -> dict[str, float]:
    """The Train page's speed probe: each model trained a few seconds here (``train_ui.probe_seconds``, nothing
    saved), in the server's queue like any training; returns model -> the whole run's estimated seconds. Runs in
    the page's script, a spinner per model; a model that cannot be measured stops the page with its error."""
    from .errors import friendly_errors
    from .train_ui import probe_seconds

    measured = {}
    with friendly_errors("The models could not be measured"), queue_slot(session_key()):  # refused while a job runs
        for name in models:
            with st.spinner(f"Measuring {name}…"), friendly_errors(f"{name} could not be measured"):
                measured[name] = probe_seconds(name, data, protocol, overrides.get(name), device=device)
    return measured


def current_job() -> TrainingJob | None:
    """This session's job: running, or finished and not yet collected."""
    job = job_for(session_key())
    return job if job is not None and not job.collected else None


def collect() -> TrainingJob | None:
    """Hand a finished job's results to the session, once: the runs trained (newest first), the failures to show
    above the runs, the active run (the run Use best trained; when there was none, the first run trained), and a
    notice of what came of it. Returns the job."""
    job = current_job()
    if job is None or job.running:
        return None
    job.collected = True
    st.session_state["train_failures"] = list(job.failures)
    if isinstance(job, TuneJob):
        if job.cancelled_model:
            st.session_state["tune_cancelled"] = (
                f"The search for {job.cancelled_model} was cancelled; the trials that finished are kept in the study."
            )
        return job
    results = st.session_state.setdefault("train_results", [])
    for run_id in job.run_ids:
        results.insert(0, run_id)
    if job.run_ids and (job.activate or (job.kept_active is None and "run_id" not in st.session_state)):
        st.session_state["run_id"] = job.run_ids[0]
    if job.activate and job.run_ids:  # Use best: what its run came to, said once in Tune mode
        metrics = job.test_metrics[job.run_ids[0]]
        st.session_state["tune_saved"] = f"Saved run {job.run_ids[0]} (the best configuration, tested once): " + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if "@10" in k or k in ("RMSE", "Recall@20")
        )
    if job.cancelled_model:
        st.session_state["train_cancelled"] = (
            f"Training was cancelled while {job.cancelled_model} was training; nothing of it was saved."
            + (f" Finished and saved before that: {', '.join(job.done)}." if job.done else "")
        )
    elif job.run_ids:
        st.session_state["train_finished"] = f"Training finished: {len(job.run_ids)} run{'s' if len(job.run_ids) > 1 else ''} saved."
    return job


def request_cancel() -> None:
    job = current_job()
    if job is not None:
        job.cancel.set()


@st.fragment(run_every=REFRESH_SECONDS)
def _sidebar_line() -> None:
    job = current_job()
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")  # the page collects the results and says what came of the training
    what = "Tuning" if isinstance(job, TuneJob) else "Training"
    st.markdown(f"**{what}** on {plain(job.data_name)}")
    fraction = job.event.fraction if job.event is not None else 0.0
    st.progress(min(1.0, max(0.0, fraction)), text=job.status())


def sidebar_progress() -> None:
    """Every page's sidebar: the running training's progress, redrawn every second; a notice when it ended."""
    collect()
    for key in ("train_finished", "train_cancelled"):
        if message := st.session_state.get(key):
            st.sidebar.caption(message)
    if current_job() is not None:
        with st.sidebar:
            _sidebar_line()


# -- the job's progress on the page ----------------------------------------------------------------------------------
@st.fragment(run_every=REFRESH_SECONDS)
def show_progress() -> None:
    """The session's training as it goes: the models saved, the running one's progress bar and
    validation curves, its place in the server's queue; redrawn every second, and the page rerun when it ends."""
    from .train_ui import clock_text, history_figure

    job = current_job()
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")  # the page opener collects the results; the runs list then shows them
    with st.container(border=True):
        what = "Tuning" if isinstance(job, TuneJob) else "Training"
        st.markdown(
            f"**{what} on {plain(job.data_name)}** · {plain(job.protocol)} · seed {job.seed} · "
            f"{clock_text(time.monotonic() - job.started)} since it started. It goes on while you open other pages."
        )
        if job.done:
            st.caption("Saved: " + ", ".join(job.done))
        if job.cancel.is_set():
            st.caption("Cancelling at the next step…")
        st.progress(job.event.fraction if job.event is not None else 0.0, text=job.status())
        if job.history:
            st.plotly_chart(history_figure(list(job.history)), key=f"train_job_curves_{job.current}_{len(job.history)}")
