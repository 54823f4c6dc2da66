"""Train: choose models, settings, protocol and seed; watch the curves; a saved run becomes active only when picked."""

from __future__ import annotations

import json

import streamlit as st

from recsys_core.drugs import MEDICAL_NOTE
from webapp import errors, frame, train_jobs, train_ui
from webapp.active import active_run_id, keep_active_run, offer_best_run, positive_rule_text, set_active_run
from webapp.errors import friendly_errors
from webapp.loading import all_runs, is_drug_data, runs_for
from webapp.run_labels import run_label
from webapp.safe_output import plain

page = frame.open_page("Train")
source, data = page.source, page.data

# What the last training came to (its results were collected by the page opener): said once, here.
if cancelled := st.session_state.pop("train_cancelled", None):
    st.warning(cancelled)
st.session_state.pop("train_finished", None)

st.caption(
    f"Data: **{plain(data.name)}** — {data.n_users:,} {data.users.kind}s, {data.n_items:,} {data.items.kind}s, {len(data):,} interactions. "
    + positive_rule_text()
    + " Models learn from and are tested on positives only."
)
if is_drug_data(data):
    st.info(MEDICAL_NOTE)


@st.cache_resource(show_spinner=False)
def _device() -> str:
    from recsys_core.device import device_description, resolve_device

    return device_description(resolve_device("auto"))


device = _device()
if device == "cpu":
    st.markdown("**Device:** CPU (no GPU found). Closed-form models take seconds; neural models train slower than on a GPU.")
else:
    st.markdown(f"**Device:** GPU — {device}")

catalogue = train_ui.model_catalogue()
usable = [name for name, info in catalogue.items() if "error" not in info]
missing = [name for name, info in catalogue.items() if "error" in info]
if (
    st.radio("Mode", ["Train", "Tune"], horizontal=True, key="train_mode", help="Tune: search settings with Optuna on validation.")
    == "Tune"
):
    from webapp import tune_ui

    tune_ui.show_tune_mode(data, source, usable)
    st.stop()


def _model_label(name: str) -> str:
    text = catalogue[name].get("description") or ""
    return f"{name} — {text}" if text else name


models = st.multiselect(
    "Models",
    usable,
    default=[train_ui.DEFAULT_MODEL] if train_ui.DEFAULT_MODEL in usable else usable[:1],
    format_func=_model_label,
    key="train_models",
    help="Several models are trained one after the other on the same split, each saved as its own run.",
)
if missing:
    st.caption("Not available in this installation: " + ", ".join(missing))

left, middle, right = st.columns([3, 1, 1])
protocol = left.selectbox(
    "Evaluation protocol",
    list(train_ui.PROTOCOL_HELP),
    format_func=lambda p: f"{p} — {train_ui.PROTOCOL_HELP[p]}",
    key="train_protocol",
)
seed = middle.number_input(
    "Seed", min_value=0, value=0, step=1, key="train_seed", help="Fixes the split, the sampled negatives and the initialisation."
)
threads = right.number_input(
    "CPU threads",
    min_value=0,
    max_value=256,
    value=0,
    step=1,
    key="train_threads",
    help="0: one per core (one for BPR, GMF, MLP and NeuMF, whose steps gain nothing from more). On a computer busy with "
    "other programs choose 1: a thread that shares its core slows training many times. A different count changes "
    "results in the last digits, so a seeded run repeats exactly only with the same count."
)

loo_order = "time"
if protocol.startswith("loo"):
    loo_order = st.radio(
        "Leave-one-out holds out",
        ["time", "random"],
        format_func=lambda order: {"time": "each user's latest items (by time)", "random": "seeded random items"}[order],
        horizontal=True,
        key="train_loo_order",
        help="Latest by time suits adoption times (MovieLens). Where times are review dates (Drugs.com: the date of the latest "
        "positive review of a pair), the latest review need not be the latest use: a random hold-out avoids reading an order "
        "into them. The run records which.",
    )

st.caption(
    "Each model is selected on the validation split, then refitted on train + validation (its chosen epochs and settings) "
    "before the one test pass, so every model knows each user's validation interaction at test time."
)

overrides: dict[str, dict] = {}
for name in models:
    with st.expander(f"Settings of {name}", expanded=len(models) == 1):
        overrides[name] = train_ui.settings_form(name, catalogue[name]["fields"])

if models:
    # Before a run starts: how long each chosen model will take here, from the speed earlier runs recorded.
    device_kind = "cpu" if device == "cpu" else "gpu"
    probe_key = (page.data_key, protocol, device_kind)
    probes = st.session_state.setdefault("train_probes", {}).setdefault(json.dumps(probe_key), {})
    # A probe measures a model with its settings then (epochs, batch size): changed settings need a new one.
    probed_as = {name: f"{name} {json.dumps(overrides.get(name) or {}, sort_keys=True, default=str)}" for name in models}
    measured = {name: probes[probed_as[name]] for name in models if probed_as[name] in probes}
    expected = train_ui.expected_table(models, data, device_kind, all_runs(), overrides, measured)
    st.dataframe(
        expected, hide_index=True, width="stretch", column_config={"from": st.column_config.TextColumn("estimated from", width="large")}
    )
    unknown = [name for name, text in zip(models, expected["expected time"], strict=True) if text == "not known yet"]
    if unknown and st.button(
        f"Measure {', '.join(unknown)} here ({train_ui.PROBE_SECONDS:g} s of training each)", key="train_probe",
        help="Trains each model for a few seconds on this data and device, saves nothing, and estimates the whole run from it.",
    ):  # fmt: skip
        for name, seconds in train_jobs.measure(unknown, data, protocol, overrides).items():
            probes[probed_as[name]] = seconds
        st.rerun()
problems = train_ui.plan_problems(models, protocol, data, catalogue, overrides)
for problem in problems:
    st.error(plain(problem))


buttons = st.columns([1, 1, 6])
running_job = train_jobs.current_job()
start = buttons[0].button(
    "Train",
    key="train_start",
    type="primary",
    disabled=bool(problems) or running_job is not None,
    help="Trains in the background: open other pages meanwhile; the sidebar shows the progress."
    if running_job is None
    else "A training of this session is running: wait for it or cancel it.",
)
training_area = st.container()
for title, error, advice in st.session_state.pop("train_failures", []):  # from the training just finished
    with training_area:
        errors.show_error(error, title)
        if advice:
            st.info(advice)


def manage_runs(ids: list[str], by_id: dict, current: str | None) -> None:
    """Rename or delete a saved run. Deleting asks first, and says so when the run is the active one."""
    from recsys_core.runs import MAX_RUN_TITLE

    with st.expander("Rename or delete a run", expanded=bool(st.session_state.get("runs_confirm_delete"))):
        frame.keep_valid("runs_manage", ids)
        target = st.selectbox(
            "Run", ids, format_func=lambda r: run_label(by_id[r]) + (" (the active run)" if r == current else ""), key="runs_manage"
        )
        cells = st.columns([3, 1], vertical_alignment="bottom")
        title = cells[0].text_input(
            "Name", value=by_id[target].title, key=f"runs_title_{target}", max_chars=MAX_RUN_TITLE,
            placeholder="for example: demo model", help="Shown first in the run's name on every page; empty: the model's name.",
        )  # fmt: skip
        if cells[1].button("Rename", key="runs_rename", disabled=title.strip() == by_id[target].title):
            with friendly_errors("The run could not be renamed"):
                train_ui.rename_saved_run(target, title)
            st.rerun()
        if st.session_state.get("runs_confirm_delete") != target:
            if st.button("Delete this run …", key="runs_delete", icon=":material/delete:"):
                st.session_state["runs_confirm_delete"] = target
                st.rerun()
            return
        others = [r for r in ids if r != target]
        if target == current:
            after = run_label(by_id[others[0]]) if others else "none (no run is left on this data)"
            st.warning(
                f"**{plain(run_label(by_id[target]))} is the active run**, used by every page. Deleting it removes its model, "
                f"maps and test results for good; the active run then becomes {plain(after)}."
            )
        else:
            st.warning(f"Delete **{plain(run_label(by_id[target]))}**? Its model, maps and test results are removed for good.")
        buttons = st.columns([1, 1, 3])
        if buttons[0].button("Delete the active run" if target == current else "Delete it", key="runs_delete_yes", type="primary"):
            st.session_state.pop("runs_confirm_delete", None)
            with friendly_errors("The run could not be deleted"):
                train_ui.delete_saved_run(target)
            st.session_state["runs_flash"] = f"Deleted {run_label(by_id[target])}." + (
                f" The active run is now {run_label(by_id[others[0]])}." if target == current and others else ""
            )
            st.rerun()
        if buttons[1].button("Keep it", key="runs_delete_no"):
            st.session_state.pop("runs_confirm_delete", None)
            st.rerun()


def show_runs() -> None:
    """The runs on this data: the active-run picker, the best-run button and the runs trained in this session."""
    runs = runs_for(data)
    if not runs:
        if flash := st.session_state.pop("runs_flash", None):
            st.success(plain(flash))
        return
    st.divider()
    st.header("Runs on this data")
    if flash := st.session_state.pop("runs_flash", None):
        st.success(plain(flash))
    ids = [r.run_id for r in runs]
    by_id = {r.run_id: r for r in runs}
    current = active_run_id(data)
    if st.session_state.get("train_active_run") != current:
        st.session_state["train_active_run"] = current

    def _pick_run() -> None:
        set_active_run(st.session_state["train_active_run"])

    st.selectbox(
        "Active run (used by every page)",
        ids,
        format_func=lambda r: run_label(by_id[r]),
        key="train_active_run",
        on_change=_pick_run,
    )
    offer_best_run(data, key="train_use_best_run")
    manage_runs(ids, by_id, current)
    trained_here = [r for r in st.session_state.get("train_results", []) if r in by_id]
    shown = trained_here or [current]
    if trained_here:
        st.subheader("Trained in this session")
    for run_id in shown:
        train_ui.render_run(by_id[run_id], active=run_id == current)
    if not trained_here and current in by_id:
        st.caption("The active run; train a model above to compare.")


show_runs()

if start and not problems and running_job is None:
    with friendly_errors("The training could not start"):
        train_jobs.start_training(
            data=data, source=source, models=list(models), protocol=protocol, seed=int(seed), overrides=overrides,
            loo_order=loo_order, kept_active=keep_active_run(data), threads=int(threads) or None,
        )  # fmt: skip
    st.rerun()  # the page redraws with the training's progress and the Train button disabled

if train_jobs.current_job() is not None:
    buttons[1].button(
        "Cancel", key="train_cancel", on_click=train_jobs.request_cancel,
        help="Stops the training at its next step; nothing of an unfinished model is saved.",
    )  # fmt: skip
    with training_area:
        train_jobs.show_progress()
