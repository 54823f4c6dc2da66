"""Drug answers: condition → drugs, drug → conditions, drugs like this one (no Streamlit here).

A person asking "which drugs for Birth Control?" means the drugs patients use for it, ordered by
how well they fit, and then what else might fit; a model's raw top-K of unseen items answers a
different question (it excludes every drug already reviewed for the condition). So an answer has
two labelled parts:

1. **Reviewed for this condition**, ordered by the model, each with the patients' evidence: how many
   reviews were positive, neutral and negative, the mean rating and the most useful review of each
   kind.
2. **Not yet reviewed for it**, ordered by the model among the drugs used for *similar conditions*
   (conditions that share at least one reviewed drug with this one), each naming those conditions
   and how many drugs they share, with the evidence of its reviews there. A drug no similar
   condition uses has nothing to show for itself and is not listed, whatever its score.

Drug → conditions is the mirror image. Scores are never shown raw (a logit means nothing to a
reader): each is turned into its rank among all drugs for that condition ("ranked 3rd of 470",
"tied 5th-9th of 470" where the model gives equal scores) and a 0-100 strength, the mid-rank
percentile of that rank. A drug most of whose reviews are negative is flagged, never a plain
suggestion.

Evidence comes from *all* reviews (:meth:`~recsys_core.experiment.DataSource.all_reviews`), the model
from the positive ones; both share one vocabulary, so an index means the same drug in either.
Review classes follow the run's positive rule: rating >= threshold positive, below 5 of 10
negative, neutral between (exactly the sample's labels). The CLI and the Recommend page both call
:class:`DrugExplorer`; :func:`drugs_for_condition`, :func:`conditions_for_drug` and
:func:`drugs_like` are the same answers in one call each:

>>> from recsys_core.runs import load_run                                   # doctest: +SKIP
>>> answer = drugs_for_condition(load_run(RUN_ID), "Birth Control", k=5)    # doctest: +SKIP
>>> answer.reviewed, answer.suggested       # two DataFrames; print(answer.text()) for a terminal
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .datasets.builtin import DRUG_POSITIVE_THRESHOLD
from .errors import DataError
from .explain import SNIPPET_CHARS, item_rank_counts, rank_strength, rank_text, trim
from .interactions import Interactions

MEDICAL_NOTE = "This is patient-review data from Drugs.com, not medical advice: ask a doctor or pharmacist."
"""Printed once on every drug answer (CLI, page)."""

ReviewKind = Literal["positive", "neutral", "negative"]
REVIEW_KINDS: tuple[ReviewKind, ...] = ("positive", "neutral", "negative")
Question = Literal["condition", "drug"]

NEGATIVE_BELOW = 5.0
"""Ratings below this (1-4 of 10; the sample's "negative") are negative reviews."""

FOR_CONDITION = "drugs for this condition"
"""How a drug answer reads its ranks: "ranked 3rd of 470 drugs for this condition"."""

MAX_NAMED = 3
"""Similar conditions named per suggestion; the rest are counted."""


@dataclass(frozen=True)
class ReviewClasses:
    """Positive at or above ``positive_at`` (the run's positive rule), negative below ``negative_below``, else neutral."""

    positive_at: float = DRUG_POSITIVE_THRESHOLD
    negative_below: float = NEGATIVE_BELOW

    @classmethod
    def for_threshold(cls, threshold: float | None) -> ReviewClasses:
        positive_at = DRUG_POSITIVE_THRESHOLD if threshold is None else float(threshold)
        return cls(positive_at, min(NEGATIVE_BELOW, positive_at))

    def classify(self, rating: np.ndarray) -> np.ndarray:
        rating = np.asarray(rating, dtype=np.float64)
        return np.where(rating >= self.positive_at, "positive", np.where(rating < self.negative_below, "negative", "neutral")).astype(
            object
        )


@dataclass(frozen=True)
class DrugAnswer:
    """One question's answer in two labelled parts.

    ``reviewed`` (part 1) and ``suggested`` (part 2) share the columns ``rank`` (within the part),
    ``name``, ``model_rank`` (text), ``rank_first``, ``tied``, ``strength`` (0-100), the evidence
    columns ``reviews``, ``positive``, ``neutral``, ``negative``, ``mean_rating``, ``mostly_negative``,
    ``best_positive``, ``best_neutral``, ``best_negative`` and ``status``; ``suggested`` adds
    ``similar_conditions`` (names, most shared first), ``shared_drugs`` (counts) and ``provenance`` (text).
    In a drug answer the rows are conditions and the ranks are the drug's among all drugs for each.
    """

    question: Question
    subject: str
    run_id: str
    model: str
    n_drugs: int
    reviewed: pd.DataFrame
    suggested: pd.DataFrame
    positive_rule: str
    note: str = MEDICAL_NOTE

    @property
    def reviewed_title(self) -> str:
        if self.question == "condition":
            return f"Part 1 · Drugs reviewed for {self.subject} ({len(self.reviewed)}), ordered by {self.model}"
        return f"Part 1 · Conditions {self.subject} is reviewed for ({len(self.reviewed)}), by its rank among the drugs for each"

    @property
    def suggested_title(self) -> str:
        if self.question == "condition":
            return f"Part 2 · Not yet reviewed for {self.subject}: drugs used for similar conditions, ordered by {self.model}"
        return f"Part 2 · Conditions {self.subject} is not yet reviewed for that it may fit, from similar conditions"

    def to_json(self) -> dict:
        def rows(table: pd.DataFrame) -> list[dict]:
            return json.loads(table.to_json(orient="records", default_handler=str))

        return {
            "question": self.question,
            "subject": self.subject,
            "run_id": self.run_id,
            "model": self.model,
            "n_drugs": self.n_drugs,
            "positive_rule": self.positive_rule,
            "note": self.note,
            "reviewed": rows(self.reviewed),
            "suggested": rows(self.suggested),
        }

    def text(self, max_rows: int | None = None, review_chars: int = 110) -> str:
        """The answer as plain text for a terminal: both parts (part 1 cut to ``max_rows``), the evidence, the note once."""
        what = "drugs for" if self.question == "condition" else "conditions for"
        lines = [f"{what.capitalize()} {self.subject} · run {self.run_id} ({self.model}) · positive rule: {self.positive_rule}", ""]
        # In a drug answer part 2's evidence is the drug's reviews for conditions of part 1: quoted there already.
        quote_part2 = self.question == "condition"
        for title, table, empty, quotes in (
            (self.reviewed_title, self.reviewed, "nothing reviewed", True),
            (self.suggested_title, self.suggested, "no similar condition points anywhere new", quote_part2),
        ):
            lines.append(title)
            if table.empty:
                lines.append(f"  ({empty})")
            shown = table if max_rows is None else table.head(max_rows)
            for row in shown.to_dict("records"):
                lines.extend(_row_text(row, review_chars, quotes))
            if len(shown) < len(table):
                lines.append(f"  … and {len(table) - len(shown)} more (ask for more with a larger k)")
            lines.append("")
        lines.append(self.note)
        return "\n".join(lines)


@dataclass(frozen=True)
class SimilarDrugs:
    """Drugs like one drug by the run's item-item similarity, with the conditions both are reviewed for.

    ``table``: ``rank``, ``name``, ``model_rank`` (text), ``strength`` (0-100), ``shared_conditions``
    (names, most reviews first), ``n_shared`` and ``status`` (mostly negative reviews overall).
    """

    subject: str
    run_id: str
    model: str
    n_drugs: int
    table: pd.DataFrame
    note: str = MEDICAL_NOTE

    def to_json(self) -> dict:
        return {
            "subject": self.subject,
            "run_id": self.run_id,
            "model": self.model,
            "n_drugs": self.n_drugs,
            "note": self.note,
            "similar": json.loads(self.table.to_json(orient="records", default_handler=str)),
        }

    def text(self) -> str:
        lines = [f"Drugs like {self.subject} · run {self.run_id} ({self.model}), by the model's item-item similarity", ""]
        for row in self.table.to_dict("records"):
            shared = _join(row["shared_conditions"][:MAX_NAMED], row["n_shared"])
            where = f"both reviewed for {shared}" if row["n_shared"] else "no condition in common"
            flag = f" · {row['status']}" if row["status"] else ""
            lines.append(
                f"  {row['rank']:>2}. {row['name']}  {_bar(row['strength'])} {row['strength']:>3}  {row['model_rank']} · {where}{flag}"
            )
        lines += ["", self.note]
        return "\n".join(lines)


def _bar(strength: float, width: int = 10) -> str:
    filled = int(round(strength / 100 * width))
    return "█" * filled + "·" * (width - filled)


def _join(names: list[str], total: int | None = None) -> str:
    names = [str(n) for n in names]
    more = (total or len(names)) - len(names)
    if more > 0:
        names = names + [f"{more} more"]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _row_text(row: dict, review_chars: int, quotes: bool = True) -> list[str]:
    counts = f"{row['reviews']} review{'' if row['reviews'] == 1 else 's'}: {row['positive']} positive, {row['neutral']} neutral, {row['negative']} negative"
    mean = f" · mean {row['mean_rating']:.1f}/10" if row["reviews"] else ""
    head = f"  {row['rank']:>2}. {row['name']}  {_bar(row['strength'])} {row['strength']:>3}  {row['model_rank']}"
    lines = [head]
    if row.get("provenance"):
        lines.append(f"      {row['provenance']}")
    lines.append(f"      {'evidence there' if row.get('provenance') else 'evidence'}: {counts}{mean}")
    if row["status"]:
        lines.append(f"      ⚠ {row['status']}")
    for kind, mark in (("positive", "+"), ("neutral", "~"), ("negative", "-")) if quotes else ():
        text = row.get(f"best_{kind}")
        if isinstance(text, str) and text:
            short = text if len(text) <= review_chars else text[:review_chars].rsplit(" ", 1)[0] + "…"
            lines.append(f"      {mark} “{short}”")
    return lines


# ---------------------------------------------------------------------------------- the explorer
@dataclass(frozen=True, eq=False)
class DrugExplorer:
    """A run together with all reviews of its data: answers condition, drug and similarity questions.

    Build it once per (run, data) with :meth:`build` and keep it (the page caches it): it holds
    the condition × drug matrix of all reviews and each review's class.
    """

    run: object
    reviews: Interactions
    classes: ReviewClasses
    positive_rule: str
    matrix: sp.csr_matrix = field(repr=False)  # conditions × drugs, 1 where any review
    labels: np.ndarray = field(repr=False)  # each review's class
    texts: np.ndarray = field(repr=False)  # each review's text (trimmed only when quoted)

    @classmethod
    def build(cls, run, reviews: Interactions) -> DrugExplorer:
        """``reviews``: every review of the run's data (``DataSource.all_reviews()``), same vocabularies as the run."""
        if not (np.array_equal(reviews.users.ids, run.users.ids) and np.array_equal(reviews.items.ids, run.items.ids)):
            raise DataError(
                f"the reviews of {reviews.name} do not belong to run {run.run_id}: their conditions or drugs differ",
                "Load the data the run was trained on (its data source, without the positive rule).",
            )
        if reviews.rating is None:
            raise DataError(f"{reviews.name} has no ratings, so there is no review evidence to show")
        rule = run.record.get("dataset", {}).get("positive_rule", {})
        threshold = rule.get("threshold", DRUG_POSITIVE_THRESHOLD) if rule else DRUG_POSITIVE_THRESHOLD
        classes = ReviewClasses.for_threshold(threshold)
        text = rule.get("text") if rule else None
        texts = reviews.extra.get("review")
        texts = np.asarray(texts, dtype=object) if texts is not None else np.full(len(reviews), "", dtype=object)
        return cls(
            run=run,
            reviews=reviews,
            classes=classes,
            positive_rule=text or f"ratings >= {classes.positive_at:g} are positives",
            matrix=reviews.to_csr(),
            labels=classes.classify(reviews.rating),
            texts=texts,
        )

    # -------------------------------------------------------------------------- evidence
    def _evidence(self, rows: np.ndarray, keys: np.ndarray, index: np.ndarray) -> pd.DataFrame:
        """Evidence of the reviews ``rows`` grouped by ``keys``, one row per entry of ``index``."""
        useful = self.reviews.extra.get("useful", self.reviews.weight)
        frame = pd.DataFrame(
            {
                "key": np.asarray(keys, dtype=np.int64),
                "rating": np.asarray(self.reviews.rating, dtype=np.float64)[rows],
                "label": self.labels[rows],
                "useful": np.asarray(useful, dtype=np.float64)[rows] if useful is not None else 0.0,
                "row": np.asarray(rows, dtype=np.int64),
            }
        )
        index = np.asarray(index, dtype=np.int64)
        counts = pd.crosstab(frame["key"], frame["label"]).reindex(index=index, columns=list(REVIEW_KINDS), fill_value=0)
        out = pd.DataFrame(index=index)
        for kind in REVIEW_KINDS:
            out[kind] = counts[kind].to_numpy(np.int64)
        out.insert(0, "reviews", out[list(REVIEW_KINDS)].sum(axis=1))
        out["mean_rating"] = frame.groupby("key")["rating"].mean().reindex(index).to_numpy()
        out["mostly_negative"] = out["negative"] * 2 > out["reviews"]
        best = frame.sort_values("useful", ascending=False, kind="stable").drop_duplicates(["key", "label"])
        # Trim only the reviews quoted (a few per row), never every review of the data.
        best = best.assign(review=trim(pd.Series(self.texts[best["row"].to_numpy()], dtype=object), SNIPPET_CHARS).to_numpy())
        texts = best.pivot(index="key", columns="label", values="review").reindex(index=index, columns=list(REVIEW_KINDS))
        for kind in REVIEW_KINDS:
            out[f"best_{kind}"] = texts[kind].astype(object).where(texts[kind].notna(), "").to_numpy(dtype=object)
        out["status"] = np.where(out["mostly_negative"], "most reviews are negative: not a suggestion", "")
        return out.reset_index(drop=True)

    def _review_rows(self, users: np.ndarray | None = None, items: np.ndarray | None = None) -> np.ndarray:
        mask = np.ones(len(self.reviews), dtype=bool)
        if users is not None:
            mask &= np.isin(self.reviews.user, users)
        if items is not None:
            mask &= np.isin(self.reviews.item, items)
        return np.flatnonzero(mask)

    # -------------------------------------------------------------------------- condition → drugs
    def for_condition(self, condition, k: int = 10) -> DrugAnswer:
        """Drugs for a condition: part 1 all drugs reviewed for it, part 2 the ``k`` best not yet reviewed."""
        user = self.reviews.users.index(condition)
        names = self.reviews.item_titles()
        scores = np.asarray(self.run.score(np.array([user]))[0], dtype=np.float64)
        first, tied = item_rank_counts(scores[None, :], np.arange(len(scores))[None, :])
        first, tied = first[0], tied[0]
        n = len(scores)

        reviewed = self.matrix[user].indices
        rows = self._review_rows(users=np.array([user]), items=reviewed)
        part1 = self._evidence(rows, self.reviews.item[rows], reviewed)
        part1.insert(0, "item_index", reviewed)
        part1 = self._ranked(part1, first[reviewed], tied[reviewed], n, names[reviewed], "drugs")
        part1 = part1.sort_values(["rank_first", "reviews"], ascending=[True, False], kind="stable").reset_index(drop=True)
        part1.insert(0, "rank", np.arange(1, len(part1) + 1))

        shared = np.asarray((self.matrix @ self.matrix[user].T).todense()).ravel()
        shared[user] = 0
        similar = shared > 0
        reachable = np.asarray(self.matrix[similar].sum(axis=0)).ravel() > 0
        reachable[reviewed] = False
        candidates = np.flatnonzero(reachable)
        order = np.lexsort((candidates, -scores[candidates]))[:k]
        chosen = candidates[order]
        by_item = self.matrix[:, chosen].tocsc()
        condition_names = self.reviews.users.ids
        sources_names, sources_shared, texts = [], [], []
        subject = str(condition_names[user])
        for column in range(len(chosen)):  # k suggestions: tiny
            users = by_item.indices[by_item.indptr[column] : by_item.indptr[column + 1]]
            users = users[similar[users]]
            users = users[np.lexsort((users, -shared[users]))]
            sources_names.append([str(condition_names[u]) for u in users])
            sources_shared.append(shared[users].astype(int).tolist())
            texts.append(_provenance_for_drug(sources_names[-1], sources_shared[-1], subject))
        rows = self._review_rows(users=np.flatnonzero(similar), items=chosen)
        part2 = self._evidence(rows, self.reviews.item[rows], chosen)
        part2.insert(0, "item_index", chosen)
        part2 = self._ranked(part2, first[chosen], tied[chosen], n, names[chosen], "drugs")
        part2.insert(0, "rank", np.arange(1, len(part2) + 1))
        part2["similar_conditions"] = sources_names
        part2["shared_drugs"] = sources_shared
        part2["provenance"] = texts
        return DrugAnswer("condition", subject, self.run.run_id, self.run.model.name, n, part1, part2, self.positive_rule)

    @staticmethod
    def _ranked(table: pd.DataFrame, first, tied, n: int, names, noun: str) -> pd.DataFrame:
        """Add the name, the rank as text, the 0-100 strength and the raw rank and tie counts."""
        table.insert(1, "name", np.asarray(names, dtype=object))
        table.insert(2, "model_rank", [rank_text(f, t, n, noun) for f, t in zip(first, tied)])
        table.insert(3, "strength", rank_strength(first, tied, n))
        table.insert(4, "rank_first", np.asarray(first, dtype=np.int64))
        table.insert(5, "tied", np.asarray(tied, dtype=np.int64))
        return table

    # -------------------------------------------------------------------------- drug → conditions
    def for_drug(self, drug, k: int = 10) -> DrugAnswer:
        """Conditions for a drug: part 1 all it is reviewed for, part 2 the ``k`` it ranks best for among similar conditions."""
        item = self.reviews.items.index(drug)
        first, tied = self.run.rank_of_item(item)
        n = self.run.model.n_items
        names = self.reviews.users.ids.astype(str)
        subject = str(self.reviews.item_titles()[item])

        column = self.matrix[:, item].tocsc()
        reviewers = column.indices
        rows = self._review_rows(users=reviewers, items=np.array([item]))
        part1 = self._evidence(rows, self.reviews.user[rows], reviewers)
        part1.insert(0, "user_index", reviewers)
        part1 = self._ranked(part1, first[reviewers], tied[reviewers], n, names[reviewers], FOR_CONDITION)
        part1 = part1.sort_values(["strength", "rank_first", "reviews"], ascending=[False, True, False], kind="stable").reset_index(
            drop=True
        )
        part1.insert(0, "rank", np.arange(1, len(part1) + 1))

        # shared[c, j]: drugs condition c has in common with the j-th condition this drug is reviewed for.
        shared = (self.matrix @ self.matrix[reviewers].T).tocsr()
        strongest = np.asarray(shared.max(axis=1).todense()).ravel() if len(reviewers) else np.zeros(self.reviews.n_users)
        candidates = np.flatnonzero(strongest > 0)
        candidates = candidates[~np.isin(candidates, reviewers)]
        # By mid-rank (a tie over 400 places is no 3rd place), then the closest similar condition.
        middle = first + (tied - 1) / 2
        order = np.lexsort((candidates, -strongest[candidates], first[candidates], middle[candidates]))[:k]
        chosen = candidates[order]
        sources_names, sources_shared, texts, keys, review_rows = [], [], [], [], []
        drug_rows = self._review_rows(items=np.array([item]))
        for condition in chosen:  # k suggestions: tiny
            row = shared[condition]
            sources = reviewers[row.indices]
            counts = row.data.astype(int)
            ordering = np.lexsort((sources, -counts))
            sources, counts = sources[ordering], counts[ordering]
            sources_names.append([str(names[s]) for s in sources])
            sources_shared.append(counts.tolist())
            texts.append(_provenance_for_condition(subject, sources_names[-1], counts.tolist(), str(names[condition])))
            mine = drug_rows[np.isin(self.reviews.user[drug_rows], sources)]
            review_rows.append(mine)
            keys.append(np.full(len(mine), condition))
        rows = np.concatenate(review_rows) if review_rows else np.zeros(0, dtype=np.int64)
        part2 = self._evidence(rows, np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64), chosen)
        part2.insert(0, "user_index", chosen)
        part2 = self._ranked(part2, first[chosen], tied[chosen], n, names[chosen], FOR_CONDITION)
        part2.insert(0, "rank", np.arange(1, len(part2) + 1))
        part2["similar_conditions"] = sources_names
        part2["shared_drugs"] = sources_shared
        part2["provenance"] = texts
        return DrugAnswer("drug", subject, self.run.run_id, self.run.model.name, n, part1, part2, self.positive_rule)

    # -------------------------------------------------------------------------- drugs like this one
    def similar_to(self, drug, k: int = 10) -> SimilarDrugs:
        """The ``k`` drugs most similar to ``drug`` by the run's model, with the conditions both are reviewed for."""
        item = self.reviews.items.index(drug)
        similarity = np.asarray(self.run.model.item_similarity(np.array([item]))[0], dtype=np.float64)
        similarity[item] = -np.inf
        n = len(similarity) - 1
        first, tied = item_rank_counts(similarity[None, :], np.arange(len(similarity))[None, :])
        first, tied = first[0], tied[0]
        candidates = np.delete(np.arange(len(similarity)), item)
        chosen = candidates[np.lexsort((candidates, -similarity[candidates]))[:k]]
        names = self.reviews.item_titles()
        condition_names = self.reviews.users.ids.astype(str)
        counts = self.reviews.user_counts()
        by_item = self.matrix.tocsc()
        mine = set(by_item.indices[by_item.indptr[item] : by_item.indptr[item + 1]].tolist())
        shared_names, n_shared = [], []
        for other in chosen:  # k neighbours: tiny
            theirs = by_item.indices[by_item.indptr[other] : by_item.indptr[other + 1]]
            common = np.array([u for u in theirs if u in mine], dtype=np.int64)
            common = common[np.lexsort((common, -counts[common]))] if len(common) else common
            shared_names.append([str(condition_names[u]) for u in common])
            n_shared.append(len(common))
        rows = self._review_rows(items=chosen)
        overall = self._evidence(rows, self.reviews.item[rows], chosen)
        table = pd.DataFrame(
            {
                "rank": np.arange(1, len(chosen) + 1),
                "name": names[chosen],
                "model_rank": [rank_text(f, t, n, "drugs") for f, t in zip(first[chosen], tied[chosen])],
                "strength": rank_strength(first[chosen], tied[chosen], n),
                "shared_conditions": shared_names,
                "n_shared": n_shared,
                "reviews": overall["reviews"].to_numpy(),
                "mean_rating": overall["mean_rating"].to_numpy(),
                "status": overall["status"].to_numpy(),
                "item_index": chosen,
            }
        )
        return SimilarDrugs(str(names[item]), self.run.run_id, self.run.model.name, n, table)


def _provenance_for_drug(names: list[str], shared: list[int], subject: str) -> str:
    """ "used for Acne (6 drugs in common with Birth Control) and Endometriosis (2)"."""
    if not names:
        return ""
    parts = [f"{names[0]} ({shared[0]} drug{'s' if shared[0] != 1 else ''} in common with {subject})"]
    parts += [f"{name} ({count})" for name, count in zip(names[1:MAX_NAMED], shared[1:MAX_NAMED])]
    return "used for " + _join(parts, len(names))


def _provenance_for_condition(drug: str, names: list[str], shared: list[int], subject: str) -> str:
    """ "reviewed for Birth Control, which shares 3 drugs with Endometriosis"."""
    if not names:
        return ""
    parts = [f"{names[0]}, which shares {shared[0]} drug{'s' if shared[0] != 1 else ''} with {subject}"]
    parts += [f"{name} ({count})" for name, count in zip(names[1:MAX_NAMED], shared[1:MAX_NAMED])]
    return f"{drug} is reviewed for " + _join(parts, len(names))


# ---------------------------------------------------------------------------------- condition names
@dataclass(frozen=True)
class ConditionNames:
    """What the reader did to the scraped condition names (for the Data page).

    ``restored``: ``as_scraped``, ``restored`` and ``reviews`` for every name the truncation rule
    completed; ``suspect``: names that still look cut (kept as they are).
    """

    restored: pd.DataFrame
    suspect: tuple[str, ...]


def condition_names(reviews: Interactions) -> ConditionNames:
    """Restored and suspect condition names of Drugs.com data read by :func:`~recsys_core.datasets.read_drugscom`."""
    from .datasets.readers import suspect_condition_names

    names = pd.Series(reviews.users.ids[reviews.user], dtype=object)
    scraped = reviews.extra.get("condition_as_scraped")
    if scraped is None:
        restored = pd.DataFrame({"as_scraped": [], "restored": [], "reviews": []})
    else:
        frame = pd.DataFrame({"as_scraped": pd.Series(scraped, dtype=object), "restored": names})
        frame = frame[frame["as_scraped"] != frame["restored"]]
        restored = frame.groupby(["as_scraped", "restored"], sort=True).size().rename("reviews").reset_index()
    return ConditionNames(restored, tuple(suspect_condition_names(reviews.users.ids)))


# ---------------------------------------------------------------------------------- the one entry
def explorer_for_run(run) -> DrugExplorer:
    """Load every review of a saved run's data (from its recorded source) and build the explorer."""
    from .datasets.source import DataSource

    source = DataSource.from_json(run.record["dataset"]["source"])
    return DrugExplorer.build(run, source.all_reviews())


def drugs_for_condition(run, condition, k: int = 10, reviews: Interactions | None = None) -> DrugAnswer:
    """Condition → drugs for a saved run (``reviews``: all reviews of its data; loaded from its source when None)."""
    return _explorer(run, reviews).for_condition(condition, k=k)


def conditions_for_drug(run, drug, k: int = 10, reviews: Interactions | None = None) -> DrugAnswer:
    """Drug → conditions for a saved run, the same way."""
    return _explorer(run, reviews).for_drug(drug, k=k)


def drugs_like(run, drug, k: int = 10, reviews: Interactions | None = None) -> SimilarDrugs:
    """Drugs like one drug by the run's item-item similarity, with the conditions both are reviewed for."""
    return _explorer(run, reviews).similar_to(drug, k=k)


def _explorer(run, reviews: Interactions | None) -> DrugExplorer:
    return explorer_for_run(run) if reviews is None else DrugExplorer.build(run, reviews)


def is_drug_run(run) -> bool:
    return run.users.kind == "condition" and run.items.kind == "drug"
