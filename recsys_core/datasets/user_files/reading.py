"""Reading a user file into :class:`~recsys_core.interactions.Interactions`, with the options the person chose.

:class:`UserFileOptions` names the columns and the rules (rating threshold, how repeated (user, item)
rows combine, k-core); :func:`read_user_file` converts ids, numbers and times with a message naming
the file, row and column of the first bad cell, and :class:`ReadAccount` says where every row went.
All of it is vectorised with pandas / numpy: no Python loop runs over rows.
"""

from __future__ import annotations

import codecs
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ... import limits
from ...errors import DataError
from ...interactions import Interactions
from .sniffing import ROLES
from .tables import OpenedFile, Source, is_parquet, open_file, read_csv_table, read_parquet_table, text_layout

#: How repeated (user, item) rows of a file become one interaction (see :class:`UserFileOptions`).
DuplicateRule = Literal["latest", "sum", "count"]
DUPLICATE_RULES: tuple[DuplicateRule, ...] = ("latest", "sum", "count")
#: ``progress(fraction, text)`` of :func:`read_user_file`: the fraction of the work done when a step begins.
ReadProgress = Callable[[float, str], None]
#: Each rule in words: the Data page's choice and the row accounting say the same thing.
DUPLICATE_RULE_TEXT: dict[DuplicateRule, str] = {
    "latest": "keep the latest row",
    "sum": "keep the latest row, sum the weight column",
    "count": "keep the latest row, weight = number of rows",
}


@dataclass(frozen=True)
class UserFileOptions:
    """How to read a user file.

    ``threshold`` turns explicit ratings into implicit feedback: only rows with
    ``rating >= threshold`` are kept. ``duplicates`` decides what the rows of a repeated
    (user, item) pair become; each rule keeps the pair's latest row (by timestamp, ties and files
    without timestamps by file order: the last row) with its rating, time and title:

    * ``"latest"``: that row as it is, weight included;
    * ``"sum"``: its weight is the sum of the weight column over the pair's rows (a quantity, play
      counts); needs ``weight_col``;
    * ``"count"``: its weight is the number of the pair's rows (every row, also a single one, gets
      a weight).

    ``min_user_interactions`` / ``min_item_interactions`` apply an iterated k-core filter until
    every user and item has that many. ``delimiter`` and ``encoding`` are detected when None.
    ``drop_blank_ratings`` drops the rows whose rating cell is blank (a realistic export leaves a few
    unrated) instead of refusing the file; their count is in the :class:`ReadAccount`.
    """

    user_col: str
    item_col: str
    rating_col: str | None = None
    timestamp_col: str | None = None
    weight_col: str | None = None
    title_col: str | None = None
    threshold: float | None = None
    duplicates: DuplicateRule = "latest"
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    delimiter: str | None = None
    encoding: str | None = None
    drop_blank_ratings: bool = False

    def __post_init__(self) -> None:
        if not self.user_col or not self.item_col:
            raise DataError("choose a user column and an item column")
        if self.user_col == self.item_col:
            raise DataError(f"the user and the item column are both {self.user_col!r}", "Pick two different columns.")
        if self.duplicates not in DUPLICATE_RULES:
            raise DataError(f"duplicates must be 'latest', 'sum' or 'count', not {self.duplicates!r}")
        if self.duplicates == "sum" and self.weight_col is None:
            raise DataError(
                "summing repeated (user, item) rows needs a weight column",
                "Choose the column to sum (a quantity, play counts), or count the rows instead.",
            )
        if self.threshold is not None and self.rating_col is None:
            raise DataError("a rating threshold needs a rating column", "Choose the rating column or drop the threshold.")
        if self.drop_blank_ratings and self.rating_col is None:
            raise DataError("dropping rows with a blank rating needs a rating column", "Choose the rating column or keep every row.")
        for label in ("min_user_interactions", "min_item_interactions"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise DataError(f"{label} must be a whole number >= 0, not {value!r}")
        if self.delimiter is not None and (not isinstance(self.delimiter, str) or self.delimiter in ("", "\n", "\r", '"')):
            raise DataError(f"{self.delimiter!r} cannot be a delimiter", 'Use a character such as ",", ";", "|" or "\\t".')
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise DataError(f"unknown encoding {self.encoding!r}", "Use utf-8, utf-8-sig, latin-1 or cp1252.") from None

    @classmethod
    def from_json(cls, options: dict) -> UserFileOptions:
        """Options as a run record or the Data page stored them (``dataclasses.asdict``).

        Records from before the "count" rule may say ``"sum"`` without a weight column, which then
        summed a weight of 1 per row: exactly ``"count"``, which they are read as.
        """
        options = dict(options)
        if options.get("duplicates") == "sum" and options.get("weight_col") is None:
            options["duplicates"] = "count"
        return cls(**options)

    @property
    def columns(self) -> dict[str, str]:
        """Role -> column name for the roles that are set."""
        return {role: col for role in ROLES if (col := getattr(self, f"{role}_col")) is not None}


# -- public: read ------------------------------------------------------------------------------------------------
def _where(row: int, source: OpenedFile, header: bool) -> str:
    if header:
        return f"row {row + 2} of {source.label} (the header is row 1)"
    return f"row {row + 1} of {source.label}"


def _blank(values: pd.Series) -> np.ndarray:
    """Which cells are blank: missing, or text of only spaces."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    missing = values.isna() if numeric else values.isna() | (values.astype(str).str.strip() == "")
    return missing.to_numpy(dtype=bool)


def _numbers(values: pd.Series, col: str, role: str, source: OpenedFile, header: bool, blank_ok: bool = False) -> pd.Series:
    """Ratings and weights as numbers; ``blank_ok``: blank cells become NaN (the rows the caller drops)."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    missing = _blank(values)
    if missing.any() and not blank_ok:
        rows = np.flatnonzero(missing)
        more = f" and {len(rows) - 1:,} more row{'s' if len(rows) > 2 else ''}" if len(rows) > 1 else ""
        hint = f"Fill in every {role}, or remove those rows."
        if role == "rating":
            hint = (
                f"Fill in every rating, or drop the {len(rows):,} row{'s' if len(rows) > 1 else ''} with a blank rating "
                '(the Data page\'s "Drop rows with a blank rating"; UserFileOptions(drop_blank_ratings=True)).'
            )
        raise DataError(f"the {role} column {col!r} is empty in {_where(int(rows[0]), source, header)}{more}", hint)
    if numeric:
        return _finite(values, col, role, source, header, skip=missing)
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if (numbers.isna().to_numpy() & ~missing).any():
        decimal_comma = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        if (decimal_comma.notna().to_numpy() | missing).all():
            return _finite(decimal_comma, col, role, source, header, skip=missing)
        row = int(np.flatnonzero(numbers.isna().to_numpy() & ~missing)[0])
        raise DataError(
            f"the {role} column {col!r} has the non-numeric value {_cell(values.iloc[row])} in {_where(row, source, header)}",
            f"The {role} must be a number in every row: fix that cell, or choose another column.",
        )
    return _finite(numbers, col, role, source, header, skip=missing)


def _cell(value) -> str:
    """A cell for a message: repr, cut short (a 1 MB cell must not become a 1 MB message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(numbers: pd.Series, col: str, role: str, source: OpenedFile, header: bool, skip: np.ndarray | None = None) -> pd.Series:
    """Ratings and weights: finite, within ±MAX_ABS_VALUE (float32 would turn 1e300 into inf), weights >= 0.
    ``skip``: blank cells allowed to stay NaN."""
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (np.abs(values) > limits.MAX_ABS_VALUE)
    if skip is not None:
        bad &= ~skip
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"the {role} column {col!r} has {values[row]:g} in {_where(row, source, header)}: "
            f"{role}s must be finite numbers between -{limits.MAX_ABS_VALUE:g} and {limits.MAX_ABS_VALUE:g}",
            "Fix or remove that row.",
        )
    if role == "weight" and (values < 0).any():
        row = int(np.flatnonzero(values < 0)[0])
        raise DataError(
            f"the weight column {col!r} has the negative value {values[row]:g} in {_where(row, source, header)}",
            "Weights count interactions (plays, purchases) and must be >= 0; choose another column or fix the row.",
        )
    return numbers


def _ids(values: pd.Series, col: str, role: str, source: OpenedFile, header: bool) -> pd.Series:
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        if pd.api.types.is_unsigned_integer_dtype(values) and len(values) and int(values.max()) > np.iinfo(np.int64).max:
            return values.astype(str).astype(object)  # would wrap around in int64: keep as text ids
        return values.astype(np.int64)
    if pd.api.types.is_float_dtype(values):
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataError(f"the {role} column {col!r} is empty in {_where(row, source, header)}", f"Every row needs a {role}.")
        bad = ~np.isfinite(values.to_numpy()) | (np.abs(values.to_numpy()) >= limits.MAX_ID)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"the {role} column {col!r} has the id {values.iloc[row]:g} in {_where(row, source, header)}, "
                f"which is not a usable id (ids stored as decimals must lie within ±2^53)",
                f"Store {role} ids as whole numbers or text.",
            )
        if (values % 1 == 0).all():
            return values.astype(np.int64)
        return values.astype(str).astype(object)
    stripped = values.astype(str).str.strip().where(values.notna(), "")
    empty = stripped == ""
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(
            f"the {role} column {col!r} is empty in {_where(row, source, header)}",
            f"Every row needs a {role} id: fill in the cell or remove the row.",
        )
    # Ids are compared as the file's text: a column becomes whole numbers only when every id is one written
    # in its one canonical ASCII form, so "-0" and "0", "01" and "1", "1١" (an Arabic-Indic digit), "1２"
    # (a full-width digit) and "11" stay distinct ids rather than meeting as one number.
    integer = stripped.str.fullmatch(r"0|-?[1-9][0-9]{0,17}")
    if integer.all():
        return stripped.astype(np.int64)
    return stripped.astype(object)


def _joined_ids(values: pd.Series, role: str) -> str | None:
    """The first pair of distinct raw ids that trimming surrounding spaces makes one ("user ' 7' and '7'"), or None."""
    if values.dtype != object and not pd.api.types.is_string_dtype(values):
        return None
    raw = values.dropna().astype(str)
    stripped = raw.str.strip()
    changed = (raw != stripped).to_numpy()
    if not changed.any():
        return None
    first_raw = pd.Series(raw.to_numpy(), index=stripped.to_numpy()).groupby(level=0).agg(["first", "nunique"])
    joined = first_raw[first_raw["nunique"] > 1]
    if joined.empty:
        return None
    key = joined.index[0]
    others = raw[stripped == key].unique()[:2]
    return f"{role} {others[0]!r} and {others[1]!r}"


def _timestamps(values: pd.Series, col: str, source: OpenedFile, header: bool) -> np.ndarray:
    numeric_column = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if pd.api.types.is_datetime64_any_dtype(values) and not values.isna().any():
        parsed = pd.to_datetime(values, utc=True)
    elif numeric_column and not values.isna().any():
        # Unix times stored as numbers: no text conversion (it was a third of reading a 20M-row file).
        numbers = values.to_numpy(np.float64) if values.dtype.kind == "f" else values.to_numpy(np.int64)
        if len(numbers) and np.median(numbers) > 1e11:  # milliseconds since 1970
            return np.floor(numbers / 1000.0).astype(np.int64)
        return np.floor(numbers).astype(np.int64) if numbers.dtype.kind == "f" else numbers
    else:
        text = values.astype(str).str.strip().where(values.notna(), "")
        empty = text == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(
                f"the timestamp column {col!r} is empty in {_where(row, source, header)}",
                "Fill in every time, or leave the timestamp column unset.",
            )
        numbers = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(text, errors="coerce")
        if 0.5 < numbers.notna().mean() < 1:  # unix times with a few stray words: point at the first word
            row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
            raise DataError(
                f"the timestamp column {col!r} has {_cell(values.iloc[row])} in {_where(row, source, header)}, "
                "which is neither a unix time nor a date",
                "Use unix seconds in every row, or fix or remove that row.",
            )
        if numbers.notna().all():
            numbers = numbers.astype(np.float64)
            finite = np.isfinite(numbers.to_numpy())
            if finite.all() and np.median(numbers.to_numpy()) > 1e11:  # milliseconds since 1970
                numbers = numbers / 1000.0
            seconds = numbers.to_numpy()
            return _in_range(seconds, values, col, source, header)
        with warnings.catch_warnings():  # "could not infer format": handled by the "mixed" pass below
            warnings.simplefilter("ignore", UserWarning)
            parsed = pd.to_datetime(text, utc=True, errors="coerce")
            todo = parsed.isna()
            if todo.any():
                parsed[todo] = pd.to_datetime(text[todo], utc=True, errors="coerce", format="mixed")
        bad = parsed.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"the timestamp column {col!r} has {values.iloc[row]!r} in {_where(row, source, header)}, "
                "which is neither a unix time nor a date",
                'Use unix seconds or dates such as "2024-03-01" or "2024-03-01 14:30".',
            )
    seconds = ((parsed - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    return _in_range(seconds.astype(np.float64), values, col, source, header)


def _in_range(seconds: np.ndarray, values: pd.Series, col: str, source: OpenedFile, header: bool) -> np.ndarray:
    """Unix seconds within TIMESTAMP_RANGE: anything else is refused, never wrapped around in int64."""
    low, high = limits.TIMESTAMP_RANGE
    bad = ~np.isfinite(seconds) | (seconds < low) | (seconds > high)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"the timestamp column {col!r} has {_cell(values.iloc[row])} in {_where(row, source, header)}, "
            "outside the supported years 1900 to 2200",
            "Use unix seconds (or milliseconds) or dates; fix or remove that row.",
        )
    return np.floor(seconds).astype(np.int64)


def _kcore(frame: pd.DataFrame, min_user: int, min_item: int, steps: list[str]) -> pd.DataFrame:
    user = pd.factorize(frame["user"])[0]
    item = pd.factorize(frame["item"])[0]
    keep = np.ones(len(frame), dtype=bool)
    rounds = 0
    while True:
        users = np.bincount(user[keep], minlength=user.max() + 1 if len(user) else 0)
        items = np.bincount(item[keep], minlength=item.max() + 1 if len(item) else 0)
        new = keep & (users[user] >= min_user) & (items[item] >= min_item)
        rounds += 1
        if new.sum() == keep.sum():
            break
        keep = new
        steps.append(f"{int(keep.sum()):,} after k-core round {rounds} (users >= {min_user}, items >= {min_item})")
        if not keep.any():
            break
    return frame[keep]


@dataclass(frozen=True)
class ReadAccount:
    """Where every row of a user file went: read, dropped for a blank rating, merged as duplicates, dropped by
    the threshold or the k-core filter, kept.
    ``rows_read - blank_ratings_dropped - duplicates_merged - below_threshold - removed_by_kcore == kept``."""

    rows_read: int
    duplicates_merged: int
    duplicate_rule: DuplicateRule
    below_threshold: int
    removed_by_kcore: int
    kept: int
    weight_col: str | None = None
    joined_ids: tuple[str, ...] = ()  # raw ids read as one because they differ only in surrounding spaces
    blank_ratings_dropped: int = 0


    def rule_text(self) -> str:
        """How repeated rows combine, in words ("keep the latest row, sum the weight column 'plays'")."""
        text = DUPLICATE_RULE_TEXT[self.duplicate_rule]
        return f"{text} {self.weight_col!r}" if self.duplicate_rule == "sum" and self.weight_col else text

    def duplicate_text(self) -> str:
        """The duplicates cell of the row accounting: how many rows were merged, and always by which rule."""
        joined = f"; read as one id (surrounding spaces dropped): {', '.join(self.joined_ids)}" if self.joined_ids else ""
        if not self.duplicates_merged:
            return f"none (rule: {self.rule_text()}){joined}"
        return f"{self.duplicates_merged:,} merged ({self.rule_text()}){joined}"


def read_user_file_with_account(
    path_or_bytes: Source, options: UserFileOptions, name: str | None = None, display_name: str | None = None
) -> tuple[Interactions, ReadAccount]:
    """:func:`read_user_file` and the :class:`ReadAccount` of its rows."""
    accounts: list[ReadAccount] = []
    data = read_user_file(path_or_bytes, options, name, on_account=accounts.append, display_name=display_name)
    return data, accounts[0]


def read_user_file(
    path_or_bytes: Source,
    options: UserFileOptions,
    name: str | None = None,
    on_account: Callable[[ReadAccount], None] | None = None,
    display_name: str | None = None,
    progress: ReadProgress | None = None,
) -> Interactions:
    """Read a user's CSV / TSV / parquet file (a path, bytes or a binary file object) into Interactions.

    Steps, in order: read the chosen columns; convert ids (whole numbers become ints), ratings,
    weights and timestamps (unix seconds, milliseconds, or date strings); merge repeated
    (user, item) pairs by ``options.duplicates``; keep ``rating >= threshold``; apply the k-core
    filter. ``name`` defaults to the file name without its extension. ``on_account`` receives the
    :class:`ReadAccount` of the rows (see :func:`read_user_file_with_account`). ``display_name`` is
    the name the person knows the file by, for a stored copy under a content-hash name: every
    message says it (see :func:`~.tables.open_file`). ``progress(fraction, text)`` hears each step
    begin (reading the columns is most of the time on a large file).
    """
    report = progress or (lambda fraction, text: None)
    source = open_file(path_or_bytes, display_name)
    report(0.0, f"reading {source.label}")
    frame, header = _read_chosen_columns(source, options)
    report(0.5, f"checking and converting {len(frame):,} rows")
    _check_cell_lengths(frame, list(dict.fromkeys(options.columns.values())), source, header)
    data = _converted_columns(frame, options, source, header)
    joined = tuple(j for role, col in (("user", options.user_col), ("item", options.item_col)) if (j := _joined_ids(frame[col], role)))

    # Each filter appends what it left to ``steps`` (the message when nothing is left); the counts between
    # the filters are the ReadAccount.
    steps = [f"{len(data):,} rows read"]
    rows_read = len(data)
    data = _drop_blank_ratings(data, options, source, steps)
    unblank = len(data)
    report(0.75, f"merging repeated (user, item) rows ({DUPLICATE_RULE_TEXT[options.duplicates]}) and filtering")
    data = _merge_duplicates(data, options, steps)
    merged = len(data)
    data = _keep_above_threshold(data, options, source, steps)
    thresholded = len(data)
    data = _keep_kcore(data, options, source, steps)
    if on_account is not None:
        on_account(
            ReadAccount(
                rows_read=rows_read,
                duplicates_merged=unblank - merged,
                duplicate_rule=options.duplicates,
                below_threshold=merged - thresholded,
                removed_by_kcore=thresholded - len(data),
                kept=len(data),
                weight_col=options.weight_col,
                joined_ids=joined,
                blank_ratings_dropped=rows_read - unblank,
            )
        )
    report(0.9, f"indexing {len(data):,} interactions")
    item_info = None
    if options.title_col:
        item_info = data.groupby("item", sort=False)["title"].first().to_frame()
    return Interactions.from_frame(
        data.reset_index(drop=True),
        user_col="user",
        item_col="item",
        rating_col="rating" if options.rating_col else None,
        timestamp_col="timestamp" if options.timestamp_col else None,
        weight_col="weight" if "weight" in data.columns else None,
        item_info=item_info,
        name=name or source.stem,
    )


def _read_chosen_columns(source: OpenedFile, options: UserFileOptions) -> tuple[pd.DataFrame, bool]:
    """The file's rows (at least one) with every column ``options`` names, and whether it has a header row."""
    wanted = options.columns
    if is_parquet(source):
        columns = read_parquet_table(source, nrows=1).columns.tolist()
        header, layout = True, None
    else:
        layout = text_layout(source, options.delimiter, options.encoding)
        columns, header = layout.columns, layout.header
        if len(columns) < 2 and options.delimiter is None:
            raise DataError(
                f"{source.label} has a single column {columns[0]!r}: its delimiter is none of comma, tab, semicolon or '|'",
                "Choose the delimiter by hand (for example ':' or ' '), or save the file as CSV.",
            )
    missing = [(role, col) for role, col in wanted.items() if col not in columns]
    if missing:
        what = "; ".join(f"the {role} column {col!r}" for role, col in missing)
        raise DataError(
            f"{what} {'is' if len(missing) == 1 else 'are'} not in {source.label}", "Available columns: " + ", ".join(map(str, columns))
        )

    usecols = list(dict.fromkeys(wanted.values()))
    frame = read_parquet_table(source, columns=usecols) if layout is None else read_csv_table(source, layout)
    if frame.empty:
        raise DataError(f"{source.label} has a header but no rows of data", "Choose a file with at least one row of data.")
    return frame, header


def _check_cell_lengths(frame: pd.DataFrame, columns: list[str], source: OpenedFile, header: bool) -> None:
    """Refuse a text cell over MAX_CELL_CHARS: the sign of a wrong delimiter or an unclosed quote."""
    for col in columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            lengths = frame[col].astype(str).str.len().to_numpy()
            if len(lengths) and lengths.max() > limits.MAX_CELL_CHARS:
                row = int(np.argmax(lengths))
                raise DataError(
                    f"the column {col!r} has a value of {int(lengths[row]):,} characters in {_where(row, source, header)}, "
                    f"more than the {limits.MAX_CELL_CHARS:,} allowed",
                    "Check the delimiter and the quotes (an unclosed quote swallows the rest of the file), or shorten that cell.",
                )


def _converted_columns(frame: pd.DataFrame, options: UserFileOptions, source: OpenedFile, header: bool) -> pd.DataFrame:
    """The chosen columns under their role names (``user``, ``item``, ``rating`` ...), converted and checked."""
    data = pd.DataFrame(
        {
            "user": _ids(frame[options.user_col], options.user_col, "user", source, header),
            "item": _ids(frame[options.item_col], options.item_col, "item", source, header),
        }
    )
    if options.rating_col:
        ratings = _numbers(frame[options.rating_col], options.rating_col, "rating", source, header, blank_ok=options.drop_blank_ratings)
        data["rating"] = ratings.astype(np.float32)
    if options.timestamp_col:
        data["timestamp"] = _timestamps(frame[options.timestamp_col], options.timestamp_col, source, header)
    if options.weight_col:
        data["weight"] = _numbers(frame[options.weight_col], options.weight_col, "weight", source, header).astype(np.float64)
    if options.title_col:
        titles = frame[options.title_col]
        data["title"] = titles.astype(object).where(titles.notna(), None)
    return data


def _drop_blank_ratings(data: pd.DataFrame, options: UserFileOptions, source: OpenedFile, steps: list[str]) -> pd.DataFrame:
    """Without the rows whose rating is blank, when ``options.drop_blank_ratings`` (else ``data`` as it is)."""
    if not options.drop_blank_ratings:
        return data
    rows_read = len(data)
    data = data[data["rating"].notna()]
    if len(data) < rows_read:
        steps.append(f"{len(data):,} after dropping {rows_read - len(data):,} rows with a blank rating")
    if data.empty:
        raise DataError(f"every rating in {source.label} is blank", "Choose the rating column that holds the ratings, or none.")
    return data


def _keep_above_threshold(data: pd.DataFrame, options: UserFileOptions, source: OpenedFile, steps: list[str]) -> pd.DataFrame:
    """The rows with ``rating >= options.threshold`` (all of them without a threshold); refuses to leave none."""
    if options.threshold is None:
        return data
    low, high = float(data["rating"].min()), float(data["rating"].max())
    data = data[data["rating"] >= options.threshold]
    steps.append(f"{len(data):,} with {options.rating_col} >= {options.threshold:g}")
    if data.empty:
        raise DataError(
            f"no row of {source.label} is left: " + ", then ".join(steps),
            f"The ratings run from {low:g} to {high:g}; choose a threshold in that range or none.",
        )
    return data


def _keep_kcore(data: pd.DataFrame, options: UserFileOptions, source: OpenedFile, steps: list[str]) -> pd.DataFrame:
    """The k-core of ``options.min_user_interactions`` / ``min_item_interactions``; refuses to leave no row."""
    if options.min_user_interactions <= 1 and options.min_item_interactions <= 1:
        return data
    data = _kcore(data, options.min_user_interactions, options.min_item_interactions, steps)
    if data.empty:
        raise DataError(
            f"no row of {source.label} is left: " + ", then ".join(steps),
            "Lower the minimum interactions per user / per item (or the threshold).",
        )
    return data


def _has_repeated_pairs(data: pd.DataFrame) -> bool:
    """Whether any (user, item) repeats: two hash factorisations and one value sort of packed codes,
    several times faster than ``DataFrame.duplicated`` (a row-wise hash of both columns) at 20M rows."""
    users = pd.factorize(data["user"])[0]
    items, uniques = pd.factorize(data["item"])
    keys = np.sort(users.astype(np.int64) * len(uniques) + items)
    return bool(len(keys) > 1 and (keys[1:] == keys[:-1]).any())


def _merge_duplicates(data: pd.DataFrame, options: UserFileOptions, steps: list[str]) -> pd.DataFrame:
    """One row per (user, item): its latest (by timestamp, else by position), weighted by ``options.duplicates``.

    The weight of "sum" and "count" is a grouped transform over the pairs' rows (no Python loop);
    "count" gives every row a weight, 1 where a pair is not repeated.
    """
    before = len(data)
    if options.duplicates == "count":
        data = data.assign(weight=np.ones(len(data)))
    if not _has_repeated_pairs(data):
        return data
    ordered = data.sort_values("timestamp", kind="stable") if "timestamp" in data.columns else data
    if options.duplicates in ("sum", "count"):
        totals = ordered.groupby(["user", "item"], sort=False)["weight"].transform("sum")
        ordered = ordered.assign(weight=totals)
    merged = ordered.drop_duplicates(["user", "item"], keep="last").sort_index()
    steps.append(
        f"{len(merged):,} after merging {before - len(merged):,} repeated (user, item) rows ({DUPLICATE_RULE_TEXT[options.duplicates]})"
    )
    return merged
