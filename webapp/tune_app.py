"""The Train page's Tune mode: an Optuna search on validation, watched live, then "use best".

The search runs inside the page's script, like a training: each finished trial redraws the trials table
and the optimisation history. Cancel (or any other click) reruns the script, which interrupts the
search at its next update; the finished trials stay in the study, which lives in SQLite in the data
home. That is also why a second browser tab can watch a running search: it reads the same study (tick
"Refresh every 5 s"). "Use best" trains the best configuration through run_experiment (refit and one
test pass as for every run) and saves the run with the study recorded in it.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import streamlit as st

from recsys_core.errors import RecsysError, TrainingCancelled
from recsys_core.protocols import PROTOCOL_NAMES

from . import map_jobs
from .common import load_run, set_active_run
from .frame import show_error
from .safe_output import plain
from .train_ui import clock_text

TUNE_PROTOCOLS = PROTOCOL_NAMES  # the registry's protocols (recsys_core.protocols)


def space_table(model_name: str) -> pd.DataFrame:
    """The model's search space as a table: setting, range or choices, scale, what it does."""
    from recsys_core.tuning import search_space

    rows = []
    for name, param in search_space(model_name).items():
        if param.kind == "categorical":
            values = " | ".join(str(c) for c in param.to_json()["choices"])
        else:
            values = f"{param.low:g} – {param.high:g}"
        rows.append(
            {
                "setting": name,
                "values": values,
                "scale": "log" if param.log else ("choice" if param.kind == "categorical" else "linear"),
                "what": param.doc,
            }
        )
    return pd.DataFrame(rows)


def study_figures(study) -> list:
    """Optuna's optimisation history, and parameter importances once two trials have finished."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return []
    history = optuna.visualization.plot_optimization_history(study)
    # Trials are whole numbers: ticks at integers only (plotly put them at 0.5 with 3 trials).
    history.update_xaxes(tick0=0, dtick=max(1, math.ceil(len(study.trials) / 10)))
    figures = [history]
    if len(complete) >= 2 and len({tuple(sorted(t.params.items())) for t in complete}) >= 2:
        try:
            figures.append(optuna.visualization.plot_param_importances(study))
        except (RuntimeError, ValueError):  # all values equal: importances are undefined
            pass
    for figure in figures:
        figure.update_layout(height=330, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figures


def show_study(study, key: str) -> None:
    """The trials table and the two plots of a study."""
    from recsys_core.tuning import trials_table

    table = trials_table(study)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            # Settings searched on a log scale (5.547119471592122e-05) read to 3 significant figures.
            **{
                c: st.column_config.NumberColumn(format="%.3g")
                for c in table.columns
                if c not in ("trial", "value", "epochs", "seconds") and pd.api.types.is_float_dtype(table[c])
            },
            "value": st.column_config.NumberColumn(format="%.4f"),
            "seconds": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    figures = study_figures(study)
    if figures:
        columns = st.columns(len(figures))
        for i, (column, figure) in enumerate(zip(columns, figures)):
            column.plotly_chart(figure, key=f"{key}_figure_{i}")
        if len(figures) > 1:
            finished = int((table["state"] == "COMPLETE").sum()) if "state" in table else 0
            if finished < IMPORTANCE_MIN_TRIALS:
                columns[1].caption(
                    f"From {finished} finished trials only: importances (fANOVA) need a few dozen trials to settle, "
                    "so read these as a first hint, not a finding."
                )


class SearchProgress:
    """The running search on one line: "Trial 2 of 20 · epoch 3 of 50 · loss 0.41 · about 4:10 left".

    The time left comes from the trials finished so far (their mean time, pruned ones included, times the trials
    to go, less the running trial's time), before the first one from the running trial's own fraction done; a
    time limit caps it (no trial starts after the limit, the running one finishes). Updates let a click interrupt.
    """

    def __init__(self, container, trials: int, timeout: float | None = None, clock=time.monotonic):
        self.line = container.empty()
        self.trials, self.timeout, self.clock = trials, timeout, clock
        self.started = self.trial_started = clock()
        self.finished = 0
        self.last = -math.inf

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
        return f"{trial} · {what} · " + (f"about {clock_text(left)} left" if left is not None else "estimating time left…")

    def __call__(self, event) -> None:
        now = time.monotonic()
        if event.kind == "batch" and now - self.last < 0.5:
            return
        self.last = now
        self.line.caption(self.text(event))


#: Parameter importances (fANOVA) from fewer finished trials than this get a caveat under them.
IMPORTANCE_MIN_TRIALS = 20


def best_params_text(params: dict) -> str:
    """The best settings for a sentence, numbers to 3 significant figures ("`l2=0.000555`", "`dropout=0.5`")."""
    return ", ".join(f"`{k}={v:.3g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in params.items())


def show_tune_mode(data, source, usable: list[str]) -> None:
    """The whole Tune mode: choices, the search with its live view, the stored study, "use best"."""
    from recsys_core.tuning import tunable_models

    interrupted = st.session_state.pop("tune_running", None)
    if interrupted:
        st.warning(f"The search for {plain(interrupted)} was cancelled; the trials that finished are kept in the study.")
    tunable = tunable_models(usable)
    cells = st.columns([2, 2, 1, 1, 1, 1])
    model = cells[0].selectbox("Model to tune", tunable, key="tune_model")
    protocol = cells[1].selectbox("Protocol", TUNE_PROTOCOLS, key="tune_protocol")
    trials = int(
        cells[2].number_input("Trials", 1, 500, 20, key="tune_trials", help="Trials added to the study; it resumes where it stopped.")
    )
    timeout = int(
        cells[3].number_input("Time limit (s)", 0, 86400, 0, key="tune_timeout", help="0: no limit. No new trial starts after it.")
    )
    epochs = int(cells[4].number_input("Max epochs", 0, 1000, 0, key="tune_epochs", help="Per trial; 0 = the model's own."))
    seed = int(cells[5].number_input("Seed", 0, 2**31 - 1, 0, key="tune_seed"))
    st.caption(
        "Each trial trains one configuration on the training part and scores it on the **validation** part only "
        "(TPE sampler, seeded; trials below the median of earlier ones at the same epoch are pruned). "
        "The test split is used once, when you press **Use best**."
    )
    st.dataframe(space_table(model), hide_index=True, width="stretch")

    from recsys_core import tuning

    name = tuning.study_name(data, model, protocol, seed)

    def _cancel() -> None:
        st.session_state["tune_cancel_requested"] = True

    buttons = st.columns([1, 1, 1, 5])
    start = buttons[0].button("Tune", key="tune_start", type="primary")
    live = st.container()
    # The stored study's place: drawn empty before a search, so that what the last run showed there ("No study
    # yet", an older table) does not stay on screen, greyed, while the search runs above it.
    stored_slot = st.empty()
    if start:
        cancel_slot = buttons[1].empty()
        cancel_slot.button("Cancel", key="tune_cancel", on_click=_cancel, help="Stops the search; finished trials stay in the study.")
        st.session_state["tune_running"] = model
        progress = SearchProgress(live, trials, timeout or None)
        table_slot = live.empty()
        progress.line.caption(f"Trial 1 of {trials} · starting · estimating time left…")

        def on_trial(study) -> None:
            progress.trial_finished()
            with table_slot.container():
                show_study(study, f"tune_live_{len(study.trials)}")

        try:
            tuning.run_study(
                data,
                model,
                protocol,
                trials=trials,
                timeout=timeout or None,
                seed=seed,
                device="auto",
                epochs=epochs or None,
                on_trial=on_trial,
                callback=progress,
            )
        except TrainingCancelled:
            st.warning("The search was cancelled.")
        except RecsysError as error:
            show_error(error, "The search stopped")
        st.session_state.pop("tune_running", None)
        # The search is over: its live table, progress line and Cancel button go; the stored study below shows it.
        table_slot.empty()
        progress.line.empty()
        cancel_slot.empty()

    with stored_slot.container():
        _show_stored_study(tuning, name, data, source, model, protocol, seed, epochs, buttons[2])


def _show_stored_study(tuning, name: str, data, source, model: str, protocol: str, seed: int, epochs: int, use_best_cell) -> None:
    """The study in the store: its table and plots (refreshed for a second tab), the best settings, "Use best"."""
    try:
        if name not in tuning.list_studies():
            st.info("No study for this model, protocol and seed yet: press **Tune** to start one.")
            return
        summary = tuning.summarise(tuning.load_study(name))
    except RecsysError as error:  # a damaged, linked or read-only tuning store: one message, nothing written
        show_error(error, "The tuning store cannot be read")
        return
    st.subheader(f"Study {plain(name)}")
    watch = st.checkbox("Refresh every 5 s (to watch a search running in another tab)", key="tune_watch")

    @st.fragment(run_every=5 if watch else None)
    def _stored() -> None:
        try:
            show_study(tuning.load_study(name), "tune_stored")
        except RecsysError as error:
            show_error(error, "The tuning store cannot be read")

    _stored()
    if summary.best_value is None:
        return
    st.markdown(f"**Best so far:** validation {summary.metric} {summary.best_value:.4f} with " + best_params_text(summary.best_params))
    if use_best_cell.button("Use best", key="tune_use_best", help="Train the best configuration, test it once and save the run."):
        from .train_ui import LiveView

        box = st.container(border=True)
        try:
            result = tuning.train_best(
                tuning.load_study(name),
                data,
                model,
                protocol,
                seed=seed,
                device="auto",
                epochs=epochs or None,
                source=source,
                callback=LiveView(model, box),
            )
        except RecsysError as error:
            show_error(error, "The best configuration could not be trained")
            return
        set_active_run(result.run_id)
        if map_jobs.maps_on_save():  # as the Train page does: the Embeddings page finds the maps under way
            map_jobs.start_maps_on_save(load_run(result.run_id))
        st.success(
            f"Saved run {result.run_id} (the best configuration, tested once): "
            + ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items() if "@10" in k or k in ("RMSE", "Recall@20"))
        )
