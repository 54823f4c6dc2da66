"""Run labels: how every page names a saved run ("EASE · ml-100k · 09:21 · HR@10 0.669, full ranking").

Written once here: a run record's name (:func:`run_label`, the model's title as its class declares it,
:func:`recsys_core.models.model_title`) and the name of a run given by id (:func:`run_label_for`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from .loading import all_runs

if TYPE_CHECKING:  # recsys_core.runs imports the models (torch): the first page must not
    from recsys_core.runs import RunRecord


def run_label(record: RunRecord, today: date | None = None, with_score: bool = True) -> str:
    """How every page names a run: "EASE · ml-100k · 09:21 · HR@10 0.134, full ranking" instead of its raw id.

    The date is added when the run is not from today. The score is the one the best-run rule judges the run by
    (:func:`recsys_core.best.judging_score`), its protocol named: a leave-one-out run shows its full-ranking HR@10,
    never the sampled one.
    """
    from recsys_core.best import judging_score
    from recsys_core.models import model_title

    model = model_title(record.model.name)
    parts = [f"{record.title} ({model})" if record.title else model, record.dataset.name]
    try:
        when = datetime.fromisoformat(record.created)
        parts.append(when.strftime("%H:%M") if when.date() == (today or date.today()) else when.strftime("%d %b %H:%M"))
    except (TypeError, ValueError):  # an old run without a creation time: its id still tells runs apart
        parts.append(record.run_id[-6:])
    if with_score:  # without: where the score stands beside the name (the demo table and its sentence)
        score = judging_score(record)
        parts.append(score.text() if score is not None else "no test score")
    return " · ".join(parts)


def run_label_for(run_id: str | None) -> str:
    """``run_label`` of a saved run given by id ("— none yet —" for None; the id itself if it is not listed)."""
    if run_id is None:
        return "— none yet —"
    record = next((r for r in all_runs() if r.run_id == run_id), None)
    return run_label(record) if record is not None else run_id
