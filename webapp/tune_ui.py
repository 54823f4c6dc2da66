"""The Train page's Tune mode: an Optuna search on validation, watched live, then "use best".

The search is a background job of the app's training service (webapp/train_jobs.py), like a training: it
takes the server's queue, goes on while the person clicks or opens other pages, and stops only on Cancel.
A fragment redraws its line ("Trial k of n · about m:ss left") and the trials table every second; the
finished trials stay in the study, which lives in SQLite in the data home. That is also why a second
browser tab can watch a running search: it reads the same study (tick "Refresh every 5 s"). "Use best"
trains the best configuration through the same service (refit and one test pass as for every run) and
saves the run with the study recorded in it; that run becomes the active one.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from recsys_core.protocols import PROTOCOL_NAMES

from . import train_jobs
from .errors import friendly_errors, show_error
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


@st.cache_data(show_spinner=False, max_entries=16)
def _figures_of(name: str, trials: int, complete: tuple, _study) -> list:
    """``study_figures`` of ``_study``, kept while what they are drawn from is unchanged: the study's name, its number of
    trials and its complete trials (number, value, params). The live view and a watching tab redraw every second or
    five: without this each redraw fitted fANOVA's forest again for the same importances."""
    return study_figures(_study)


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
    import optuna

    complete = tuple(
        (t.number, t.value, tuple(sorted(t.params.items()))) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
    )
    figures = _figures_of(study.study_name, len(study.trials), complete, study)
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


#: Parameter importances (fANOVA) from fewer finished trials than this get a caveat under them.
IMPORTANCE_MIN_TRIALS = 20


def best_params_text(params: dict) -> str:
    """The best settings for a sentence, numbers to 3 significant figures ("`l2=0.000555`", "`dropout=0.5`")."""
    return ", ".join(f"`{k}={v:.3g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in params.items())


def show_tune_mode(data, source, usable: list[str]) -> None:
    """The whole Tune mode: choices, the search as a background job (webapp.train_jobs) with its live view and
    Cancel, the stored study, "Use best"."""
    from recsys_core import tuning

    if cancelled := st.session_state.pop("tune_cancelled", None):
        st.warning(cancelled)
    if saved := st.session_state.pop("tune_saved", None):
        st.success(saved)
    for title, error, _advice in st.session_state.pop("train_failures", []):  # from the job just finished
        show_error(error, title)
    model, protocol, trials, timeout, epochs, seed = _choices(data, usable)
    name = tuning.study_name(data, model, protocol, seed)
    buttons = st.columns([1, 1, 1, 5])
    running = train_jobs.current_job()
    if buttons[0].button("Tune", key="tune_start", type="primary", disabled=running is not None,
                         help=None if running is None else "A training or search of this session is running: wait for it or cancel it."):  # fmt: skip
        with friendly_errors("The search could not start"):
            train_jobs.start_tuning(data=data, model=model, protocol=protocol, trials=trials, timeout=timeout or None, seed=seed,
                                    epochs=epochs or None)  # fmt: skip
        st.rerun()  # the page redraws with the search's progress and Cancel
    if running is not None:
        buttons[1].button("Cancel", key="tune_cancel", on_click=train_jobs.request_cancel,
                          help="Stops the search (or the training); finished trials stay in the study.")  # fmt: skip
        show_search_progress()
    if isinstance(running, train_jobs.TuneJob) and running.study == name:
        return  # its live view above shows this study; the stored one (or "No study yet") comes back when it ends
    _show_stored_study(tuning, name, model, protocol, seed, epochs, data, source, buttons[2], busy=running is not None)


def _choices(data, usable: list[str]) -> tuple[str, str, int, int, int, int]:
    """The search's widgets: model, protocol, trials, time limit, max epochs, seed; and the model's search space."""
    from recsys_core.tuning import tunable_models

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
        "The search runs in the background: open other pages meanwhile; only **Cancel** stops it. "
        "The test split is used once, when you press **Use best**."
    )
    st.dataframe(space_table(model), hide_index=True, width="stretch")
    return model, protocol, trials, timeout, epochs, seed


@st.fragment(run_every=train_jobs.REFRESH_SECONDS)
def show_search_progress() -> None:
    """The session's search as it goes ("Trial k of n · about m:ss left") with the trials finished so far, or the
    training of "Use best"; redrawn every second, and the page rerun when it ends."""
    job = train_jobs.current_job()
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")  # the page opener collects the job; the stored study below shows its trials
    if not isinstance(job, train_jobs.TuneJob):
        train_jobs.show_progress()
        return
    from recsys_core import tuning

    with st.container(border=True):
        st.caption(job.status() + (" · cancelling…" if job.cancel.is_set() else ""))
        if job.finished_trials:
            with friendly_errors("The tuning store cannot be read"):
                show_study(tuning.load_study(job.study), f"tune_live_{job.finished_trials}")


def _show_stored_study(tuning, name: str, model: str, protocol: str, seed: int, epochs: int, data, source, use_best_cell,
                       busy: bool) -> None:  # fmt: skip
    """The study in the store: its table and plots (refreshed for a second tab), the best settings, "Use best"."""
    with friendly_errors("The tuning store cannot be read"):  # a damaged, linked or read-only store: one message
        if name not in tuning.list_studies():
            st.info("No study for this model, protocol and seed yet: press **Tune** to start one.")
            return
        summary = tuning.summarise(tuning.load_study(name))
    st.subheader(f"Study {plain(name)}")
    watch = st.checkbox("Refresh every 5 s (to watch a search running in another tab)", key="tune_watch")

    @st.fragment(run_every=5 if watch else None)
    def _stored() -> None:
        with friendly_errors("The tuning store cannot be read"):
            show_study(tuning.load_study(name), "tune_stored")

    _stored()
    if summary.best_value is None:
        return
    st.markdown(f"**Best so far:** validation {summary.metric} {summary.best_value:.4f} with " + best_params_text(summary.best_params))
    if use_best_cell.button("Use best", key="tune_use_best", disabled=busy,
                            help="Train the best configuration, test it once and save the run (in the background)."):  # fmt: skip
        with friendly_errors("The best configuration could not be trained"):
            train_jobs.start_best(data=data, source=source, model=model, protocol=protocol, seed=seed, epochs=epochs or None)
        st.rerun()

