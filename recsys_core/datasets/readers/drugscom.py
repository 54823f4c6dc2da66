"""The Drugs.com patient review reader (Gräßer et al. 2018): a medical condition plays the user, a drug
the item, and each review stays as evidence. It reads UCI's TSVs, Kaggle's CSV copies and the
explabox sample, restores the condition names the scrape cut short, and maps the sample's binned
rating labels onto the 1-10 scale.
"""

from __future__ import annotations

import bisect
import html
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ...interactions import Interactions
from .common import as_folder, read_csv_file

__all__ = [
    "DRUGSCOM_FILE_SETS",
    "DRUGSCOM_SAMPLE_RATINGS",
    "DRUGSCOM_TRUNCATED_WORDS",
    "read_drugscom",
    "restore_condition_names",
    "suspect_condition_names",
]

#: The Drugs.com sample bins the 1-10 rating into labels; each label maps to the midpoint of its bin.
#: The explabox demo describes the bins as negative (1-5), neutral (5-6) and positive (6-10), read
#: here as 1-4, 5-6 and 7-10, whose midpoints are 2.5, 5.5 and 8.5.
DRUGSCOM_SAMPLE_RATINGS: dict[str, float] = {"negative": 2.5, "neutral": 5.5, "positive": 8.5}


#: File pairs a Drugs.com folder may hold: UCI's raw TSVs, Kaggle's CSV copies, the sample's TSVs.
DRUGSCOM_FILE_SETS: tuple[tuple[str, ...], ...] = (
    ("drugsComTrain_raw.tsv", "drugsComTest_raw.tsv"),
    ("drugsComTrain_raw.csv", "drugsComTest_raw.csv"),
    ("drugsComTrain.tsv", "drugsComTest.tsv"),
)
_DRUGSCOM_COLUMNS = ("drugName", "condition", "review", "rating", "date", "usefulCount")


def _drugscom_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    folders = [source] + [p for p in sorted(source.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    for folder in folders:
        for names in DRUGSCOM_FILE_SETS:
            present = [folder / n for n in names if (folder / n).is_file()]
            if present:
                return present
    found = sorted(p.name for p in source.iterdir() if not p.name.startswith("."))
    raise DataError(
        f"{source} holds no Drugs.com review files",
        "Expected drugsComTrain_raw.tsv and drugsComTest_raw.tsv (UCI), their .csv versions (Kaggle) or "
        f"drugsComTrain.tsv and drugsComTest.tsv (sample); the folder holds: {', '.join(found[:20]) or 'nothing'}.",
    )


def _unescape(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    has_entity = values.str.contains("&", regex=False, na=False)
    if has_entity.any():
        values = values.copy()
        values[has_entity] = values[has_entity].map(html.unescape)
    return values


def _strip_wrapping_quotes(values: pd.Series) -> pd.Series:
    values = values.fillna("").astype(str)
    wrapped = values.str.startswith('"') & values.str.endswith('"') & (values.str.len() >= 2)
    values = values.where(~wrapped, values.str.slice(1, -1))
    return values.str.strip()


def _parse_dates(dates: pd.Series, where: str) -> np.ndarray:
    """Dates like "May 12, 2017" (UCI), "12-May-17" (Kaggle) or any pandas-readable date -> unix seconds."""
    text = dates.astype(str).str.strip()
    parsed = pd.to_datetime(text, format="%B %d, %Y", errors="coerce")
    for fmt in ("%d-%b-%y", "%Y-%m-%d", "mixed"):
        todo = parsed.isna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{where}: unreadable date {dates.iloc[row]!r} in row {row + 1}",
            'Dates must look like "May 12, 2017".',
        )
    return ((parsed - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


#: Final words of Drugs.com condition names that the scrape cut short, with their complete form.
#: Every one lost a trailing "r" or "or" ("Bipolar Disorde", "Breast Cance", "Premature Lab",
#: "Not Listed / Othe"); the list holds those seen in the explabox sample of it, and a word is completed only as
#: the last word of a name, so "Lab" inside a longer name is left alone.
DRUGSCOM_TRUNCATED_WORDS: dict[str, str] = {
    "Disorde": "Disorder",
    "Cance": "Cancer",
    "Othe": "Other",
    "Feve": "Fever",
    "Ulce": "Ulcer",
    "Bladde": "Bladder",
    "Trem": "Tremor",
    "Lab": "Labor",
}


def restore_condition_names(names: pd.Series) -> pd.Series:
    """Condition names with the scrape's truncations undone, by two documented rules.

    1. A name that is a proper prefix of exactly one other condition name of the data, cut in the
       middle of a word (the next character of the longer name is a letter), is that condition:
       "Premature Lab" becomes "Premature Labor" when both occur. A cut at a word boundary is a real
       broader condition and stays ("Acne" beside "Acne Rosacea", "Gout" beside "Gout, Acute").
    2. A name whose last word is one of :data:`DRUGSCOM_TRUNCATED_WORDS` gets that word completed
       ("Bipolar Disorde" -> "Bipolar Disorder", "Premature Lab" -> "Premature Labor").

    Works on the distinct names (a few thousand at most), then maps every row.
    """
    distinct = pd.Series(pd.unique(names.dropna())).astype(str)
    mapping: dict[str, str] = {}
    ordered = sorted(distinct.tolist())
    for name in ordered:  # distinct names only: prefix search in the sorted list, not over reviews
        start = bisect.bisect_right(ordered, name)
        longer = []
        for other in ordered[start:]:
            if not other.startswith(name):
                break
            if other[len(name)].isalpha() and name[-1:].isalnum():
                longer.append(other)
        if len(longer) == 1:
            mapping[name] = longer[0]
    words = distinct.str.rsplit(" ", n=1)
    for name, parts in zip(distinct, words):
        last = parts[-1]
        target = mapping.get(name, name)
        if target == name and last in DRUGSCOM_TRUNCATED_WORDS:
            mapping[name] = name[: len(name) - len(last)] + DRUGSCOM_TRUNCATED_WORDS[last]
    # A name mapped onto a name that is itself restored goes all the way.
    for name, target in list(mapping.items()):
        seen = {name}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        mapping[name] = target
    if not mapping:
        return names
    restored = names.map(mapping)  # a dictionary lookup per row inside pandas, no Python call per review
    return restored.where(restored.notna(), names)


def suspect_condition_names(names: Iterable[str]) -> list[str]:
    """Condition names that still look like scraping artefacts after :func:`restore_condition_names`:
    cut at the start (a lower-case first letter: "ibromyalgia", "mance Anxiety") or holding an
    unmatched parenthesis ("moterol)"). They are kept, and listed on the Data page."""
    out = []
    for name in sorted(set(map(str, names))):
        starts_cut = name[:1].isalpha() and name[:1].islower()
        unbalanced = name.count("(") != name.count(")")
        if starts_cut or unbalanced:
            out.append(name)
    return out


def read_drugscom(source: str | Path, name: str = "drugscom", display_name: str | None = None) -> Interactions:
    """Drugs.com patient reviews (Gräßer et al. 2018): the medical condition is the user, the drug the item.

    ``source`` is a folder holding UCI's ``drugsComTrain_raw.tsv`` + ``drugsComTest_raw.tsv``,
    Kaggle's ``.csv`` copies of them, or the explabox sample's ``drugsComTrain.tsv`` +
    ``drugsComTest.tsv`` (or one of those files). Columns: an unnamed id (``uniqueID`` on Kaggle),
    drugName, condition, review, rating, date, usefulCount.

    * Rows without a condition and rows whose condition is a scraping artefact (anything holding
      ``</span>``, like "3</span> users found this comment helpful.") are dropped. Names the scrape
      cut short are restored by :func:`restore_condition_names` ("Premature Lab" -> "Premature
      Labor", "Not Listed / Othe" -> "Not Listed / Other"); the name as scraped stays in
      ``extra["condition_as_scraped"]``. Names cut at the start are kept as they are
      (:func:`suspect_condition_names` lists them).
    * HTML entities (``&#039;``, ``&amp;`` ...) are unescaped and the quotes wrapping each review
      removed; dates ("May 12, 2017") become unix seconds (UTC midnight).
    * ``rating`` is the 1-10 star rating. The sample bins it into labels, mapped to the midpoints
      of their bins on the same scale: negative (1-4) -> 2.5, neutral (5-6) -> 5.5, positive
      (7-10) -> 8.5; the label is kept in ``extra["rating_label"]``.
    * ``weight`` is usefulCount; ``extra`` holds ``review`` (text), ``useful`` (usefulCount),
      ``review_id`` and ``condition_as_scraped``.
    * ``display_name``: the name messages give a single file (an upload's name, where ``source`` is
      its content-hashed copy in the data home).
    * Every review is kept, whatever its rating: which reviews count as positive feedback is the
      data source's positive rule (rating >= 7, see :data:`~recsys_core.datasets.builtin.DRUG_POSITIVE_THRESHOLD`);
      the others stay as evidence. Every review is one interaction: a (condition, drug) pair may repeat.
    * ``item_info``: ``title`` (drug name), ``top_condition`` (the condition it is most reviewed
      for, ties alphabetical), ``reviews``; ``user_info``: ``reviews`` per condition.
    """
    source = as_folder(source, "Drugs.com")
    data = _read_review_files(source, display_name)
    data = _cleaned_reviews(data, display_name or source)
    extra_cols = ["review", "useful", "review_id", "condition_as_scraped"]
    if _convert_ratings(data):
        extra_cols.append("rating_label")
    useful = pd.to_numeric(data["usefulCount"], errors="coerce")
    if useful.isna().any():
        row = int(np.flatnonzero(useful.isna().to_numpy())[0])
        raise DataError(
            f"{data['_file'].iloc[row]}: usefulCount {data['usefulCount'].iloc[row]!r} in row {data['_row'].iloc[row]} is not a number"
        )
    data["useful"] = useful.astype(np.int64)
    data["weight"] = data["useful"]
    ids = pd.to_numeric(data["review_id"], errors="coerce")
    data["review_id"] = ids.astype(np.int64) if ids.notna().all() else data["review_id"].astype(object)
    data["timestamp"] = _parse_dates(data["date"], ", ".join(sorted(set(data["_file"]))))
    item_info, user_info = _drug_and_condition_info(data)
    return Interactions.from_frame(
        data,
        user_col="condition",
        item_col="drugName",
        rating_col="rating",
        timestamp_col="timestamp",
        weight_col="weight",
        extra_cols=extra_cols,
        item_info=item_info,
        user_info=user_info,
        name=name,
        user_kind="condition",
        item_kind="drug",
    )


def _read_review_files(source: Path, display_name: str | None) -> pd.DataFrame:
    """The rows of every review file of ``source`` as text, with ``review_id`` and where each row came from
    (``_file``, the file's name in messages, and ``_row``, counted from 1)."""
    frames = []
    for path in _drugscom_files(source):
        # A single uploaded file is named as the person knows it, not by its content-hashed copy.
        label = display_name if display_name and source.is_file() else path.name
        sep = "," if path.suffix.lower() == ".csv" else "\t"
        frame = read_csv_file(path, label, sep=sep, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
        frame = frame.rename(columns={frame.columns[0]: "review_id"}) if "uniqueID" not in frame.columns else frame
        frame = frame.rename(columns={"uniqueID": "review_id"})
        missing = [c for c in _DRUGSCOM_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(
                f"{label} lacks the column(s) {', '.join(missing)}",
                f"A Drugs.com file has the columns uniqueID, {', '.join(_DRUGSCOM_COLUMNS)}; "
                f"this one has {', '.join(map(str, frame.columns))}.",
            )
        frame["_file"] = label
        frame["_row"] = np.arange(1, len(frame) + 1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _cleaned_reviews(data: pd.DataFrame, source_name: str | Path) -> pd.DataFrame:
    """The rows that name a condition, with condition names restored (the scraped one kept), drug names and
    reviews unescaped; refuses a file whose rows name no condition or a row without a drug."""
    condition = data["condition"].str.strip()
    keep = condition.notna() & (condition != "") & ~condition.str.contains("</span>", regex=False, na=False)
    data = data[keep.to_numpy()].reset_index(drop=True)
    if data.empty:
        raise DataError(f"no Drugs.com review in {source_name} names a condition", "The files hold no usable rows.")
    data["condition_as_scraped"] = _unescape(data["condition"].str.strip())
    data["condition"] = restore_condition_names(data["condition_as_scraped"])
    data["drugName"] = _unescape(data["drugName"].fillna("").str.strip())
    if (data["drugName"] == "").any():
        row = int(np.flatnonzero((data["drugName"] == "").to_numpy())[0])
        raise DataError(f"{data['_file'].iloc[row]}: empty drug name in row {data['_row'].iloc[row]}")
    data["review"] = _unescape(_strip_wrapping_quotes(data["review"]))
    return data


def _convert_ratings(data: pd.DataFrame) -> bool:
    """``data["rating"]`` as float32 on the 1-10 scale, in place; the sample's labels become the midpoints of
    their bins (:data:`DRUGSCOM_SAMPLE_RATINGS`) and stay in ``data["rating_label"]``. Whether labels were read."""
    rating = pd.to_numeric(data["rating"], errors="coerce")
    labelled = bool(rating.isna().any())
    if labelled:
        labels = data["rating"].fillna("").str.strip().str.lower()
        mapped = labels.map(DRUGSCOM_SAMPLE_RATINGS)
        bad = mapped.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{data['_file'].iloc[row]}: rating {data['rating'].iloc[row]!r} in row {data['_row'].iloc[row]} "
                "is neither a number nor a sample label",
                "Ratings are 1-10 or, in the sample, negative / neutral / positive.",
            )
        rating = mapped
        data["rating_label"] = labels.astype(object).to_numpy()
    data["rating"] = rating.astype(np.float32)
    return labelled


def _drug_and_condition_info(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``item_info`` (per drug: ``title``, ``top_condition``, most reviewed, ties alphabetical, ``reviews``) and
    ``user_info`` (``reviews`` per condition)."""
    pairs = data.groupby(["drugName", "condition"], sort=False).size().rename("n").reset_index()
    pairs = pairs.sort_values(["drugName", "n", "condition"], ascending=[True, False, True], kind="stable")
    top = pairs.drop_duplicates("drugName").set_index("drugName")["condition"]
    counts = data["drugName"].value_counts()
    item_info = pd.DataFrame(
        {"title": counts.index.astype(object), "top_condition": top.reindex(counts.index).to_numpy(), "reviews": counts.to_numpy(np.int64)},
        index=counts.index,
    )
    user_counts = data["condition"].value_counts()
    user_info = pd.DataFrame({"reviews": user_counts.to_numpy(np.int64)}, index=user_counts.index)
    return item_info, user_info
