"""The user's own interaction files: CSV / TSV (any common delimiter and encoding) or parquet.

:func:`sniff_user_file` looks at the start of a file and guesses its delimiter, encoding and
which columns hold users, items, ratings and so on, for a form the user confirms;
:func:`read_user_file` then reads it with :class:`UserFileOptions` into
:class:`~recsys_core.interactions.Interactions`. Every problem with the file is a
:class:`~recsys_core.errors.DataError` saying what is wrong, where, and how to fix it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Union

import numpy as np
import pandas as pd

from ..errors import DataError
from ..interactions import Interactions

__all__ = ["UserFileOptions", "sniff_user_file", "read_user_file", "ROLES"]

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

#: The column roles a user file can fill, in the order guesses are made.
ROLES = ("user", "item", "rating", "timestamp", "weight", "title")

_DELIMITERS = (",", "\t", ";", "|")
_HEAD_BYTES = 1 << 16
_PREVIEW_ROWS = 10

# Normalised column names (lower case, letters and digits only) for each role: exact matches first,
# then names containing one of the fragments.
_NAMES = {
    "user": (
        "userid",
        "user",
        "uid",
        "users",
        "username",
        "customerid",
        "customer",
        "custid",
        "client",
        "clientid",
        "visitorid",
        "visitor",
        "reviewerid",
        "reviewer",
        "memberid",
        "member",
        "personid",
        "patientid",
        "patient",
        "accountid",
        "account",
        "condition",
        "sessionid",
        "session",
    ),
    "item": (
        "itemid",
        "item",
        "iid",
        "items",
        "movieid",
        "movie",
        "productid",
        "product",
        "asin",
        "sku",
        "drugname",
        "drug",
        "drugid",
        "bookid",
        "book",
        "isbn",
        "trackid",
        "track",
        "songid",
        "song",
        "articleid",
        "article",
        "artistid",
        "artist",
        "gameid",
        "game",
        "recipeid",
        "recipe",
        "businessid",
        "business",
        "contentid",
    ),
    "rating": ("rating", "ratings", "score", "stars", "star", "rate", "reviewscore", "overall", "grade", "preference"),
    "timestamp": (
        "timestamp",
        "time",
        "date",
        "datetime",
        "ts",
        "createdat",
        "created",
        "eventtime",
        "reviewdate",
        "unixreviewtime",
        "ratingdate",
        "when",
        "day",
    ),
    "weight": (
        "weight",
        "count",
        "counts",
        "plays",
        "playcount",
        "quantity",
        "qty",
        "clicks",
        "views",
        "usefulcount",
        "amount",
        "frequency",
        "freq",
        "listens",
        "purchases",
    ),
    "title": ("title", "name", "movietitle", "itemname", "productname", "producttitle", "booktitle", "songname", "label"),
}
_FRAGMENTS = {
    "user": ("user", "customer", "client", "visitor", "reviewer"),
    "item": ("item", "movie", "product", "drug", "book", "track", "song"),
    "rating": ("rating", "score", "star"),
    "timestamp": ("time", "date"),
    "weight": ("count", "weight", "quantity"),
    "title": ("title",),
}


@dataclass(frozen=True)
class UserFileOptions:
    """How to read a user file.

    ``threshold`` turns explicit ratings into implicit feedback: only rows with
    ``rating >= threshold`` are kept. ``duplicates`` decides what a repeated (user, item) pair
    becomes: ``"latest"`` keeps its latest row by timestamp (without timestamps: the last in the
    file); ``"sum"`` keeps the latest row but with the weights of all its rows summed (each row
    weighs 1 without a weight column). ``min_user_interactions`` / ``min_item_interactions`` apply
    an iterated k-core filter until every user and item has that many. ``delimiter`` and
    ``encoding`` are detected when None.
    """

    user_col: str
    item_col: str
    rating_col: str | None = None
    timestamp_col: str | None = None
    weight_col: str | None = None
    title_col: str | None = None
    threshold: float | None = None
    duplicates: Literal["latest", "sum"] = "latest"
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    delimiter: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        if not self.user_col or not self.item_col:
            raise DataError("choose a user column and an item column")
        if self.user_col == self.item_col:
            raise DataError(f"the user and the item column are both {self.user_col!r}", "Pick two different columns.")
        if self.duplicates not in ("latest", "sum"):
            raise DataError(f"duplicates must be 'latest' or 'sum', not {self.duplicates!r}")
        if self.threshold is not None and self.rating_col is None:
            raise DataError("a rating threshold needs a rating column", "Choose the rating column or drop the threshold.")
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

    @property
    def columns(self) -> dict[str, str]:
        """Role -> column name for the roles that are set."""
        return {role: col for role in ROLES if (col := getattr(self, f"{role}_col")) is not None}


# -- getting the bytes ------------------------------------------------------------------------------------
@dataclass
class _Input:
    label: str  # for messages
    stem: str  # default data set name
    path: Path | None
    data: bytes | None
    head: bytes
    suffix: str

    def handle(self):
        return self.path if self.data is None else io.BytesIO(self.data)


def _open(source: Source) -> _Input:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _finish(_Input("the uploaded file", "upload", None, data, data[:_HEAD_BYTES], ""))
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = Path(str(getattr(source, "name", "upload")))
        return _finish(_Input(name.name or "the uploaded file", name.stem or "upload", None, data, data[:_HEAD_BYTES], name.suffix.lower()))
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist", "Check the path and the file name.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file", "Pick the CSV, TSV or parquet file inside it.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffixes = [s.lower() for s in path.suffixes]
    return _finish(_Input(path.name, path.name.split(".")[0] or "upload", path, None, head, suffixes[-1] if suffixes else ""))


def _finish(source: _Input) -> _Input:
    if not source.head.strip():
        raise DataError(f"{source.label} is empty", "Choose a file with a header row and at least one row of data.")
    if source.head[:2] == b"\x1f\x8b":  # gzip: unpack, then treat as the file inside
        try:
            raw = source.data if source.data is not None else source.path.read_bytes()
            data = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{source.label} is a damaged gzip file: {exc}") from None
        inner = source.label[:-3] if source.label.endswith(".gz") else source.label
        return _finish(_Input(inner, source.stem, None, data, data[:_HEAD_BYTES], Path(inner).suffix.lower()))
    return source


def _is_parquet(source: _Input) -> bool:
    return source.head[:4] == b"PAR1" or source.suffix in (".parquet", ".pq")


# -- sniffing text files -------------------------------------------------------------------------------------
def _detect_encoding(head: bytes, complete: bool, label: str) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head[:2] == b"PK":
        raise DataError(
            f"{label} is a zip archive or an Excel workbook, not a text table",
            "Unpack the archive, or save the sheet as CSV (File > Save as > CSV UTF-8).",
        )
    sample = head[:4096]
    controls = sum(sample.count(bytes([b])) for b in (*range(0, 9), 11, 14, *range(16, 27), *range(28, 32)))
    if b"\x00" in head or controls > max(2, len(sample) // 50):
        raise DataError(
            f"{label} looks like binary data, not a CSV, TSV or parquet file",
            "Export the data as CSV (comma- or tab-separated text) or parquet.",
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    high = set(head) & set(range(0x80, 0xA0))
    if high and not high & {0x81, 0x8D, 0x8F, 0x90, 0x9D}:
        return "cp1252"  # Windows' Western encoding: smart quotes etc. live in 0x80-0x9f
    return "latin-1"


def _decode_head(head: bytes, encoding: str, complete: bool) -> str:
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=True)
    if not complete and "\n" in text:  # drop the last, probably cut-off line
        text = text[: text.rfind("\n") + 1]
    return text


def _records(text: str, delimiter: str, limit: int = 50) -> list[list[str]]:
    rows = []
    reader = (
        csv.reader(io.StringIO(text), delimiter=delimiter) if len(delimiter) == 1 else (line.split(delimiter) for line in text.splitlines())
    )
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append(row)
                if len(rows) >= limit:
                    break
    except csv.Error:
        pass
    return rows


def _detect_delimiter(text: str) -> tuple[str, int]:
    """The candidate splitting the header and the following rows into the same number (>1) of fields."""
    best, best_score = ",", (0.0, 1)
    for delimiter in _DELIMITERS:
        rows = _records(text, delimiter)
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        body = rows[1:] or rows
        consistent = sum(len(r) == width for r in body) / len(body)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best, best_score[1]


def _is_number(cell: str) -> bool:
    try:
        float(cell.strip())
        return True
    except ValueError:
        return False


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _guess_columns(columns: list[str], header: bool) -> dict[str, str | None]:
    guesses: dict[str, str | None] = dict.fromkeys(ROLES)
    if not header:  # positional: user, item, rating, timestamp, as in MovieLens' u.data
        for role, col in zip(("user", "item", "rating", "timestamp"), columns, strict=False):
            guesses[role] = col
        return guesses
    taken: set[str] = set()
    normal = {col: _normalise(col) for col in columns}
    for role in ROLES:
        exact = [c for c in columns if c not in taken and normal[c] in _NAMES[role]]
        exact.sort(key=lambda c: _NAMES[role].index(normal[c]))
        partial = [c for c in columns if c not in taken and any(f in normal[c] for f in _FRAGMENTS[role])]
        for col in exact + partial:
            guesses[role] = col
            taken.add(col)
            break
    return guesses


@dataclass
class _TextLayout:
    encoding: str
    delimiter: str
    header: bool
    columns: list[str]
    warnings: list[str]


def _layout(source: _Input, delimiter: str | None, encoding: str | None) -> _TextLayout:
    complete = (
        source.data is not None
        and len(source.data) <= _HEAD_BYTES
        or (source.path is not None and source.path.stat().st_size <= _HEAD_BYTES)
    )
    encoding = encoding or _detect_encoding(source.head, complete, source.label)
    text = _decode_head(source.head, encoding, complete)
    warnings = []
    if delimiter is None:
        delimiter, width = _detect_delimiter(text)
        if width < 2:
            warnings.append("only one column was found: the delimiter is none of comma, tab, semicolon and |; choose the delimiter by hand")
    rows = _records(text, delimiter, limit=2)
    if not rows:
        raise DataError(f"{source.label} holds no rows", "Choose a file with a header row and at least one row of data.")
    first = [cell.strip() for cell in rows[0]]
    header = not all(_is_number(cell) for cell in first if cell) or not any(first)
    columns = first if header else [f"column_{i + 1}" for i in range(len(first))]
    return _TextLayout(encoding, delimiter, header, columns, warnings)


def _read_csv(source: _Input, layout: _TextLayout, nrows: int | None = None, skip_bad_lines: bool = False):
    """All columns as text. Rows with more fields than the header are an error (an unquoted
    delimiter inside a value shifts every later column), unless ``skip_bad_lines``."""
    sep = layout.delimiter
    engine = "c"
    if len(sep) > 1:
        sep, engine = re.escape(sep), "python"
    kwargs = dict(
        sep=sep, engine=engine, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=True,
        header=0 if layout.header else None, nrows=nrows, index_col=False,
    )  # fmt: skip
    if not layout.header:
        kwargs["names"] = layout.columns
    if skip_bad_lines:
        kwargs["on_bad_lines"] = "skip"
    encodings = [layout.encoding]
    if layout.encoding == "utf-8":
        encodings.append("cp1252")
    if encodings[-1] == "cp1252":
        encodings.append("latin-1")
    for i, encoding in enumerate(encodings):
        try:
            with warnings.catch_warnings():  # index_col=False: a trailing delimiter is not a column
                warnings.simplefilter("ignore", pd.errors.ParserWarning)
                frame = pd.read_csv(source.handle(), encoding=encoding, **kwargs)
            layout.encoding = encoding
            break
        except UnicodeDecodeError:
            if i == len(encodings) - 1:
                raise DataError(f"{source.label} cannot be decoded as {layout.encoding}") from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{source.label} holds no rows", "Choose a file with a header row and at least one row of data.") from None
        except (pd.errors.ParserError, ValueError, csv.Error) as exc:
            raise DataError(
                f"{source.label} cannot be read as a table separated by {_describe(layout.delimiter)}: {exc}",
                "Check the delimiter, and that text holding the delimiter is in double quotes.",
            ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _describe(delimiter: str) -> str:
    return {",": "commas", "\t": "tabs", ";": "semicolons", "|": "'|'", " ": "spaces"}.get(delimiter, repr(delimiter))


def _read_parquet(source: _Input, columns: list[str] | None = None, nrows: int | None = None) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq

        file = pq.ParquetFile(source.handle())
        if nrows is not None:
            batch = next(file.iter_batches(batch_size=max(1, nrows), columns=columns), None)
            frame = batch.to_pandas() if batch is not None else file.schema_arrow.empty_table().to_pandas()
        else:
            frame = file.read(columns=columns).to_pandas()
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataError(f"{source.label} is not a readable parquet file: {exc}", "Export the parquet file again, or use CSV.") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


# -- public: sniff ---------------------------------------------------------------------------------------------
def sniff_user_file(path_or_bytes: Source, delimiter: str | None = None, encoding: str | None = None) -> dict:
    """A first look at a user file, for a form where the user confirms the columns.

    Returns ``format`` ("csv" or "parquet"), ``delimiter``, ``encoding``, ``header`` (whether the
    first row names the columns), ``columns``, ``preview`` (a DataFrame of the first rows, all
    text), ``guesses`` (role -> column or None for user, item, rating, timestamp, weight, title)
    and ``warnings`` (things the user should look at, e.g. a single column).
    """
    source = _open(path_or_bytes)
    if _is_parquet(source):
        preview = _read_parquet(source, nrows=_PREVIEW_ROWS)
        columns = list(preview.columns)
        return {
            "format": "parquet",
            "delimiter": None,
            "encoding": None,
            "header": True,
            "columns": columns,
            "preview": preview,
            "guesses": _guess_columns(columns, True),
            "warnings": [],
        }
    layout = _layout(source, delimiter, encoding)
    try:
        preview = _read_csv(source, layout, nrows=_PREVIEW_ROWS)
    except DataError as exc:  # show what can be shown, and say what is wrong
        preview = _read_csv(source, layout, nrows=_PREVIEW_ROWS, skip_bad_lines=True)
        layout.warnings.append(exc.message)
    columns = list(preview.columns)
    return {
        "format": "csv",
        "delimiter": layout.delimiter,
        "encoding": layout.encoding,
        "header": layout.header,
        "columns": columns,
        "preview": preview,
        "guesses": _guess_columns(columns, layout.header),
        "warnings": layout.warnings,
    }


# -- public: read ------------------------------------------------------------------------------------------------
def _where(row: int, source: _Input, header: bool) -> str:
    if header:
        return f"row {row + 2} of {source.label} (the header is row 1)"
    return f"row {row + 1} of {source.label}"


def _numbers(values: pd.Series, col: str, role: str, source: _Input, header: bool) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    missing = values.isna() if numeric else values.isna() | (values.astype(str).str.strip() == "")
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(
            f"the {role} column {col!r} is empty in {_where(row, source, header)}",
            f"Fill in every {role}, or remove those rows.",
        )
    if numeric:
        return values
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.isna().any():
        decimal_comma = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        if decimal_comma.notna().all():
            return decimal_comma
        row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
        raise DataError(
            f"the {role} column {col!r} has the non-numeric value {values.iloc[row]!r} in {_where(row, source, header)}",
            f"The {role} must be a number in every row: fix that cell, or choose another column.",
        )
    return numbers


def _ids(values: pd.Series, col: str, role: str, source: _Input, header: bool) -> pd.Series:
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return values.astype(np.int64)
    if pd.api.types.is_float_dtype(values):
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataError(f"the {role} column {col!r} is empty in {_where(row, source, header)}", f"Every row needs a {role}.")
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
    integer = stripped.str.fullmatch(r"-?(0|[1-9]\d{0,17})")
    if integer.all():
        return stripped.astype(np.int64)
    return stripped.astype(object)


def _timestamps(values: pd.Series, col: str, source: _Input, header: bool) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values) and not values.isna().any():
        parsed = pd.to_datetime(values, utc=True)
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
        if numbers.notna().all():
            numbers = numbers.astype(np.float64)
            if np.nanmedian(numbers.to_numpy()) > 1e11:  # milliseconds since 1970
                numbers = numbers / 1000.0
            return np.floor(numbers.to_numpy()).astype(np.int64)
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
    return ((parsed - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


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
    """Where every row of a user file went: read, merged as duplicates, dropped by the threshold or the
    k-core filter, kept. ``rows_read - duplicates_merged - below_threshold - removed_by_kcore == kept``."""

    rows_read: int
    duplicates_merged: int
    duplicate_rule: Literal["latest", "sum"]
    below_threshold: int
    removed_by_kcore: int
    kept: int

    def duplicate_text(self) -> str:
        how = {"latest": "kept the latest row", "sum": "kept the latest row, summed the weights"}[self.duplicate_rule]
        return f"{self.duplicates_merged:,} merged ({how})" if self.duplicates_merged else "none"


def read_user_file_with_account(
    path_or_bytes: Source, options: UserFileOptions, name: str | None = None
) -> tuple[Interactions, ReadAccount]:
    """:func:`read_user_file` and the :class:`ReadAccount` of its rows."""
    accounts: list[ReadAccount] = []
    data = read_user_file(path_or_bytes, options, name, on_account=accounts.append)
    return data, accounts[0]


def read_user_file(
    path_or_bytes: Source, options: UserFileOptions, name: str | None = None, on_account: Callable[[ReadAccount], None] | None = None
) -> Interactions:
    """Read a user's CSV / TSV / parquet file (a path, bytes or a binary file object) into Interactions.

    Steps, in order: read the chosen columns; convert ids (whole numbers become ints), ratings,
    weights and timestamps (unix seconds, milliseconds, or date strings); merge repeated
    (user, item) pairs by ``options.duplicates``; keep ``rating >= threshold``; apply the k-core
    filter. ``name`` defaults to the file name without its extension. ``on_account`` receives the
    :class:`ReadAccount` of the rows (see :func:`read_user_file_with_account`).
    """
    source = _open(path_or_bytes)
    wanted = options.columns
    if _is_parquet(source):
        columns = _read_parquet(source, nrows=1).columns.tolist()
        header, layout = True, None
    else:
        layout = _layout(source, options.delimiter, options.encoding)
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
    frame = _read_parquet(source, columns=usecols) if layout is None else _read_csv(source, layout)
    if frame.empty:
        raise DataError(f"{source.label} has a header but no rows of data", "Choose a file with at least one row of data.")

    data = pd.DataFrame(
        {
            "user": _ids(frame[options.user_col], options.user_col, "user", source, header),
            "item": _ids(frame[options.item_col], options.item_col, "item", source, header),
        }
    )
    if options.rating_col:
        data["rating"] = _numbers(frame[options.rating_col], options.rating_col, "rating", source, header).astype(np.float32)
    if options.timestamp_col:
        data["timestamp"] = _timestamps(frame[options.timestamp_col], options.timestamp_col, source, header)
    if options.weight_col:
        data["weight"] = _numbers(frame[options.weight_col], options.weight_col, "weight", source, header).astype(np.float64)
    if options.title_col:
        titles = frame[options.title_col]
        data["title"] = titles.astype(object).where(titles.notna(), None)

    steps = [f"{len(data):,} rows read"]
    rows_read = len(data)
    data = _merge_duplicates(data, options, steps)
    merged = len(data)
    if options.threshold is not None:
        low, high = float(data["rating"].min()), float(data["rating"].max())
        data = data[data["rating"] >= options.threshold]
        steps.append(f"{len(data):,} with {options.rating_col} >= {options.threshold:g}")
        if data.empty:
            raise DataError(
                f"no row of {source.label} is left: " + ", then ".join(steps),
                f"The ratings run from {low:g} to {high:g}; choose a threshold in that range or none.",
            )
    thresholded = len(data)
    if options.min_user_interactions > 1 or options.min_item_interactions > 1:
        data = _kcore(data, options.min_user_interactions, options.min_item_interactions, steps)
        if data.empty:
            raise DataError(
                f"no row of {source.label} is left: " + ", then ".join(steps),
                "Lower the minimum interactions per user / per item (or the threshold).",
            )

    if on_account is not None:
        on_account(ReadAccount(rows_read, rows_read - merged, options.duplicates, merged - thresholded, thresholded - len(data), len(data)))
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


def _merge_duplicates(data: pd.DataFrame, options: UserFileOptions, steps: list[str]) -> pd.DataFrame:
    """One row per (user, item): its latest (by timestamp, else by position); weights summed for "sum"."""
    before = len(data)
    if options.duplicates == "sum" and "weight" not in data.columns:
        data = data.assign(weight=np.ones(len(data)))
    if not data.duplicated(["user", "item"]).any():
        return data
    ordered = data.sort_values("timestamp", kind="stable") if "timestamp" in data.columns else data
    if options.duplicates == "sum":
        totals = ordered.groupby(["user", "item"], sort=False)["weight"].transform("sum")
        ordered = ordered.assign(weight=totals)
    merged = ordered.drop_duplicates(["user", "item"], keep="last").sort_index()
    steps.append(f"{len(merged):,} after merging {before - len(merged):,} repeated (user, item) rows ({options.duplicates})")
    return merged
