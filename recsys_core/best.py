"""Which run is best: one stated rule, used by the Home page, every page's sidebar, the Compare page and the report.

Leave-one-out runs are tested twice on the same held-out items: among 99 sampled items and among all items. The
sampled metric can reverse the order of two models (Krichene & Rendle, KDD 2020), so it never decides: a
leave-one-out run is judged by its full-ranking HR@10, whichever of the two protocols it was trained for. Runs of
the other protocols are judged by their protocol's headline. Which protocol judges a run, its headline, the
direction of that metric and the protocol's short name are the protocol's facts
(:attr:`~recsys_core.protocols.Protocol.judged_on`, :attr:`~recsys_core.protocols.Protocol.short`); this module
writes the rule, not the facts. Only runs tested on the same split (kind, settings and
seed) and judged on the same protocol are compared; the caller passes runs on one data set.

Run names (``webapp.run_labels.run_label``) carry the same score with its protocol named, so a name never shows a
number that the rule does not use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from .protocols import PROTOCOLS, lower_is_better

if TYPE_CHECKING:
    from .runs import RunRecord

#: The rule in words: pages, the sidebar and the report print it beside the best run.
BEST_RULE = (
    "Best run = the highest test score on the full ranking among the runs on the same data and split: "
    f"{PROTOCOLS['loo-full'].headline} among all items for leave-one-out runs (never the sampled "
    f"{PROTOCOLS['loo-sampled'].headline}, which can reverse the order of two models), "
    f"{PROTOCOLS['heldout-users'].headline} for held-out users, the lowest {PROTOCOLS['ratings'].headline} for rating prediction."
)


class Score(NamedTuple):
    """The test score that judges a run: on ``protocol``, ``metric`` = ``value``."""

    protocol: str
    metric: str
    value: float

    def text(self) -> str:
        """ "HR@10 0.134, full ranking" """
        return f"{self.metric} {self.value:.3f}, {self.protocol_short()}"

    def label(self) -> str:
        """ "HR@10, full ranking": which score it is, without its value."""
        return f"{self.metric}, {self.protocol_short()}"

    def protocol_short(self) -> str:
        protocol = PROTOCOLS.get(self.protocol)
        return protocol.short if protocol else self.protocol


def judging_score(record: RunRecord) -> Score | None:
    """The score the rule judges ``record`` by, or None when the run has no test result on that protocol."""
    own = PROTOCOLS.get(record.protocol)
    judge = PROTOCOLS.get(own.judged_on) if own else None
    test = record.test.get(judge.name) if judge else None
    if test is None:
        # An old run without that test result: its own headline (its metrics), named by its own protocol.
        value = record.headline_value
        return None if value is None else Score(record.protocol, record.headline, float(value))
    value = test.scores.get(judge.headline)
    return None if value is None else Score(judge.name, judge.headline, float(value))


def split_key(record: RunRecord) -> str:
    """Runs with the same key were tested on the same split (the same data is the caller's part)."""
    return json.dumps({"split": dict(record.split), "seed": record.seed}, sort_keys=True, default=str)


def comparable(a: RunRecord, b: RunRecord) -> bool:
    """Whether the rule may rank ``a`` against ``b``: the same split and judged on the same protocol."""
    score_a, score_b = judging_score(a), judging_score(b)
    return score_a is not None and score_b is not None and score_a[:2] == score_b[:2] and split_key(a) == split_key(b)


def best_run(records: Iterable[RunRecord], like: RunRecord | None = None) -> RunRecord | None:
    """The best of ``records`` by :data:`BEST_RULE` among those comparable with ``like`` (default: the first
    record that has a score); ties go to the earlier record. None when no record has a score."""
    records = list(records)
    if like is None or judging_score(like) is None:
        like = next((r for r in records if judging_score(r) is not None), None)
        if like is None:
            return None
    pool = [r for r in records if comparable(r, like)]
    metric = judging_score(like).metric
    sign = -1.0 if lower_is_better(metric) else 1.0
    return max(pool, key=lambda r: sign * judging_score(r).value, default=None)


def best_line(records: Iterable[RunRecord], name, like: RunRecord | None = None) -> str | None:
    """ "Best run: NAME (HR@10 0.134, full ranking)." for a page or the report, to print with :data:`BEST_RULE`;
    ``name(record)`` names a run (its score is added unless the name carries it). None when no run has a score."""
    best = best_run(records, like)
    if best is None:
        return None
    named, score = name(best), judging_score(best).text()
    return f"Best run: {named}." if score in named else f"Best run: {named} ({score})."
