"""The home page's pieces: the first model's fit with live progress, a user's profile, a top 10 with reasons.

The first visit fits EASE before anyone clicks. EASE is closed-form: between the trainer's "start"
and "end" events it inverts one item × item matrix per candidate regularisation and emits nothing,
so a per-batch bar is impossible. Instead the fit runs in a worker thread and the page polls it
twice a second, showing the stage the trainer last reported (splitting, fitting, testing and
saving) and the seconds elapsed, so the visitor sees that work goes on and roughly how long is left.
The worker never touches Streamlit (a thread without the script's context cannot); it only records
the latest event. If the visitor leaves, the thread still finishes and saves the run, and the next
visit reuses it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import streamlit as st

from . import train_jobs

FitStage = Literal["splitting", "fitting", "testing"]
STAGE_TEXT: dict[FitStage, str] = {
    "splitting": "Splitting the data (one held-out interaction per user for the test, one for validation)",
    "fitting": "Fitting EASE: one matrix inversion per candidate λ, the best chosen on validation",
    "testing": "Testing once on the held-out interactions and saving the run",
}
# Where each stage starts on the bar; the fit is by far the longest part (measured: 20 of 23 s on ml-100k).
STAGE_START: dict[FitStage, float] = {"splitting": 0.0, "fitting": 0.05, "testing": 0.9}
# Measured on this project's busy 2-core test machine for MovieLens 100K (1,682 items): 23 s with one
# thread, 42 s while four other processes trained. EASE's cost grows with the cube of the item count.
ESTIMATE_TEXT = "usually 10–60 seconds for MovieLens 100K, longer on a busy machine"
POLL_SECONDS = 0.5


@dataclass
class FitWatch:
    """What the worker thread reports to the page: the stage, the run id or the error, when it ended."""

    stage: FitStage = "splitting"
    run_id: str | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def __call__(self, event) -> None:  # the trainer's callback, called in the worker thread
        if event.phase in ("split", "test"):
            self.stage = "splitting" if event.phase == "split" else "testing"
        elif event.kind == "start":
            self.stage = "fitting"
        elif event.kind == "end":
            self.stage = "testing"


def first_fit_with_progress(data, source) -> str:
    """Fit the first model (EASE) on ``data`` with a moving progress bar; returns the run id.

    The bar and its text are drawn in a placeholder that is cleared when the fit ends (or fails).
    Raises what the fit raised, so the page shows it as it shows any other error.
    """
    watch = FitWatch()
    session = train_jobs.session_key()  # read here: the worker thread has no session state

    def work() -> None:
        try:
            watch.run_id = train_jobs.fit_first_model(data, source, session, callback=watch)
        except BaseException as error:  # handed to the page thread, which shows it
            watch.error = error
        finally:
            watch.done.set()

    placeholder = st.empty()
    started = time.monotonic()
    threading.Thread(target=work, name="home-first-fit", daemon=True).start()
    while not watch.done.wait(POLL_SECONDS):
        elapsed = time.monotonic() - started
        placeholder.progress(STAGE_START[watch.stage], text=f"{STAGE_TEXT[watch.stage]} · {elapsed:.0f} s so far ({ESTIMATE_TEXT})")
    placeholder.empty()
    if watch.error is not None:
        raise watch.error
    assert watch.run_id is not None
    return watch.run_id


def popular_top10(data, user: int, k: int = 10) -> pd.DataFrame:
    """The ``k`` items with the most interactions that ``user`` has none with, most first (ties: lower index):
    ready at once, so the first visit shows a top 10 while EASE fits. Columns ``rank``, ``title``, ``interactions``."""
    counts = data.item_counts().astype(np.int64)
    seen = np.unique(np.asarray(data.item)[np.asarray(data.user) == user])
    scores = counts.astype(np.float64)
    scores[seen] = -1.0
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    order = order[scores[order] >= 0]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "title": data.item_titles()[order], "interactions": counts[order]})


def sample_users(data, n: int = 50) -> list:
    """The home page's sample users (raw ids): seeded, among those with at least 5 interactions (or the most any has)."""
    counts = data.user_counts()
    eligible = np.flatnonzero(counts >= min(5, int(counts.max())))
    return [data.users.ids[i] for i in np.random.default_rng(0).permutation(eligible)[:n]]


# -- the sample user -----------------------------------------------------------------------------------------------------
AGE_GROUPS = {1: "under 18", 18: "18–24", 25: "25–34", 35: "35–44", 45: "45–49", 50: "50–55", 56: "56 or older"}
GENDERS = {"M": "man", "F": "woman"}


def profile_text(data, user: int) -> str | None:
    """ "A man, 25–34, student" from the data's user table (MovieLens), or None when it has none.

    MovieLens 100K records the exact age; 1M records an age-group code (``AGE_GROUPS``); both read well.
    """
    info = data.user_info
    if info is None or not {"age", "gender", "occupation"} & set(info.columns):
        return None
    row = info.iloc[user]
    parts = []
    if "gender" in info.columns and pd.notna(row["gender"]):
        parts.append(GENDERS.get(str(row["gender"]), str(row["gender"])))
    if "age" in info.columns and pd.notna(row["age"]):
        age = int(row["age"])
        group_codes = set(info["age"].dropna().astype(int).unique()) <= set(AGE_GROUPS)
        parts.append(AGE_GROUPS[age] if group_codes else f"aged {age}")
    if "occupation" in info.columns and pd.notna(row["occupation"]) and str(row["occupation"]) not in ("", "none", "other"):
        parts.append(str(row["occupation"]))
    return ", ".join(parts) if parts else None


# -- drug data -------------------------------------------------------------------------------------------------------------
def drug_answer(run) -> None:
    """Home on drug data: the Recommend page's two-part answer with evidence (``recsys_core.drugs`` through
    ``webapp.recommend_ui``, the same function and table), for the condition looked at last or, on a first
    visit, one picked at random among the well-reviewed ones."""
    from recsys_core.drugs import MEDICAL_NOTE

    from . import recommend_ui
    from .errors import friendly_errors

    with friendly_errors("The reviews behind this run cannot be loaded"):  # the Home page ends with this answer
        explorer = recommend_ui.drug_explorer(run.run_id)
    st.info(MEDICAL_NOTE)
    ids = explorer.reviews.users.ids
    st.session_state["home_condition"] = recommend_ui.home_condition(explorer)
    condition = recommend_ui.pick_reviewed(
        "home_condition",
        explorer,
        "users",
        "Medical condition (type to search)",
        on_change=lambda: recommend_ui.remember_condition(ids[st.session_state["home_condition"]]),
    )
    answer = explorer.for_condition(ids[condition], k=10)
    recommend_ui.show_drug_answer(
        answer,
        "Drug",
        "Every drug patients reviewed for this condition, with where the model ranks it and what the reviews say.",
        "Drugs not reviewed for this condition yet, from conditions similar to it, ordered by the model's strength × that similarity. "
        "The Recommend page answers any condition, a drug's conditions and your own list of drugs.",
    )
