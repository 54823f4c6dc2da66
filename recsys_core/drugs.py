"""Drug answers: condition → drugs, drug → conditions, drugs like this one (no Streamlit here).

A person asking "which drugs for Birth Control?" means the drugs patients use for it, ordered by
how well they fit, and then what else might fit; a model's raw top-K of unseen items answers a
different question (it excludes every drug already reviewed for the condition). So an answer has
two labelled parts:

1. **Reviewed for this condition**, ordered by the model, each with the patients' evidence: how many
   reviews were positive, neutral and negative, the mean rating and the most useful review of each
   kind.
2. **Not yet reviewed for it**: drugs reviewed for *similar conditions*, each scored by the model
   and weighted by how similar its source condition is, naming those conditions with their
   similarity, with the evidence of its reviews there. A drug no similar condition uses has
   nothing to show for itself and is not listed, whatever its score; when no condition is similar
   enough the answer says so instead of reaching further.

**Condition similarity** measures overlap, not contact. With P_a the set of drugs condition a has a
positive review for (the model's own data), n_ab = |P_a ∩ P_b| and λ = :data:`SIMILARITY_SHRINKAGE`:

    sim(a, b) = n_ab / sqrt(|P_a| · |P_b|) · n_ab / (n_ab + λ)

the cosine of the two drug sets, shrunk towards 0 when it rests on few shared drugs. A pair counts
as similar only with n_ab >= :data:`MIN_SHARED_DRUGS` and sim >= :data:`MIN_CONDITION_SIMILARITY`;
below that a condition contributes nothing. So Acne, which shares 2 of Birth Control's 34
positively reviewed pills (sim 0.04), no longer carries acne drugs into a contraception answer,
while Abnormal Uterine Bleeding (3 of its 3, sim 0.18) does. Part 2 orders a suggestion by
strength × similarity: the model's 0-100 strength of the drug for the subject times the similarity
of the most similar condition it comes from. The reverse question (drug → conditions) and the
hand-built profile ("a new condition from your own list of drugs", whose drug set is the list)
use the same rule.

Part 1 can be ordered two ways (``order``): by the model (``"model"``) or by the reviews' evidence
(``"evidence"``), the order a pharmacist asks for: the Wilson lower bound of the positive share
(:func:`wilson_lower_bound`; 7 of 8 positive beats 1 of 1), then the number of reviews, then the
model's rank.

Brand and generic names of one drug are separate items in Drugs.com data. Where the data itself
pairs two names (the same review, word for word with the same rating, listed under both), each
row names the other (``other_names``); nothing is merged.

Drug → conditions is the mirror image. Scores are never shown raw (a logit means nothing to a
reader): each is turned into its rank among all drugs for that condition ("ranked 3rd of 470",
"tied 5th-9th of 470" where the model gives equal scores) and a 0-100 strength, the mid-rank
percentile of that rank. A drug most of whose reviews are negative is flagged, never a plain
suggestion.

Evidence comes from *all* reviews (:meth:`~recsys_core.experiment.DataSource.all_reviews`), the model
from the positive ones; both share one vocabulary, so an index means the same drug in either.
Review classes follow the run's positive rule: rating >= threshold positive, below 5 of 10
negative, neutral between (exactly the sample's labels). On data whose ratings are bins (the
sample: 2.5 / 5.5 / 8.5 for negative / neutral / positive) the mean rating is a mean of bin
midpoints, and the answer says so (``rating_note``). The CLI and the Recommend page both call
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
Question = Literal["condition", "drug", "profile"]

NEGATIVE_BELOW = 5.0
"""Ratings below this (1-4 of 10; the sample's "negative") are negative reviews."""

FOR_CONDITION = "drugs for this condition"
"""How a drug answer reads its ranks: "ranked 3rd of 470 drugs for this condition"."""

MAX_NAMED = 3
"""Similar conditions named per suggestion; the rest are counted."""

MIN_SHARED_DRUGS = 2
"""Two conditions are similar only if at least this many drugs have a positive review for both."""

SIMILARITY_SHRINKAGE = 2.0
"""λ in sim = cosine · n / (n + λ): a similarity resting on few shared drugs is shrunk towards 0."""

MIN_CONDITION_SIMILARITY = 0.1
"""Conditions less similar than this (see the module docstring) contribute nothing to part 2."""

SIMILARITY_RULE = (
    f"similarity = cosine of the two conditions' positively reviewed drug sets × n / (n + {SIMILARITY_SHRINKAGE:g}), "
    f"n the drugs both share; a condition counts as similar with n >= {MIN_SHARED_DRUGS} and similarity >= {MIN_CONDITION_SIMILARITY:g}"
)
"""The rule in words, for the answers and the page."""

PartOneOrder = Literal["model", "evidence"]
PART_ONE_ORDERS: tuple[PartOneOrder, ...] = ("model", "evidence")
ORDER_TEXT: dict[PartOneOrder, str] = {
    "model": "ordered by {model}",
    "evidence": "ordered by the reviews' evidence (positive share, Wilson 95% lower bound, then number of reviews)",
}

WILSON_Z = 1.959963984540054
"""The normal quantile of a two-sided 95% interval (scipy.stats.norm.ppf(0.975))."""

WELL_REVIEWED = 10
"""A condition with at least this many reviews is "well reviewed" (the Home page starts on one)."""

MIN_PAIRED_REVIEW_CHARS = 40
"""A review text shorter than this ("Works great.") may repeat by chance: it never pairs two names."""


def wilson_lower_bound(successes: np.ndarray, trials: np.ndarray, z: float = WILSON_Z) -> np.ndarray:
    """Lower bound of the Wilson score interval (Wilson 1927) of a proportion, 0 where ``trials`` is 0.

    (p̂ + z²/2n − z·sqrt(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n): unlike p̂ itself it ranks 7 positive of 8
    (0.53) above 1 of 1 (0.21), since one review is weak evidence; the same as scipy's
    ``binomtest(k, n).proportion_ci(method="wilson").low``, for whole arrays at once."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    safe = np.maximum(n, 1.0)
    share = k / safe
    centre = share + z * z / (2 * safe)
    spread = z * np.sqrt(share * (1 - share) / safe + z * z / (4 * safe * safe))
    return np.where(n > 0, (centre - spread) / (1 + z * z / safe), 0.0)


def condition_similarity(drug_sets: sp.csr_matrix, rows: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Similarity of each drug set of ``rows`` (binary, sets × drugs) to every condition's set in
    ``drug_sets`` (binary, conditions × drugs), and the shared drug counts; both sets × conditions.

    The shrunk cosine of the module docstring, set to 0 where the pair does not count as similar
    (fewer than :data:`MIN_SHARED_DRUGS` shared, or below :data:`MIN_CONDITION_SIMILARITY`)."""
    shared = np.asarray((rows @ drug_sets.T).todense(), dtype=np.float64)
    sizes = np.sqrt(np.outer(np.diff(rows.indptr), np.diff(drug_sets.indptr)).astype(np.float64))
    cosine = np.divide(shared, sizes, out=np.zeros_like(shared), where=sizes > 0)
    similarity = cosine * shared / (shared + SIMILARITY_SHRINKAGE)
    similarity[(shared < MIN_SHARED_DRUGS) | (similarity < MIN_CONDITION_SIMILARITY)] = 0.0
    return similarity, shared.astype(np.int64)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


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
    columns ``reviews``, ``positive``, ``neutral``, ``negative``, ``positive_share_low`` (Wilson 95%
    lower bound), ``mean_rating``, ``mostly_negative``, ``best_positive``, ``best_neutral``,
    ``best_negative`` and ``status``, and for drug rows ``other_names`` (the brand or generic name the
    data pairs with it, "" if none); ``suggested`` adds ``similarity`` (of the most similar source
    condition), ``weighted`` (strength × similarity, what part 2 is ordered by), ``similar_conditions``
    (names, most similar first), ``similarities``, ``shared_drugs`` (counts) and ``provenance`` (text).
    In a drug answer the rows are conditions and the ranks are the drug's among all drugs for each.
    A ``profile`` answer is for a hand-built list of drugs: part 1 is the list, part 2 the suggestions.
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
    order: PartOneOrder = "model"
    suggested_note: str = ""
    rating_note: str = ""
    similarity_rule: str = SIMILARITY_RULE

    @property
    def reviewed_title(self) -> str:
        order = ORDER_TEXT[self.order].format(model=self.model)
        if self.question == "condition":
            return f"Part 1 · Drugs reviewed for {self.subject} ({len(self.reviewed)}), {order}"
        if self.question == "profile":
            return f"Part 1 · Your drugs ({len(self.reviewed)}), {order}, with all their reviews"
        return f"Part 1 · Conditions {self.subject} is reviewed for ({len(self.reviewed)}), by its rank among the drugs for each"

    @property
    def suggested_title(self) -> str:
        if self.question == "condition":
            return (
                f"Part 2 · Not yet reviewed for {self.subject}: drugs used for similar conditions, by {self.model}'s strength × similarity"
            )
        if self.question == "profile":
            return f"Part 2 · Drugs used for conditions similar to your list, by {self.model}'s strength × similarity"
        return f"Part 2 · Conditions {self.subject} is not yet reviewed for that it may fit, from similar conditions"

    @property
    def mean_rating_label(self) -> str:
        """The mean rating column's name: says when the ratings are bins."""
        return "Mean rating bin (2.5/5.5/8.5)" if self.rating_note else "Mean rating (1-10)"

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
            "order": self.order,
            "similarity_rule": self.similarity_rule,
            "rating_note": self.rating_note,
            "suggested_note": self.suggested_note,
            "note": self.note,
            "reviewed": rows(self.reviewed),
            "suggested": rows(self.suggested),
        }

    def text(self, max_rows: int | None = None, review_chars: int = 110) -> str:
        """The answer as plain text for a terminal: both parts (part 1 cut to ``max_rows``), the evidence, the note once."""
        what = {"condition": "drugs for", "drug": "conditions for", "profile": "drugs for a new condition from"}[self.question]
        lines = [f"{what.capitalize()} {self.subject} · run {self.run_id} ({self.model}) · positive rule: {self.positive_rule}"]
        if self.rating_note:
            lines.append(self.rating_note)
        lines.append("")
        # In a drug answer part 2's evidence is the drug's reviews for conditions of part 1: quoted there already.
        quote_part2 = self.question != "drug"
        for title, table, empty, quotes in (
            (self.reviewed_title, self.reviewed, "nothing reviewed", True),
            (self.suggested_title, self.suggested, self.suggested_note or "nothing to suggest", quote_part2),
        ):
            lines.append(title)
            if table is self.suggested:
                lines.append(f"  ({self.similarity_rule})")
            if table.empty:
                lines.append(f"  {empty}")
            shown = table if max_rows is None else table.head(max_rows)
            for row in shown.to_dict("records"):
                lines.extend(_row_text(row, review_chars, quotes, bins=bool(self.rating_note)))
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


def _row_text(row: dict, review_chars: int, quotes: bool = True, bins: bool = False) -> list[str]:
    counts = f"{row['reviews']} review{'' if row['reviews'] == 1 else 's'}: {row['positive']} positive, {row['neutral']} neutral, {row['negative']} negative"
    mean = f" · mean {'of rating bins ' if bins else ''}{row['mean_rating']:.1f}/10" if row["reviews"] else ""
    head = f"  {row['rank']:>2}. {row['name']}  {_bar(row['strength'])} {row['strength']:>3}  {row['model_rank']}"
    if "weighted" in row:
        head += f" · × similarity {row['similarity']:.2f} = {row['weighted']:.1f}"
    lines = [head]
    if row.get("other_names"):
        lines.append(f"      also listed as {row['other_names']} (the same reviews appear under both names)")
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
def paired_names(reviews: Interactions) -> list[list[str]]:
    """For each drug, the other drug names the data pairs it with: names under which the same review
    (word for word, same rating, at least :data:`MIN_PAIRED_REVIEW_CHARS` characters) is listed.

    Drugs.com lists a review under a brand and its generic name alike (Zoloft and sertraline), and
    the scraped data keeps both copies; this finds those pairs from the data alone, never from a list."""
    texts = reviews.extra.get("review")
    out: list[list[str]] = [[] for _ in range(reviews.n_items)]
    if texts is None or reviews.rating is None:
        return out
    frame = pd.DataFrame({"text": pd.Series(texts, dtype=object).astype(str).str.strip(), "rating": reviews.rating, "item": reviews.item})
    frame = frame[frame["text"].str.len() >= MIN_PAIRED_REVIEW_CHARS].drop_duplicates()
    frame = frame[frame.duplicated(["text", "rating"], keep=False)]
    if frame.empty:
        return out
    pairs = frame.merge(frame, on=["text", "rating"])
    pairs = pairs.loc[pairs["item_x"] != pairs["item_y"], ["item_x", "item_y"]].drop_duplicates()
    names = reviews.item_titles()
    for item, other in pairs.sort_values(["item_x", "item_y"]).itertuples(index=False):  # a handful of pairs
        out[int(item)].append(str(names[int(other)]))
    return out


@dataclass(frozen=True, eq=False)
class DrugExplorer:
    """A run together with all reviews of its data: answers condition, drug and similarity questions.

    Build it once per (run, data) with :meth:`build` and keep it (the page caches it): it holds
    the condition × drug matrix of all reviews, that of positive reviews (condition similarity reads
    it), each review's class and the brand/generic names the data pairs.
    """

    run: object
    reviews: Interactions
    classes: ReviewClasses
    positive_rule: str
    matrix: sp.csr_matrix = field(repr=False)  # conditions × drugs, 1 where any review
    labels: np.ndarray = field(repr=False)  # each review's class
    texts: np.ndarray = field(repr=False)  # each review's text (trimmed only when quoted)
    positive_sets: sp.csr_matrix = field(default=None, repr=False)  # type: ignore[assignment]  # conditions × drugs, 1 where a positive review
    other_names: tuple[str, ...] = field(default=(), repr=False)  # per drug: "Implanon" (joined) or ""
    rating_note: str = ""

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
        dataset = run.info.dataset
        # A run saved before the positive rule was recorded read Drugs.com reviews with the built-in rule.
        threshold = dataset.positive_rule.threshold if dataset.rule_recorded else DRUG_POSITIVE_THRESHOLD
        classes = ReviewClasses.for_threshold(threshold)
        text = dataset.positive_rule.text if dataset.rule_recorded else None
        texts = reviews.extra.get("review")
        texts = np.asarray(texts, dtype=object) if texts is not None else np.full(len(reviews), "", dtype=object)
        labels = classes.classify(reviews.rating)
        positive = labels == "positive"
        positive_sets = _binary(
            sp.csr_matrix(
                (np.ones(int(positive.sum())), (reviews.user[positive], reviews.item[positive])), shape=(reviews.n_users, reviews.n_items)
            )
        )
        binned = "rating_label" in reviews.extra
        return cls(
            run=run,
            reviews=reviews,
            classes=classes,
            positive_rule=text or f"ratings >= {classes.positive_at:g} are positives",
            matrix=reviews.to_csr(),
            labels=labels,
            texts=texts,
            positive_sets=positive_sets,
            other_names=tuple(", ".join(names) for names in paired_names(reviews)),
            rating_note=(
                "Ratings in this data are bins, not stars: negative reviews read as 2.5, neutral as 5.5 and positive as 8.5 of 10, "
                "so a mean rating is a mean of those bin midpoints."
            )
            if binned
            else "",
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
        out["positive_share_low"] = np.round(wilson_lower_bound(out["positive"].to_numpy(), out["reviews"].to_numpy()), 3)
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

    def _other_names(self, items: np.ndarray) -> list[str]:
        return [self.other_names[i] if self.other_names else "" for i in np.asarray(items, dtype=np.int64)]

    def _answer(
        self, question: Question, subject: str, n: int, part1: pd.DataFrame, part2: pd.DataFrame, order: PartOneOrder, empty: str
    ) -> DrugAnswer:
        return DrugAnswer(
            question,
            subject,
            self.run.run_id,
            self.run.model.name,
            n,
            part1,
            part2,
            self.positive_rule,
            order=order,
            suggested_note=empty if part2.empty else "",
            rating_note=self.rating_note,
        )

    # -------------------------------------------------------------------------- condition → drugs
    def for_condition(self, condition, k: int = 10, order: PartOneOrder = "model") -> DrugAnswer:
        """Drugs for a condition: part 1 all drugs reviewed for it (ordered by ``order``), part 2 the
        ``k`` best not yet reviewed, from similar conditions."""
        _check_order(order)
        user = self.reviews.users.index(condition)
        scores = np.asarray(self.run.score(np.array([user]))[0], dtype=np.float64)
        subject = str(self.reviews.users.ids[user])
        reviewed = self.matrix[user].indices
        rows = self._review_rows(users=np.array([user]), items=reviewed)
        part1 = self._drug_rows(reviewed, rows, scores, order)
        similarity, shared = condition_similarity(self.positive_sets, self.positive_sets[user])
        similarity[0, user] = 0.0
        part2 = self._suggested_drugs(similarity[0], shared[0], reviewed, scores, k, subject)
        empty = f"No condition is similar enough to {subject} to suggest anything from, so nothing is suggested."
        return self._answer("condition", subject, len(scores), part1, part2, order, empty)

    def for_profile(self, drugs, k: int = 10, order: PartOneOrder = "model", subject: str = "your list") -> DrugAnswer:
        """A new condition given by a hand-built list of drugs (raw names or ids, in the order added):
        part 1 the list with all reviews of each drug, part 2 drugs from conditions similar to the list
        (the list is the new condition's drug set), scored by the model folding the list in."""
        _check_order(order)
        in_order = self.reviews.items.indices(list(drugs))  # a handful of names picked by hand
        if not len(in_order):
            raise DataError("the list of drugs is empty", "Pick at least one drug.")
        picked = np.unique(in_order)
        scores = np.asarray(self.run.model.fold_in(in_order), dtype=np.float64)
        rows = self._review_rows(items=picked)
        part1 = self._drug_rows(picked, rows, scores, order)
        profile = _binary(
            sp.csr_matrix((np.ones(len(picked)), (np.zeros(len(picked), dtype=np.int64), picked)), shape=(1, self.reviews.n_items))
        )
        similarity, shared = condition_similarity(self.positive_sets, profile)
        part2 = self._suggested_drugs(similarity[0], shared[0], picked, scores, k, subject)
        empty = f"No condition is similar enough to {subject} to suggest anything from, so nothing is suggested."
        return self._answer("profile", subject, len(scores), part1, part2, order, empty)

    def _drug_rows(self, items: np.ndarray, rows: np.ndarray, scores: np.ndarray, order: PartOneOrder) -> pd.DataFrame:
        """Part 1 for drugs ``items``: the evidence of review ``rows``, the model's ranks, in ``order``."""
        first, tied = _ranks(scores, items)
        table = self._drug_table(rows, items, first, tied, len(scores))
        keys = ["rank_first", "reviews"] if order == "model" else ["positive_share_low", "reviews", "rank_first"]
        ascending = [True, False] if order == "model" else [False, False, True]
        table = table.sort_values(keys, ascending=ascending, kind="stable").reset_index(drop=True)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return table

    def _suggested_drugs(
        self, similarity: np.ndarray, shared: np.ndarray, exclude: np.ndarray, scores: np.ndarray, k: int, subject: str
    ) -> pd.DataFrame:
        """Part 2: drugs reviewed for a condition with ``similarity`` > 0 to the subject, not in ``exclude``,
        ordered by the model's strength × the similarity of the most similar condition they come from."""
        similar = np.flatnonzero(similarity > 0)
        # weight[d]: the largest similarity among the similar conditions with a review of drug d.
        weight = np.zeros(self.reviews.n_items)
        if len(similar):
            weight = np.asarray((sp.diags(similarity[similar]) @ self.matrix[similar]).max(axis=0).todense()).ravel()
        weight[exclude] = 0.0
        candidates = np.flatnonzero(weight > 0)
        n = len(scores)
        first, tied = _ranks(scores, candidates)
        strength = rank_strength(first, tied, n)
        weighted = strength * weight[candidates]
        order = np.lexsort((candidates, first, -weighted))[:k]
        chosen, first, tied, weighted = candidates[order], first[order], tied[order], weighted[order]
        by_item = self.matrix[:, chosen].tocsc()
        condition_names = self.reviews.users.ids
        sources_names, sources_similarity, sources_shared, texts = [], [], [], []
        for column in range(len(chosen)):  # k suggestions: tiny
            users = by_item.indices[by_item.indptr[column] : by_item.indptr[column + 1]]
            users = users[similarity[users] > 0]
            users = users[np.lexsort((users, -similarity[users]))]
            sources_names.append([str(condition_names[u]) for u in users])
            sources_similarity.append(np.round(similarity[users], 3).tolist())
            sources_shared.append(shared[users].astype(int).tolist())
            texts.append(_provenance_for_drug(sources_names[-1], sources_similarity[-1], sources_shared[-1], subject))
        rows = self._review_rows(users=similar, items=chosen)
        table = self._drug_table(rows, chosen, first, tied, n)
        table.insert(0, "rank", np.arange(1, len(table) + 1))
        return _with_sources(table, weight[chosen], weighted, sources_names, sources_similarity, sources_shared, texts)

    def _drug_table(self, rows: np.ndarray, items: np.ndarray, first: np.ndarray, tied: np.ndarray, n: int) -> pd.DataFrame:
        """Drugs ``items`` with the evidence of review ``rows``, their names, ranks among ``n`` drugs and other names."""
        table = self._evidence(rows, self.reviews.item[rows], items)
        table.insert(0, "item_index", items)
        table = self._ranked(table, first, tied, n, self.reviews.item_titles()[items], "drugs")
        table.insert(2, "other_names", self._other_names(items))
        return table

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
        """Conditions for a drug: part 1 all it is reviewed for, part 2 the ``k`` conditions similar to
        one of those, by the drug's strength there × that similarity (the rule of :meth:`for_condition`)."""
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

        # similarity[j, c]: how similar condition c is to the j-th condition this drug is reviewed for.
        similarity, shared = condition_similarity(self.positive_sets, self.positive_sets[reviewers])
        similarity[:, reviewers] = 0.0
        strongest = similarity.max(axis=0) if len(reviewers) else np.zeros(self.reviews.n_users)
        candidates = np.flatnonzero(strongest > 0)
        strength = rank_strength(first[candidates], tied[candidates], n)
        weighted = strength * strongest[candidates]
        order = np.lexsort((candidates, first[candidates], -weighted))[:k]
        chosen, weighted = candidates[order], weighted[order]
        sources_names, sources_similarity, sources_shared, texts, keys, review_rows = [], [], [], [], [], []
        drug_rows = self._review_rows(items=np.array([item]))
        for condition in chosen:  # k suggestions: tiny
            mine = np.flatnonzero(similarity[:, condition] > 0)
            mine = mine[np.lexsort((reviewers[mine], -similarity[mine, condition]))]
            sources = reviewers[mine]
            sources_names.append([str(names[s]) for s in sources])
            sources_similarity.append(np.round(similarity[mine, condition], 3).tolist())
            sources_shared.append(shared[mine, condition].astype(int).tolist())
            texts.append(
                _provenance_for_condition(subject, sources_names[-1], sources_similarity[-1], sources_shared[-1], str(names[condition]))
            )
            evidence = drug_rows[np.isin(self.reviews.user[drug_rows], sources)]
            review_rows.append(evidence)
            keys.append(np.full(len(evidence), condition))
        rows = np.concatenate(review_rows) if review_rows else np.zeros(0, dtype=np.int64)
        part2 = self._evidence(rows, np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64), chosen)
        part2.insert(0, "user_index", chosen)
        part2 = self._ranked(part2, first[chosen], tied[chosen], n, names[chosen], FOR_CONDITION)
        part2.insert(0, "rank", np.arange(1, len(part2) + 1))
        part2 = _with_sources(part2, strongest[chosen], weighted, sources_names, sources_similarity, sources_shared, texts)
        empty = f"No condition is similar enough to one {subject} is reviewed for, so no other condition is suggested."
        return self._answer("drug", subject, n, part1, part2, "model", empty)

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
                "other_names": self._other_names(chosen),
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

    # -------------------------------------------------------------------------- where to start
    def well_reviewed_conditions(self, min_reviews: int = WELL_REVIEWED) -> np.ndarray:
        """Conditions with at least ``min_reviews`` reviews (or the most reviewed one when none has), most reviewed first."""
        counts = self.reviews.user_counts()
        order = np.argsort(-counts, kind="stable")
        well = order[counts[order] >= min_reviews]
        return well if len(well) else order[:1]


def _check_order(order: str) -> None:
    if order not in PART_ONE_ORDERS:
        raise DataError(f"unknown order {order!r} for part 1", f"Choose one of: {', '.join(PART_ONE_ORDERS)}.")


def _ranks(scores: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First rank and tie count of ``items`` among all scores of one subject."""
    first, tied = item_rank_counts(scores[None, :], np.asarray(items, dtype=np.int64)[None, :])
    return first[0], tied[0]



def _with_sources(table: pd.DataFrame, similarity, weighted, names: list, similarities: list, shared: list, texts: list) -> pd.DataFrame:
    """A part-2 table's columns on where each suggestion comes from: the similarity that weighs it, the
    weighted strength it is ordered by, and per suggestion its source names, their similarities, the drugs
    shared with each and the sentence that says so."""
    table["similarity"] = np.round(similarity, 3)
    table["weighted"] = np.round(weighted, 1)
    table["similar_conditions"] = names
    table["similarities"] = similarities
    table["shared_drugs"] = shared
    table["provenance"] = texts
    return table


def _provenance_for_drug(names: list[str], similarity: list[float], shared: list[int], subject: str) -> str:
    """ "used for Abnormal Uterine Bleeding (similarity 0.18: 3 drugs in common with Birth Control) and Endometriosis (0.14, 3)"."""
    if not names:
        return ""
    parts = [
        f"{names[0]} (similarity {similarity[0]:.2f}: {shared[0]} positively reviewed drug{'s' if shared[0] != 1 else ''} in common with {subject})"
    ]
    parts += [
        f"{name} ({value:.2f}, {count})" for name, value, count in zip(names[1:MAX_NAMED], similarity[1:MAX_NAMED], shared[1:MAX_NAMED])
    ]
    return "used for " + _join(parts, len(names))


def _provenance_for_condition(drug: str, names: list[str], similarity: list[float], shared: list[int], subject: str) -> str:
    """ "reviewed for Birth Control, similar to Endometriosis (similarity 0.14: 3 drugs in common)"."""
    if not names:
        return ""
    parts = [
        f"{names[0]}, similar to {subject} (similarity {similarity[0]:.2f}: {shared[0]} positively reviewed drug{'s' if shared[0] != 1 else ''} in common)"
    ]
    parts += [
        f"{name} ({value:.2f}, {count})" for name, value, count in zip(names[1:MAX_NAMED], similarity[1:MAX_NAMED], shared[1:MAX_NAMED])
    ]
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
    return DrugExplorer.build(run, run.info.dataset.data_source().all_reviews())


def drugs_for_condition(run, condition, k: int = 10, reviews: Interactions | None = None, order: PartOneOrder = "model") -> DrugAnswer:
    """Condition → drugs for a saved run (``reviews``: all reviews of its data; loaded from its source when None)."""
    return _explorer(run, reviews).for_condition(condition, k=k, order=order)


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
