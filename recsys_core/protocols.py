"""The evaluation protocols, each one typed object: the single place their facts are written.

A protocol decides how the data is split, which metric is the headline, which metric (and in which
direction) selects epochs and settings on validation, the cut-offs, which other protocol is
evaluated on the same test split, whether the data needs ratings and which models it can evaluate.
The CLI's ``--protocol`` choices, the Train page's list and its help text, the trainer's validation,
the tuner's objective, the experiment's checks and companions, the evaluator and the split all read
:data:`PROTOCOLS`; nothing else spells these facts out.

``loo-sampled``   He et al. 2017: leave-one-out, the held-out item ranked among 99 sampled negatives.
``loo-full``      leave-one-out, the held-out item ranked among every item the user has not seen.
``heldout-users`` Liang et al. 2018: whole users held out; part of their history folded in, the rest predicted.
``ratings``       a random split of explicit ratings; RMSE and MAE of predicted ratings.

This module imports nothing heavy (no numpy, no torch): the app's first page may read it.
"""

from __future__ import annotations

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
    """The test metrics a leaderboard shows, headline first."""
    validation_metric: str
    """The validation metric that chooses the best epoch and tuned settings."""
    validation_direction: Direction
    validation_protocol: str
    """The protocol validation runs: the full-ranking protocol validates on sampled candidates (same split, cheaper)."""
    validation_ks: tuple[int, ...]
    companions: tuple[str, ...]
    """Protocols evaluated on the same test split, this one first (sampled and full ranking go together)."""
    needs_ratings: bool
    model_need: ModelNeed
    help: str
    """One line for the Train page and ``--help``."""
    sampled_negatives: int | None = None
    """Negatives each held-out item is ranked among (None: every unseen item, or not a ranking protocol)."""

    @property
    def lower_is_better(self) -> bool:
        return self.validation_direction == "minimize"

    @property
    def leave_one_out(self) -> bool:
        return self.split_kind == "leave-one-out"

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
            needs_ratings=False,
            model_need="ranks-items",
            help="leave-one-out: each user's latest interaction is held out and ranked among 99 sampled negatives (He et al. 2017)",
            sampled_negatives=99,
        ),
        Protocol(
            name="loo-full",
            split_kind="leave-one-out",
            headline="HR@10",
            metrics=("HR@10", "NDCG@10", "MRR", "Recall@10", "Precision@10", "MAP@10"),
            validation_metric="NDCG@10",
            validation_direction="maximize",
            validation_protocol="loo-sampled",
            validation_ks=(10,),
            companions=("loo-full", "loo-sampled"),
            needs_ratings=False,
            model_need="ranks-items",
            help="leave-one-out, ranked against every item the user has not seen (stricter, no sampling bias)",
        ),
        Protocol(
            name="heldout-users",
            split_kind="heldout-users",
            headline="Recall@20",
            metrics=("Recall@20", "Recall@50", "NDCG@100"),
            validation_metric="NDCG@100",
            validation_direction="maximize",
            validation_protocol="heldout-users",
            validation_ks=_RANKING_KS,
            companions=("heldout-users",),
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
            needs_ratings=True,
            model_need="predicts-ratings",
            help="a random split of the ratings; RMSE / MAE of predicted ratings (AutoRec, DeepRec only)",
        ),
    )
}

PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)
DEFAULT_PROTOCOL = "loo-sampled"


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
