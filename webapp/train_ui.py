"""Helpers of the Train page (and of the home page's first fit): settings forms, live curves, results, time left.

The Train page's trainings and Tune mode's searches run in the background (``webapp.train_jobs``, which draws
their progress); this module has what that progress says: a model's time left over every phase
(:class:`TimeLeft`), its progress line (:func:`describe_event`), a search's line (:class:`SearchProgress`), and
before a run its expected time (:func:`expected_seconds` from earlier runs, :func:`probe_seconds` measured).
Nothing half-done is kept: ``run_experiment`` saves a run only at its very end and ``save_run`` writes into a
temporary folder renamed into place.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from recsys_core.errors import ModelError
from recsys_core.protocols import PROTOCOLS, get_protocol
from webapp.safe_output import plain

if TYPE_CHECKING:
    from recsys_core.runs import RunRecord

#: Validation curves drawn when the trainer reports them (per protocol, whichever is present).
CURVE_METRICS = ("HR@10", "NDCG@10", "Recall@20", "NDCG@100", "RMSE")
#: Models that fit in closed form in seconds on small data; the home page fits the first that applies.
DEFAULT_MODEL = "ease"
#: The home page fits its first model only on data this small (EASE inverts an items × items matrix).
AUTO_FIT_MAX_ITEMS = 5000

#: The Train page's protocol choices and their help, from the registry (recsys_core.protocols).
PROTOCOL_HELP = {name: protocol.help for name, protocol in PROTOCOLS.items()}


# -- models -----------------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def model_catalogue() -> dict[str, dict]:
    """Every registered model: description, flags and settings, or why it cannot be used here."""
    from recsys_core.models import MODEL_NAMES, config_fields, model_class

    out: dict[str, dict] = {}
    for name in MODEL_NAMES:
        try:
            cls = model_class(name)
            out[name] = {
                "description": cls.description,
                "predicts_ratings": bool(cls.predicts_ratings),
                "ranks_items": bool(cls.ranks_items),
                "iterative": bool(cls.iterative),
                "fields": config_fields(name),
            }
        except (ImportError, AttributeError, ModelError) as error:
            out[name] = {"error": f"{type(error).__name__}: {error}"}
    return out


def _step(value: float) -> float:
    if not value:
        return 0.1
    return float(10 ** math.floor(math.log10(abs(value))))


def _bounds(name: str, field: str) -> tuple[float | None, float | None]:
    """The documented range of a model's setting (the bounds its config field declares, read by
    ``recsys_core.limits.setting_bounds``), so the widget cannot leave it."""
    from recsys_core.limits import setting_bounds
    from recsys_core.models import model_class

    return setting_bounds(field, model_class(name).Config) or (None, None)


def settings_form(name: str, fields: list[dict]) -> dict[str, Any]:
    """One widget per setting (defaults from the model's config, docs as help); returns the changes."""
    overrides: dict[str, Any] = {}
    cells = st.columns(3)
    for i, spec in enumerate(fields):
        field, default, doc = spec["name"], spec["default"], spec["doc"] or None
        key = f"train_{name}_{field}"
        cell = cells[i % 3]
        if isinstance(default, bool):
            value = cell.checkbox(field, value=default, key=key, help=doc)
            if value != default:
                overrides[field] = value
        elif isinstance(default, int):
            low, high = _bounds(name, field)
            value = cell.number_input(
                field, value=default, step=1, key=key, help=doc,
                min_value=int(low) if low is not None else None, max_value=int(high) if high is not None else None,
            )  # fmt: skip
            if int(value) != default:
                overrides[field] = int(value)
        elif isinstance(default, float):
            low, high = _bounds(name, field)
            value = cell.number_input(
                field, value=default, step=_step(default), format="%g", key=key, help=doc,
                min_value=float(low) if low is not None else None, max_value=float(high) if high is not None else None,
            )  # fmt: skip
            if float(value) != default:
                overrides[field] = float(value)
        elif default is None:
            value = cell.text_input(field, value="auto", key=key, help=(doc or "") + "  \n'auto': the model chooses.")
            if value.strip().lower() not in ("", "auto", "none"):
                overrides[field] = value.strip()
        elif isinstance(default, (tuple, list)):
            text = ", ".join(str(v) for v in default)
            value = cell.text_input(field, value=text, key=key, help=(doc or "") + "  \nComma-separated.")
            if value.strip() != text:
                overrides[field] = value.strip()  # parsed by the model's config, which knows the type
        else:
            value = cell.text_input(field, value=str(default), key=key, help=doc)
            if value != str(default):
                overrides[field] = value
    return overrides


class _Flags:
    """A catalogue entry read as a model class's flags (what ``Protocol.supports`` asks)."""

    def __init__(self, entry: dict):
        self.predicts_ratings = bool(entry.get("predicts_ratings"))
        self.ranks_items = bool(entry.get("ranks_items", True))


def plan_problems(models: list[str], protocol: str, data, catalogue: dict, overrides: dict[str, dict]) -> list[str]:
    """Why the chosen models / protocol / settings cannot be trained on this data (empty: fine)."""
    from recsys_core.models import create_model

    problems = []
    if not models:
        problems.append("Choose at least one model.")
    spec = get_protocol(protocol)
    wrong = [m for m in models if not spec.supports(_Flags(catalogue[m]))]
    if wrong:
        problems.append(spec.unsupported_models_message(wrong))
    problem = spec.data_problem(has_ratings=data.rating is not None)
    if problem:
        problems.append(problem)
    from recsys_core.errors import LimitError
    from recsys_core.limits import check_memory

    for name in models:
        try:
            model = create_model(name, **overrides.get(name, {}))
            check_memory(name, data.n_users, data.n_items, len(data), model.config)  # refused before the click, not after
        except (ModelError, LimitError) as error:
            problems.append(f"{name}: {error.message}" + (f" {error.hint}" if error.hint else ""))
        except (TypeError, ValueError) as error:
            problems.append(f"{name}: a setting is not valid: {error}")
    return problems


# -- live view ------------------------------------------------------------------------------------------------------
def history_figure(history: list[dict]):
    """Training loss (left) and validation metrics (right) per epoch."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = pd.DataFrame(history)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation"))
    if "loss" in frame and frame["loss"].notna().any():
        fig.add_trace(go.Scatter(x=frame["epoch"], y=frame["loss"], mode="lines+markers", name="loss"), row=1, col=1)
    for metric in CURVE_METRICS:
        if metric in frame and frame[metric].notna().any():
            fig.add_trace(go.Scatter(x=frame["epoch"], y=frame[metric], mode="lines+markers", name=metric), row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1 if len(frame) <= 20 else None)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def clock_text(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def estimate_text(seconds: float) -> str:
    """An estimated duration in words: "about 1:05", or "under a second" where the clock would read "about 0:00"."""
    return "under a second" if seconds < 1 else f"about {clock_text(seconds)}"


def timing_text(event) -> str:
    """Elapsed time and an estimate of the time left from the overall fraction done (each stage's
    epoch budget counts; early stopping can only make the real time shorter)."""
    elapsed = f"{clock_text(event.elapsed)} elapsed"
    fraction = event.fraction
    if event.kind == "end" or fraction >= 1.0:
        return elapsed
    if fraction < 0.02 or event.elapsed < 1.0:
        return f"{elapsed} · estimating time left…"
    return f"{elapsed} · {estimate_text(event.elapsed * (1 - fraction) / fraction)} left"


class TimeLeft:
    """The time left of one model's whole run, every phase counted: selection on validation, the refit on
    train + validation, and each test pass; from the trainer's events and a clock (a fake one in the tests).

    Selection: its seconds per epoch, measured from its first step, times the epochs of its budget left (early
    stopping only shortens it). The refit trains for the selection's best epoch, taken as the best so far plus half
    the epochs left, at the selection's seconds per epoch; a closed-form refit takes
    about half the selection (which fitted several candidates). A test pass is taken to cost a tenth of a selection epoch (or of a closed-form fit) until the first one is timed.
    Tested to stay within a factor of two of the real time left (tests/test_app_home_data_train.py).
    """

    def __init__(self, n_tests: int = 1, clock=time.monotonic):
        self.clock, self.n_tests = clock, n_tests
        self.phase: str | None = None
        self.phase_started = clock()
        self.fraction = 0.0
        self.budget = 0  # the selection's epoch budget; 0: a closed-form fit
        self.epoch_seconds: float | None = None
        self.best_epoch = 0
        self.epochs_done = 0
        self.selection_seconds: float | None = None
        self.test_index, self.test_seconds = 0, None
        self.phase_started_test = self.phase_started
        self.origin: tuple[float, float] | None = None  # (time, fraction) of the phase's first step

    def update(self, event) -> None:
        now = self.clock()
        phase = getattr(event, "phase", "selection")
        if phase != self.phase:
            if self.phase == "selection" and self.selection_seconds is None:
                self.selection_seconds = now - self.phase_started
            self.phase, self.phase_started = phase, now
            self.origin = None
        self.fraction = event.fraction
        if event.kind in ("batch", "epoch") and self.origin is None:
            # Speeds are measured from the first step on: what comes before it (building the model, moving the
            # data to the device, the first step's own warm-up) took several epochs' worth in the demo's first second.
            self.origin = (now, event.fraction)
        if phase == "selection":
            self.budget = event.total_epochs or event.epochs
            if self.origin is not None and self.budget and event.fraction - self.origin[1] >= 0.02:
                self.epoch_seconds = (now - self.origin[0]) / ((event.fraction - self.origin[1]) * self.budget)
            if event.kind == "epoch":
                self.epochs_done = event.stage_offset + event.epoch
            self.best_epoch = event.best_epoch or self.best_epoch
            if event.kind == "end":
                self.selection_seconds = now - self.phase_started
        elif phase == "test" and event.kind == "start":
            if self.test_index == 1 and self.test_seconds is None:
                self.test_seconds = now - self.phase_started_test
            self.test_index += 1
            self.phase_started_test = now

    def _test_each(self) -> float:
        """The time of a test pass still to come: a tenth of a selection epoch (of a closed-form fit) until one
        has been timed; then three times the timed one (the full ranking, leave-one-out's second pass, scores every
        item: two to three times the sampled pass on ml-100k)."""
        if self.test_seconds is not None:
            return 3.0 * self.test_seconds
        return 0.1 * (self.epoch_seconds if self.epoch_seconds is not None else (self.selection_seconds or 0.0))

    def seconds_left(self) -> float | None:
        """Seconds until the model is trained, refitted and tested; None while there is nothing to go by."""
        now = self.clock()
        in_phase = now - self.phase_started
        if self.phase == "selection":
            if self.epoch_seconds is None or not self.epochs_done:
                return None  # an epoch's time includes its validation pass: measured once one has ended
            left = self.epoch_seconds * self.budget * (1 - self.fraction)
            # The refit trains for the selection's best epoch: the best so far, or a later one (half the epochs left).
            best = max(1, self.best_epoch or self.epochs_done)
            refit = self.epoch_seconds * (best + max(0, self.budget - self.epochs_done) / 2)
            return left + refit + self.n_tests * self._test_each()
        if self.phase == "refit":
            if self.budget and self.epoch_seconds is not None:
                if self.origin is not None and self.fraction - self.origin[1] >= 0.02:
                    left = (now - self.origin[0]) * (1 - self.fraction) / (self.fraction - self.origin[1])
                else:
                    left = max(0.0, self.epoch_seconds * max(1, self.best_epoch or self.epochs_done) - in_phase)
            elif self.selection_seconds is not None:
                left = max(0.0, 0.5 * self.selection_seconds - in_phase)
            else:
                return None
            return left + self.n_tests * self._test_each()
        if self.phase == "test" and self.test_index:
            running = max(0.0, self._test_each() - (now - self.phase_started_test))
            return running + max(0, self.n_tests - self.test_index) * self._test_each()
        return None

    def text(self) -> str | None:
        left = self.seconds_left()
        return None if left is None else f"{estimate_text(left)} left in all (refit and tests included)"


def _stage_prefix(event) -> str:
    """ "pretraining GMF (stage 1 of 3) · " for fits in stages; nothing for a fit in one stage."""
    if getattr(event, "stage_count", 1) > 1 and event.stage:
        return f"{event.stage} (stage {event.stage_index + 1} of {event.stage_count}) · "
    return ""


def describe_event(event, time_left: TimeLeft | None = None) -> str:
    """The progress line: what runs (stage, epoch k of n within it, batch), then elapsed and time left. With
    ``time_left`` (fed the same events) the time left covers the whole run: selection, refit and the tests."""
    stage = _stage_prefix(event)
    phase = getattr(event, "phase", "selection")
    if time_left is None:
        timing = timing_text(event)
        after = ""
    else:
        left = time_left.text() or "estimating time left…"
        timing = f"{clock_text(event.elapsed)} elapsed · {left}" if event.kind in ("batch", "epoch") else left
        after = f" · {left}"
    if phase == "split":
        return f"Splitting {event.message}…"
    if phase == "test":
        return f"Testing on the held-out data: {event.message}…{after}"
    if phase == "refit":
        if event.kind == "end":
            return f"Refitted on train + validation; testing on the held-out data…{after}"
        if event.kind in ("batch", "epoch") and event.epochs:
            return f"refit on train + validation · {stage}epoch {event.epoch}/{event.epochs} · {timing}"
        return f"Refitting the chosen configuration on train + validation…{after}"
    if event.kind == "start":
        return f"Training {event.message}…"
    if event.kind == "batch":
        return f"{stage}epoch {event.epoch}/{event.epochs} · batch {event.batch}/{event.batches} · {timing}"
    if event.kind == "epoch":
        parts = [f"{stage}epoch {event.epoch}/{event.epochs}"]
        if event.loss is not None:
            parts.append(f"loss {event.loss:.4f}")
        parts += [f"val {k} {event.metrics[k]:.4f}" for k in CURVE_METRICS if k in event.metrics]
        parts.append(timing)
        return " · ".join(parts)
    return f"Training done in {clock_text(event.elapsed)}; refitting and testing…{after}"


class SearchProgress:
    """The running search on one line: "Trial 2 of 20 · epoch 3 of 50 · loss 0.41 · about 4:10 left".

    The time left comes from the trials finished so far (their mean time, pruned ones included, times the trials
    to go, less the running trial's time), before the first one from the running trial's own fraction done; a
    time limit caps it (no trial starts after the limit, the running one finishes). Kept by the search's job
    (webapp.train_jobs.TuneJob), whose thread counts the trials; the page reads :meth:`text`.
    """

    def __init__(self, trials: int, timeout: float | None = None, clock=time.monotonic):
        self.trials, self.timeout, self.clock = trials, timeout, clock
        self.finished = 0
        self.restart()

    def restart(self) -> None:
        """The search begins now (after its wait in the queue)."""
        self.started = self.trial_started = self.clock()

    def trial_finished(self) -> None:
        self.finished += 1
        self.trial_started = self.clock()

    def time_left(self, fraction: float) -> float | None:
        """Seconds until the search ends, or None while there is nothing to estimate from."""
        now = self.clock()
        in_trial = now - self.trial_started
        if self.finished:
            per_trial = (self.trial_started - self.started) / self.finished
        elif fraction >= 0.05 and in_trial >= 1.0:
            per_trial = in_trial / fraction
        else:
            return None
        left = max(0.0, per_trial * (self.trials - self.finished) - in_trial)
        if self.timeout:
            left = min(left, max(0.0, self.timeout - (now - self.started)) + max(0.0, per_trial - in_trial))
        return left

    def text(self, event) -> str:
        trial = f"Trial {min(self.finished + 1, self.trials)} of {self.trials}"
        if event.kind == "start":
            what = "starting"
        elif event.kind == "end":
            what = "scoring on validation"
        elif event.epochs:
            stage = (
                f"{event.stage} (stage {event.stage_index + 1} of {event.stage_count}) · " if event.stage_count > 1 and event.stage else ""
            )
            what = f"{stage}epoch {event.epoch} of {event.epochs}" + (f" · loss {event.loss:.4g}" if event.loss is not None else "")
        else:
            what = "fitting"
        left = self.time_left(event.fraction)
        return f"{trial} · {what} · " + (f"{estimate_text(left)} left" if left is not None else "estimating time left…")


# -- results -----------------------------------------------------------------------------------------------------------
def metrics_table(metrics: dict, intervals: dict) -> pd.DataFrame:
    rows = []
    for name, value in metrics.items():
        low, high = intervals.get(name, (None, None))
        rows.append({"metric": name, "value": value, "95% low": low, "95% high": high})
    return pd.DataFrame(rows).set_index("metric")


def render_run(record: RunRecord, active: bool) -> None:
    """A saved run: what was trained how, its test metrics with 95% bootstrap intervals and its curves."""
    from .run_labels import run_label

    title = f"{plain(run_label(record))} · {plain(record.protocol)}"
    history = record.history
    with st.container(border=True):
        st.markdown(f"**{title}**" + ("  — active run" if active else ""))
        facts = [f"run {record.run_id}", f"device {history.device}", f"fit {history.fit_seconds:.1f} s", f"seed {record.seed}"]
        if history.has_loss:
            facts.insert(3, f"epochs {history.epochs_run or 0}" + (f" (best {history.best_epoch})" if history.best_epoch else ""))
        else:
            facts.insert(3, "closed form")
        if history.stopped_early:
            facts.append("stopped early")
        if record.refit.done:
            facts.append("refitted on train + validation" + (f" for {record.refit.epochs} epochs" if record.refit.epochs else ""))
        else:
            facts.append("not refitted: tested as selected on validation")
        if record.tuning:
            facts.append("tuned on validation: " + ", ".join(f"{k}={v}" for k, v in record.tuning.get("chosen", {}).items()))
        st.caption(" · ".join(facts))
        note = record.own_test.meaning_note() if record.own_test is not None else None
        if note:
            st.warning(plain(note))
        table = metrics_table(record.scores.values, record.scores.intervals)
        left, right = st.columns([2, 3])
        with left:
            st.markdown(f"Test metrics ({record.protocol}; headline {record.headline}), with 95% bootstrap intervals over users:")
            st.dataframe(table.style.format("{:.4f}", na_rep="—"), width="stretch")
        with right:
            epochs = [dict(h) for h in history.epochs]
            if history.has_loss:
                st.plotly_chart(history_figure(epochs), key=f"train_result_chart_{record.run_id}")
            elif epochs:
                shown = ", ".join(f"{k} {epochs[0][k]:.4f}" for k in CURVE_METRICS if k in epochs[0])
                st.caption(f"Closed-form fit, no epochs. Validation: {shown or '—'}.")
        for protocol, result in record.test.items():
            if protocol == record.protocol:
                continue
            with st.expander(f"Same test split, {protocol}"):
                other = metrics_table(result.scores.values, result.scores.intervals)
                st.dataframe(other.style.format("{:.4f}", na_rep="—"), width="stretch")


# -- the home page's first model ----------------------------------------------------------------------------------------
def can_auto_fit(data) -> bool:
    return 2 <= data.n_items <= AUTO_FIT_MAX_ITEMS and data.n_users >= 2


def auto_fit(data, source, callback=None) -> tuple[str, bool]:
    """The newest run on ``data``, fitting EASE first if there is none (once per process at a time); and whether it
    was fitted now. The Home page calls it through ``train_jobs.fit_first_model`` (the queue, the maps).

    ``callback`` receives the trainer's events (the home page shows them as progress)."""
    from recsys_core.experiment import run_experiment

    from .data_ui import bootstrap_lock
    from .loading import runs_for

    with bootstrap_lock():
        runs = runs_for(data)
        if runs:
            return runs[0].run_id, False
        result = run_experiment(data, DEFAULT_MODEL, protocol="loo-sampled", seed=0, device="auto", source=source, callback=callback)
        return result.run_id, True


# -- renaming and deleting runs --------------------------------------------------------------------------------------
def rename_saved_run(run_id: str, title: str) -> str:
    """Name a saved run (``recsys_core.runs.rename_run``); the loaded copies are dropped so every page shows the name."""
    from recsys_core.runs import rename_run

    from .loading import load_run

    stored = rename_run(run_id, title)
    load_run.clear()
    return stored


def delete_saved_run(run_id: str) -> None:
    """Delete a saved run and forget it in this session: no page keeps it active, listed or loaded."""
    from recsys_core.runs import delete_run

    from .loading import load_run

    delete_run(run_id)
    load_run.clear()
    if st.session_state.get("run_id") == run_id:
        st.session_state.pop("run_id")
    if run_id in st.session_state.get("train_results", []):
        st.session_state["train_results"].remove(run_id)


# -- how long a model will take, before it starts --------------------------------------------------------------------------
def expected_seconds(model_name: str, data, device: str, records: list[RunRecord], epochs: int | None) -> tuple[float, str] | None:
    """How long training ``model_name`` on ``data`` will take on ``device`` (selection and refit; the test passes add
    seconds), from the recorded speed of earlier runs of that model on the same kind of device: the fit time of
    each, scaled by the epoch budget (``epochs``; None: the model's default) and, for a run on other data, by the
    data's size (interactions; EASE by items³, its matrix inversion). Runs on this very data come first. Returns
    (seconds, what it rests on), or None when no earlier run can say."""
    kind = "cpu" if device == "cpu" else "gpu"
    same_kind = [r for r in records if r.model.name == model_name and ("cpu" if r.history.device.startswith("cpu") else "gpu") == kind]
    same_kind = [r for r in same_kind if r.history.fit_seconds > 0]
    if not same_kind:
        return None
    digest = data.content_hash()
    here = [r for r in same_kind if r.dataset.content_hash == digest]
    chosen = here or same_kind
    estimates = []
    for record in chosen:
        seconds = record.history.fit_seconds
        budget = record.settings.epoch_budget
        if epochs and budget:
            seconds *= epochs / budget
        if record.dataset.content_hash != digest:
            if model_name == "ease":
                before, now = float(record.dataset.stats.get("items") or 0), float(data.n_items)
                seconds *= (now / before) ** 3 if before else 1.0
            else:
                before, now = float(record.dataset.stats.get("interactions") or 0), float(len(data))
                seconds *= now / before if before else 1.0
        estimates.append(seconds)
    where = "this data" if here else "other data, scaled to this data's size"
    basis = f"{len(chosen)} earlier run{'s' if len(chosen) > 1 else ''} on {where} ({kind})"
    return float(sorted(estimates)[len(estimates) // 2]), basis


def expected_table(
    models: list[str], data, device: str, records: list[RunRecord], overrides: dict[str, dict], probes: dict[str, float] | None = None
) -> pd.DataFrame:
    """The Train page's "how long" table: each chosen model's expected time and what it rests on (earlier runs,
    else a probe measured on this page: ``probes`` model -> seconds)."""
    rows = []
    for name in models:
        found = expected_seconds(name, data, device, records, (overrides.get(name) or {}).get("epochs"))
        if found is None and name in (probes or {}):
            found = (probes[name], f"a {PROBE_SECONDS:g}-second probe on this data ({device})")
        rows.append(
            {
                "model": name,
                "expected time": estimate_text(found[0]) if found else "not known yet",
                "from": found[1]
                if found
                else "no earlier run of this model on this kind of device: its first run shows the time left once its first epoch is done",
            }
        )
    return pd.DataFrame(rows)


#: How long the speed probe trains each model (seconds of steps, after its setup).
PROBE_SECONDS = 3.0


def probe_seconds(
    model_name: str, data, protocol: str, overrides: dict | None = None, device: str = "auto", seconds: float = PROBE_SECONDS
) -> float:
    """How long training ``model_name`` on ``data`` would take here (selection and refit), from a short measured
    probe: a few seconds of its first epoch's steps (a closed-form model: its whole fit), scaled to its epoch budget
    with the refit taken as half the budget again (the refit trains for the best epoch). The probe saves nothing."""
    from recsys_core.errors import TrainingCancelled
    from recsys_core.models import create_model
    from recsys_core.splits import make_split
    from recsys_core.trainer import Trainer

    split = make_split(data, protocol, seed=0)
    model = create_model(model_name, **(overrides or {}))
    seen: dict[str, float] = {}
    stop = {"now": False}

    def watch(event) -> None:
        now = time.monotonic()
        if event.kind == "batch":
            seen.setdefault("t0", now)
            seen.setdefault("f0", event.fraction)
            seen["t"], seen["f"], seen["budget"] = now, event.fraction, float(event.total_epochs or event.epochs)
            stop["now"] = now - seen["t0"] >= seconds

    started = time.monotonic()
    try:
        Trainer(device=device, seed=0, cancel=lambda: stop["now"]).fit(model, split.train, validation=split, callback=watch)
    except TrainingCancelled:
        pass
    done = seen.get("f", 0.0) - seen.get("f0", 0.0)
    if not done or not seen.get("budget"):  # a closed-form fit ran to its end: the refit is one more, cheaper fit
        return 1.5 * (time.monotonic() - started)
    epoch = (seen["t"] - seen["t0"]) / (done * seen["budget"])
    return epoch * seen["budget"] * 1.5
