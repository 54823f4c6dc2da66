"""The Train page's Tune mode: an Optuna search on validation, watched live, then "use best".

The search runs inside the page's script, like a training: each finished trial redraws the trials table
and the optimisation history. Cancel (or any other click) reruns the script, which interrupts the
search at its next update; the finished trials stay in the study, which lives in SQLite in the data
home. That is also why a second browser tab can watch a running search: it reads the same study (tick
"Refresh every 5 s"). "Use best" trains the best configuration through run_experiment (refit and one
test pass as for every run) and saves the run with the study recorded in it.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from recsys_core.errors import RecsysError, TrainingCancelled
from recsys_core.protocols import PROTOCOL_NAMES

from . import map_jobs
from .common import load_run, set_active_run
from .frame import show_error
from .safe_output import plain

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
    figures = [optuna.visualization.plot_optimization_history(study)]
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
        column_config={"value": st.column_config.NumberColumn(format="%.4f"), "seconds": st.column_config.NumberColumn(format="%.1f")},
    )
    figures = study_figures(study)
    if figures:
        columns = st.columns(len(figures))
        for i, (column, figure) in enumerate(zip(columns, figures)):
            column.plotly_chart(figure, key=f"{key}_figure_{i}")


class _TrialProgress:
    """Training events of the running trial on one progress line (updates let a click interrupt)."""

    def __init__(self, container):
        self.line = container.empty()
        self.last = 0.0

    def __call__(self, event) -> None:
        now = time.monotonic()
        if event.kind == "batch" and now - self.last < 0.5:
            return
        self.last = now
        self.line.caption(
            f"Running trial: {event.kind} · epoch {event.epoch}/{event.epochs}"
            + (f" · loss {event.loss:.4f}" if event.loss is not None else "")
        )


def show_tune_mode(data, source, usable: list[str]) -> None:
    """The whole Tune mode: choices, the search with its live view, the stored study, "use best"."""
    from recsys_core.tuning import SEARCH_SPACES

    interrupted = st.session_state.pop("tune_running", None)
    if interrupted:
        st.warning(f"The search for {plain(interrupted)} was cancelled; the trials that finished are kept in the study.")
    tunable = [m for m in usable if m in SEARCH_SPACES]
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
    if start:
        cancel_slot = buttons[1].empty()
        cancel_slot.button("Cancel", key="tune_cancel", on_click=_cancel, help="Stops the search; finished trials stay in the study.")
        st.session_state["tune_running"] = model
        table_slot, progress = live.empty(), _TrialProgress(live)

        def on_trial(study) -> None:
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
    st.markdown(
        f"**Best so far:** validation {summary.metric} {summary.best_value:.4f} with "
        + ", ".join(f"`{k}={v}`" for k, v in summary.best_params.items())
    )
    if buttons[2].button("Use best", key="tune_use_best", help="Train the best configuration, test it once and save the run."):
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
