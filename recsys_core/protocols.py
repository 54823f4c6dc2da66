"""The evaluation protocols, each one typed object: the single place their facts are written.

A protocol decides how the data is split, which metric is the headline, which metric (and in which
direction) selects epochs and settings on validation, the cut-offs, which other protocol is
evaluated on the same test split, whether the data needs ratings and which models it can evaluate.
The CLI's ``--protocol`` choices, the Train page's list and its help text, the trainer's validation,
the tuner's objective, the experiment's checks and companions, the evaluator and the split all read
:data:`PROTOCOLS`; so do the best-run rule (which protocol judges a run, :attr:`Protocol.judged_on`, and a
score's short name), the leaderboards of the Compare page and the report (:attr:`Protocol.metrics`, sorted by
:func:`lower_is_better`), the paired test (:attr:`Protocol.paired_metric`) and the report's account of how the
models were tested (:meth:`Protocol.describe`, its numbers read from the split the runs recorded). Nothing else
spells these facts out.

``loo-sampled``   He et al. 2017: leave-one-out, the held-out item ranked among 99 sampled negatives.
``loo-full``      leave-one-out, the held-out item ranked among every item the user has not seen.
``heldout-users`` Liang et al. 2018: whole users held out; part of their history folded in, the rest predicted.
``ratings``       a random split of explicit ratings; RMSE and MAE of predicted ratings.

This module imports nothing heavy (no numpy, no torch): the app's first page may read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import DataError, ModelError

SplitKind = Literal["leave-one-out", "heldout-users", "ratio"]
Direction = Literal["maximize", "minimize"]
ModelNeed = Literal["ranks-items", "predicts-ratings"]


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol's facts and checks (see the module docstring)."""

    name: str
    split_kind: SplitKind
    """The split it needs: leave-one-out, held-out users or a ratio split of ratings."""
    headline: str
    """The test metric leaderboards sort by and every page shows first."""
    metrics: tuple[str, ...]
    """The test metrics a leaderboard shows, headline first (a catalogue coverage last, where it is measured)."""
    validation_metric: str
    """The validation metric that chooses the best epoch and tuned settings."""
    validation_direction: Direction
    validation_protocol: str
    """The protocol validation runs: the full-ranking protocol validates on sampled candidates (same split, cheaper)."""
    validation_ks: tuple[int, ...]
    companions: tuple[str, ...]
    """Protocols evaluated on the same test split, this one first (sampled and full ranking go together)."""
    judged_on: str
    """The protocol whose test score judges a run trained for this one (:mod:`recsys_core.best`): the full ranking
    for leave-one-out, since sampled metrics can reverse the order of two models (Krichene & Rendle 2020)."""
    short: str
    """The protocol in a few words, for a score's name ("HR@10 0.134, full ranking")."""
    needs_ratings: bool
    model_need: ModelNeed
    help: str
    """One line for the Train page and ``--help``."""
    sampled_negatives: int | None = None
    """Negatives each held-out item is ranked among (None: every unseen item, or not a ranking protocol)."""
    paired_metric: str | None = None
    """The per-unit values a paired test of the headline compares (None: the headline's own per-user values). RMSE
    is no mean of per-rating values, so rating runs are paired on their squared errors."""

    @property
    def lower_is_better(self) -> bool:
        return self.validation_direction == "minimize"

    @property
    def leave_one_out(self) -> bool:
        return self.split_kind == "leave-one-out"

    @property
    def units_are_ratings(self) -> bool:
        """Whether a result's per-unit values are one per test rating (a user listed once per rating) rather than
        one per test user."""
        return self.split_kind == "ratio"

    @property
    def paired_headline(self) -> str:
        """The per-unit metric a paired test of two runs compares for the headline."""
        return self.paired_metric or self.headline

    def describe(self, split: Mapping[str, Any]) -> str:
        """How the models were tested, in plain words for the report, with the numbers of ``split`` (the split info a
        run recorded: ``RunRecord.split``); a number the split did not record is left out, never guessed."""
        top = int(self.headline.split("@")[1]) if "@" in self.headline else None
        if self.split_kind == "leave-one-out":
            hidden = "each user's latest interaction is hidden"
            if self.sampled_negatives is None:
                sampled = next((p.sampled_negatives for p in PROTOCOLS.values() if p.leave_one_out and p.sampled_negatives), None)
                return (
                    f"Leave-one-out, {self.short}: {hidden} and ranked among every item the user has not interacted with. "
                    f"Stricter than sampling {sampled} negatives, and not biased by the sampling (Krichene & Rendle 2020)."
                )
            return (
                f"Leave-one-out (He et al. 2017): {hidden} for the test and the one before it for validation. At test time "
                f"the hidden item is ranked among {self.sampled_negatives} items the user never interacted with, sampled at "
                f"random with a fixed seed, so every model faces the same candidates. {self.headline} is the share of users "
                f"whose hidden item lands in the top {top}; {self.validation_metric} also rewards placing it higher."
            )
        if self.split_kind == "heldout-users":
            n_users, given = split.get("n_heldout_users"), split.get("given_fraction")
            kept = f"{n_users:,} users are kept for validation and {n_users:,} other users for test" if n_users else "whole users are kept for validation and for test"
            reads = (
                f"The model reads {given:.0%} of each held-out user's items and must find the other {1 - given:.0%}"
                if given
                else "The model reads part of each held-out user's items and must find the rest"
            )
            return f"Held-out users (Liang et al. 2018): {kept}. {reads}. {self.headline} is the share of those found in the top {top}."
        test, validation = split.get("test_fraction"), split.get("validation_fraction")
        shares = (
            f": {test:.0%} of them for test, {validation:.0%} for validation and the other {1 - test - validation:.0%} for training"
            if test is not None and validation is not None
            else ""
        )
        metrics = " and ".join(self.metrics)
        return f"A random split of the explicit ratings{shares}; {metrics} measure how far predicted ratings are from the real ones."

    def supports(self, model: Any) -> bool:
        """Whether a model class (or instance) can be evaluated with this protocol."""
        if self.model_need == "predicts-ratings":
            return bool(getattr(model, "predicts_ratings", False))
        return bool(getattr(model, "ranks_items", True))

    def unsupported_models_message(self, names: list[str]) -> str:
        """Why these models cannot be evaluated here, with the way out."""
        if self.model_need == "predicts-ratings":
            return f"The {self.name} protocol needs models that predict ratings (autorec, deeprec); {', '.join(names)} only rank items."
        return f"The {self.name} protocol ranks items, and {', '.join(names)} cannot rank items."

    def data_problem(self, has_ratings: bool) -> str | None:
        """Why data with (or without) ratings cannot be evaluated here, or None."""
        if self.needs_ratings and not has_ratings:
            return f"The {self.name} protocol needs a rating column; this data has none. Choose a ranking protocol."
        return None

    def check(self, model: Any, has_ratings: bool) -> None:
        """Refuse, before training, a model or data this protocol cannot evaluate."""
        if not self.supports(model):
            name = getattr(model, "name", type(model).__name__)
            if self.model_need == "predicts-ratings":
                raise ModelError(f"{name} ranks items and cannot be evaluated on {self.name}", "Use autorec or deeprec, or a ranking protocol.")
            raise ModelError(f"{name} cannot rank items for the {self.name} protocol", "Use a ranking model.")
        problem = self.data_problem(has_ratings)
        if problem:
            raise DataError(f"the {self.name} protocol needs a rating column", "Choose a rating column or a ranking protocol.")


_RANKING_KS = (10, 20, 50, 100)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="loo-sampled",
            split_kind="leave-one-out",
            headline="HR@10",
            metrics=("HR@10", "NDCG@10", "MRR", "Recall@10", "Precision@10", "MAP@10"),
            validation_metric="NDCG@10",
            validation_direction="maximize",
            validation_protocol="loo-sampled",
            validation_ks=(10,),
            companions=("loo-sampled", "loo-full"),
            judged_on="loo-full",
            short="sampled",
            needs_ratings=False,
            model_need="ranks-items",
            help="leave-one-out: each user's latest interaction is held out and ranked among 99 sampled negatives (He et al. 2017)",
            sampled_negatives=99,
        ),
        Protocol(
            name="loo-full",
            split_kind="leave-one-out",
            headline="HR@10",
            metrics=("HR@10", "NDCG@10", "MRR", "Recall@10", "Precision@10", "MAP@10", "Coverage@10"),
            validation_metric="NDCG@10",
            validation_direction="maximize",
            validation_protocol="loo-sampled",
            validation_ks=(10,),
            companions=("loo-full", "loo-sampled"),
            judged_on="loo-full",
            short="full ranking",
            needs_ratings=False,
            model_need="ranks-items",
            help="leave-one-out, ranked against every item the user has not seen (stricter, no sampling bias)",
        ),
        Protocol(
            name="heldout-users",
            split_kind="heldout-users",
            headline="Recall@20",
            metrics=("Recall@20", "Recall@50", "NDCG@100", "Coverage@20"),
            validation_metric="NDCG@100",
            validation_direction="maximize",
            validation_protocol="heldout-users",
            validation_ks=_RANKING_KS,
            companions=("heldout-users",),
            judged_on="heldout-users",
            short="held-out users",
            needs_ratings=False,
            model_need="ranks-items",
            help="whole users are held out; the model sees part of their history and must complete it (Liang et al. 2018)",
        ),
        Protocol(
            name="ratings",
            split_kind="ratio",
            headline="RMSE",
            metrics=("RMSE", "MAE"),
            validation_metric="RMSE",
            validation_direction="minimize",
            validation_protocol="ratings",
            validation_ks=_RANKING_KS,
            companions=("ratings",),
            judged_on="ratings",
            short="ratings",
            needs_ratings=True,
            model_need="predicts-ratings",
            help="a random split of the ratings; RMSE / MAE of predicted ratings (AutoRec, DeepRec only)",
            paired_metric="squared_error",
        ),
    )
}

PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)
DEFAULT_PROTOCOL = "loo-sampled"

#: The metrics where a smaller value is better: those (and the per-unit values paired for them) of the protocols that
#: minimise their validation metric, the rating errors. Every other metric (hit rate, NDCG, recall, coverage) is
#: better when larger.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    metric
    for protocol in PROTOCOLS.values()
    if protocol.lower_is_better
    for metric in (*protocol.metrics, protocol.validation_metric, protocol.paired_headline)
)

#: Each split kind in a few words, for a choice of runs ("held-out users split, seed 0").
SPLIT_KIND_LABELS: dict[str, str] = {"leave-one-out": "leave-one-out", "heldout-users": "held-out users", "ratio": "random ratio"}


def lower_is_better(metric: str) -> bool:
    """Whether a smaller ``metric`` is better (the rating errors: RMSE, MAE and the per-rating squared error)."""
    return metric in LOWER_IS_BETTER


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; a :class:`ModelError` naming the choices otherwise."""
    protocol = PROTOCOLS.get(name) if isinstance(name, str) else None
    if protocol is None:
        raise ModelError(f"unknown protocol {name!r}", "Protocols: " + ", ".join(PROTOCOL_NAMES))
    return protocol


def validation_protocol_for(split_kind: str) -> Protocol:
    """The protocol validation runs on a split of this kind (leave-one-out validates on sampled candidates)."""
    for protocol in PROTOCOLS.values():
        if protocol.split_kind == split_kind and protocol.validation_protocol == protocol.name:
            return protocol
    raise ModelError(f"no protocol evaluates a {split_kind!r} split", "Splits: " + ", ".join(sorted({p.split_kind for p in PROTOCOLS.values()})))
