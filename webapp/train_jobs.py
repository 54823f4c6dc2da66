"""Trainings started on the Train page run in the background: they go on while the person opens other pages.

A job is one click of **Train**: its models, trained one after the other by a daemon thread of the server process,
each inside the server's training queue (``recsys_core.jobs.TRAINING_SLOTS``: one training per browser session, at
most ``MAX_CONCURRENT_TRAININGS`` at once). Jobs are kept in a process-wide registry keyed by the browser session
(``session_key``), so a page change in the same tab finds its job again; a click no longer interrupts a training,
only **Cancel** stops it (``TrainingJob.cancel``, checked by the trainer at every batch and while queued).

The thread never calls Streamlit. It records what it is doing (the model, the trainer's latest event, the
selection's epochs for the curves, the place in the queue) and what came of it (run ids, failures). Pages read
that: the Train page draws the running model's bar and curves and every page's sidebar a one-line progress, both in
fragments refreshed every second (:func:`sidebar_progress`). The first script run of the session after the job
ended hands its results to the session (:func:`collect`): the runs trained, the failures to show once, the
active run when there was none.
"""

from __future__ import annotations

import threading
import time
import uuid
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
    """One click of Train: what it trains, where it is, and what came of it (written by its thread only)."""

    session: str
    models: list[str]
    data_name: str
    protocol: str
    seed: int
    kept_active: str | None = None  # the active run when the job started (None: the first run trained becomes it)
    current: str | None = None
    event: Any = None  # the trainer's latest TrainingEvent for the current model
    history: list[dict] = field(default_factory=list)  # the current model's selection epochs, for its curves
    queue_place: int | None = None
    time_left: Any = None  # the current model's webapp.train_ui.TimeLeft
    done: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
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


_JOBS: dict[str, TrainingJob] = {}
_LOCK = threading.Lock()


def session_key() -> str:
    """This browser session's key (kept in its session state; the queue and the registry know it by this)."""
    return st.session_state.setdefault("train_session_key", uuid.uuid4().hex)


def job_for(session: str) -> TrainingJob | None:
    with _LOCK:
        return _JOBS.get(session)


def train_in_slot(job: TrainingJob, **experiment: Any):
    """``run_experiment`` inside the server's training queue, the place in it recorded on ``job`` while waiting;
    Cancel also leaves the queue."""
    from recsys_core.experiment import run_experiment
    from recsys_core.jobs import TRAINING_SLOTS

    def waiting(place: int) -> None:
        job.queue_place = place
        if job.cancel.is_set():
            raise TrainingCancelled("training was cancelled while it waited in the queue")

    with TRAINING_SLOTS.slot(job.session, on_wait=waiting):
        job.queue_place = None
        return run_experiment(**experiment)


def _work(job: TrainingJob, data, source, protocol: str, seed: int, overrides: dict, loo_order: str, device: str, threads: int | None) -> None:
    from recsys_core.runs import load_run

    from . import map_jobs

    try:
        for name in job.models:
            if job.cancel.is_set():
                job.cancelled_model = job.cancelled_model or name
                break
            job.current, job.event, job.history, job.time_left = name, None, [], None
            try:
                result = train_in_slot(
                    job, data=data, model_name=name, protocol=protocol, seed=seed, device=device, overrides=overrides.get(name),
                    callback=job.record, cancel=job.cancel, source=source, loo_order=loo_order, threads=threads,
                )  # fmt: skip
            except TrainingCancelled:
                job.cancelled_model = name
                break
            except RecsysError as error:
                job.failures.append((f"{name} could not be trained", error, None))
                continue
            except Exception as error:  # e.g. out of memory: a message on the page, not a traceback
                advice = OUT_OF_MEMORY_ADVICE if "out of memory" in str(error).lower() else None
                job.failures.append((f"{name} stopped with an error", error, advice))
                continue
            job.run_ids.append(result.run_id)
            job.done.append(name)
            try:  # the Embeddings page should find the run's UMAP maps ready, not start them
                if map_jobs.maps_on_save():
                    map_jobs.start_maps_on_save(load_run(result.run_id))
            except RecsysError as error:
                job.failures.append(("The run was saved, but its embedding maps could not be started", error, None))
    finally:
        job.current = None
        job.finished.set()


def start_training(
    *, data, source, models: list[str], protocol: str, seed: int, overrides: dict, loo_order: str, kept_active: str | None,
    device: str = "auto", threads: int | None = None,
) -> TrainingJob:  # fmt: skip
    """Start training ``models`` in the background for this browser session; refused while its last job runs."""
    session = session_key()
    with _LOCK:
        previous = _JOBS.get(session)
        if previous is not None and previous.running:
            raise LimitError(
                "this browser session is already training a model",
                "Wait for it to finish (or cancel it) before starting another; one training per user runs at a time.",
            )
        job = TrainingJob(session, list(models), data.name, protocol, int(seed), kept_active=kept_active)
        _JOBS[session] = job
    threading.Thread(
        target=_work,
        args=(job, data, source, protocol, int(seed), overrides, loo_order, device, threads),
        name=f"train-{session[:8]}",
        daemon=True,
    ).start()
    return job


def current_job() -> TrainingJob | None:
    """This session's job: running, or finished and not yet collected."""
    job = job_for(session_key())
    return job if job is not None and not job.collected else None


def collect() -> TrainingJob | None:
    """Hand a finished job's results to the session, once: the runs trained (newest first), the failures to show
    above the runs, the active run when there was none, and a notice of a cancelled model. Returns the job."""
    job = current_job()
    if job is None or job.running:
        return None
    job.collected = True
    results = st.session_state.setdefault("train_results", [])
    for run_id in job.run_ids:
        results.insert(0, run_id)
    st.session_state["train_failures"] = list(job.failures)
    if job.kept_active is None and job.run_ids and "run_id" not in st.session_state:
        st.session_state["run_id"] = job.run_ids[0]  # no active run to keep: the first run trained becomes it
    if job.cancelled_model:
        st.session_state["train_cancelled"] = (
            f"Training was cancelled while {job.cancelled_model} was training; nothing of it was saved."
            + (f" Finished and saved before that: {', '.join(job.done)}." if job.done else "")
        )
    elif job.run_ids:
        st.session_state["train_finished"] = f"Training finished: {len(job.run_ids)} run{'s' if len(job.run_ids) > 1 else ''} saved."
    return job


def status_line(job: TrainingJob) -> str:
    """The job in one line: the model and where it is ("GMF (1 of 2) · epoch 6/20 · … left")."""
    from .train_ui import describe_event

    if job.queue_place is not None:
        return f"{job.position()} · waiting, number {job.queue_place} in the server's queue"
    if job.event is None:
        return f"{job.position()} · starting…"
    return f"{job.position()} · {describe_event(job.event, job.time_left)}"


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
    st.markdown(f"**Training** on {plain(job.data_name)}")
    st.progress(job.event.fraction if job.event is not None else 0.0, text=status_line(job))


def sidebar_progress() -> None:
    """Every page's sidebar: the running training's progress, redrawn every second; a notice when it ended."""
    collect()
    for key in ("train_finished", "train_cancelled"):
        if message := st.session_state.get(key):
            st.sidebar.caption(message)
    if current_job() is not None:
        with st.sidebar:
            _sidebar_line()
