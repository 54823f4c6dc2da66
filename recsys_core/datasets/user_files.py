"""The user's own interaction files: CSV / TSV (any common delimiter and encoding) or parquet.

:func:`sniff_user_file` looks at the start of a file and guesses its delimiter, encoding and
which columns hold users, items, ratings and so on, for a form the user confirms;
:func:`read_user_file` then reads it with :class:`UserFileOptions` into
:class:`~recsys_core.interactions.Interactions`. Every problem with the file is a
:class:`~recsys_core.errors.DataError` saying what is wrong, where, and how to fix it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Union

import numpy as np
import pandas as pd

from .. import limits
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
# A file is never read whole before its size is known: paths are checked with stat(), file objects are
# read up to the limit, and .gz / .zip content is inflated in chunks into a spooled temporary file (kept
# in memory while small, else in the data home's cache/) that stops at MAX_DECOMPRESSED_BYTES.
_CHUNK = 1 << 20
_SPOOL_IN_MEMORY = 64 << 20
_MAX_NESTING = 3  # .csv.gz.gz is odd but harmless; deeper nesting is a bomb's trick


@dataclass
class _Input:
    label: str  # for messages
    stem: str  # default data set name
    path: Path | None
    data: bytes | None
    head: bytes
    suffix: str
    spool: IO[bytes] | None = None  # inflated content of a .gz / .zip
    size: int = 0
    depth: int = 0

    def handle(self):
        if self.spool is not None:
            self.spool.seek(0)
            return self.spool
        return self.path if self.data is None else io.BytesIO(self.data)

    def chunks(self):
        """The raw bytes in chunks, never all at once."""
        if self.data is not None:
            view = memoryview(self.data)
            for start in range(0, len(view), _CHUNK):
                yield bytes(view[start : start + _CHUNK])
            return
        handle = self.handle()
        with contextlib.ExitStack() as stack:
            if isinstance(handle, Path):
                handle = stack.enter_context(open(handle, "rb"))
            while chunk := handle.read(_CHUNK):
                yield chunk


def _too_large(label: str, size: int | None, limit: int, what: str = "has") -> DataError:
    amount = f"{size / 1e6:,.1f} MB, more than" if size is not None else "more than"
    return DataError(
        f"{label} {what} {amount} the limit of {limit / 1e6:,.0f} MB",
        "Keep only the columns you need, filter the rows, or split the file (limits are listed in the README's Security section).",
    )


def _open(source: Source) -> _Input:
    max_bytes = limits.MAX_FILE_BYTES
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise _too_large("the uploaded file", len(data), max_bytes)
        return _finish(_Input("the uploaded file", "upload", None, data, data[:_HEAD_BYTES], "", size=len(data)))
    if hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = Path(str(getattr(source, "name", "upload")))
        label = name.name or "the uploaded file"
        if len(data) > max_bytes:
            raise _too_large(label, None, max_bytes)
        return _finish(_Input(label, name.stem or "upload", None, data, data[:_HEAD_BYTES], name.suffix.lower(), size=len(data)))
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist", "Check the path and the file name.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file", "Pick the CSV, TSV or parquet file inside it.")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_large(path.name, size, max_bytes)
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    suffixes = [s.lower() for s in path.suffixes]
    return _finish(_Input(path.name, path.name.split(".")[0] or "upload", path, None, head, suffixes[-1] if suffixes else "", size=size))


def _spool() -> IO[bytes]:
    from ..home import cache_dir

    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY, dir=cache_dir())


def _inflated(source: _Input, spool: IO[bytes], inner: str) -> _Input:
    size = spool.tell()
    spool.seek(0)
    head = spool.read(_HEAD_BYTES)
    stem = Path(inner).name.split(".")[0] or source.stem
    return _Input(inner, stem, None, None, head, Path(inner).suffix.lower(), spool=spool, size=size, depth=source.depth + 1)


def _gunzip(source: _Input) -> _Input:
    """Stream a (possibly multi-member) gzip into a spool, refusing output past the decompressed limit."""
    cap = limits.MAX_DECOMPRESSED_BYTES
    inner = source.label[:-3] if source.label.lower().endswith(".gz") else source.label
    spool, total, read = _spool(), 0, 0
    inflater, finished = zlib.decompressobj(31), False
    try:
        for chunk in source.chunks():
            read += len(chunk)
            data = chunk
            while data:
                if finished:  # another gzip member follows, or trailing padding
                    if not data.startswith(b"\x1f\x8b"):
                        data = b""
                        break
                    inflater, finished = zlib.decompressobj(31), False
                piece = inflater.decompress(data, _CHUNK)
                total += len(piece)
                if total > cap:
                    raise _too_large(source.label, None, cap, "expands to")
                _check_ratio(source.label, total, read - len(inflater.unconsumed_tail))
                spool.write(piece)
                if inflater.eof:
                    data, finished = inflater.unused_data, True
                else:
                    data = inflater.unconsumed_tail
        if not finished:
            raise DataError(f"{source.label} is a damaged gzip file: it ends before its data does", "Compress the file again.")
    except zlib.error as exc:
        spool.close()
        raise DataError(f"{source.label} is a damaged gzip file: {exc}", "Compress the file again, or upload it uncompressed.") from None
    except BaseException:
        spool.close()
        raise
    return _inflated(source, spool, inner)


def _check_ratio(label: str, inflated: int, compressed: int) -> None:
    """Tables compress 5-20 fold; past 16 MB, more than MAX_COMPRESSION_RATIO fold is a decompression bomb."""
    if inflated > 16 << 20 and inflated > limits.MAX_COMPRESSION_RATIO * max(1, compressed):
        raise DataError(
            f"{label} expands more than {limits.MAX_COMPRESSION_RATIO}-fold (a decompression bomb?), so it is not unpacked",
            "Upload the table uncompressed, or compress it once with an ordinary tool (gzip, zip).",
        )


def _unzip(source: _Input) -> _Input:
    """The one table inside a zip, streamed with the decompressed limit; nothing is extracted to disk by name."""
    try:
        archive = zipfile.ZipFile(source.handle() if source.data is not None or source.spool is not None else source.path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{source.label} is a damaged zip archive: {exc}", "Zip the file again, or upload it unpacked.") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.MAX_ZIP_MEMBERS:
            raise DataError(
                f"{source.label} is a zip archive with {len(infos):,} entries, more than the {limits.MAX_ZIP_MEMBERS} allowed",
                "Zip only the one CSV, TSV or parquet file to read.",
            )
        for info in infos:
            name = info.filename.replace("\\", "/")
            if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
                raise DataError(
                    f"{source.label} holds an entry named {info.filename!r} that points outside the archive",
                    "Such archives are refused; zip the one table file again.",
                )
        names = {info.filename for info in infos}
        if "[Content_Types].xml" in names or any(n.startswith(("xl/", "word/")) for n in names):
            raise DataError(
                f"{source.label} is an Excel workbook (or another Office file), not a text table",
                "Save the sheet as CSV (File > Save as > CSV UTF-8).",
            )
        tables = [i for i in infos if not i.is_dir() and not i.filename.startswith("__MACOSX/") and not Path(i.filename).name.startswith(".")]
        if len(tables) != 1:
            listed = ", ".join(i.filename for i in tables[:5]) or "no file"
            raise DataError(
                f"{source.label} is a zip archive holding {len(tables)} files ({listed}); it must hold exactly one table",
                "Zip only the one CSV, TSV or parquet file to read, or upload that file unpacked.",
            )
        member = tables[0]
        if member.flag_bits & 0x1:
            raise DataError(f"{source.label} is encrypted", "Upload the file unencrypted.")
        cap, spool, total = limits.MAX_DECOMPRESSED_BYTES, _spool(), 0
        if member.file_size > cap:  # the declared size may lie, so the read below counts too
            raise _too_large(source.label, None, cap, "expands to")
        try:
            with archive.open(member) as handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > cap:
                        raise _too_large(source.label, None, cap, "expands to")
                    _check_ratio(source.label, total, member.compress_size)
                    spool.write(chunk)
        except (zipfile.BadZipFile, NotImplementedError, zlib.error, OSError, EOFError) as exc:
            spool.close()
            raise DataError(f"{source.label} is a damaged or unsupported zip archive: {exc}", "Zip the file again with plain deflate.") from None
        except BaseException:
            spool.close()
            raise
    return _inflated(source, spool, Path(member.filename).name)


def _finish(source: _Input) -> _Input:
    if not source.head.strip():
        raise DataError(f"{source.label} is empty", "Choose a file with a header row and at least one row of data.")
    packed = source.head[:2] == b"\x1f\x8b" or (source.head[:4] == b"PK\x03\x04" and source.suffix not in (".xlsx", ".xls", ".ods"))
    if packed:
        if source.depth >= _MAX_NESTING:
            raise DataError(f"{source.label} is compressed inside compressed files {source.depth + 1} times", "Compress the table once.")
        return _finish(_gunzip(source) if source.head[:2] == b"\x1f\x8b" else _unzip(source))
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
    if b"\x00" in head[:4096] and len(head) >= 8:  # UTF-16 without a byte-order mark: every other byte is 0
        even, odd = head[:4096:2], head[1:4096:2]
        if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "utf-16-be"
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
    complete = source.size <= _HEAD_BYTES
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
    _check_width(len(columns), source)
    return _TextLayout(encoding, delimiter, header, columns, warnings)


def _check_width(n_columns: int, source: _Input) -> None:
    if n_columns > limits.MAX_COLUMNS:
        raise DataError(
            f"{source.label} has {n_columns:,} columns, more than the {limits.MAX_COLUMNS} allowed",
            "Keep only the columns you need (user, item and the optional rating, time, weight and title) and save the file again.",
        )


def _check_rows(n_rows: int, source: _Input) -> None:
    if n_rows > limits.MAX_ROWS:
        raise DataError(
            f"{source.label} has more than {limits.MAX_ROWS:,} rows, the most one file may have",
            "Sample the users or filter the rows before uploading.",
        )


def _read_csv(source: _Input, layout: _TextLayout, nrows: int | None = None, skip_bad_lines: bool = False):
    """All columns as text. Rows with more fields than the header are an error (an unquoted
    delimiter inside a value shifts every later column), unless ``skip_bad_lines``."""
    sep = layout.delimiter
    engine = "c"
    if len(sep) > 1:
        sep, engine = re.escape(sep), "python"
    kwargs = dict(
        sep=sep, engine=engine, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=True,
        header=0 if layout.header else None, nrows=nrows if nrows is not None else limits.MAX_ROWS + 1, index_col=False,
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
                f"{source.label} cannot be read as a table separated by {_describe(layout.delimiter)}: {' '.join(str(exc).split())}",
                "Check the delimiter, and that text holding the delimiter is in double quotes.",
            ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    _check_rows(len(frame), source)
    return frame


def _describe(delimiter: str) -> str:
    return {",": "commas", "\t": "tabs", ";": "semicolons", "|": "'|'", " ": "spaces"}.get(delimiter, repr(delimiter))


def _read_parquet(source: _Input, columns: list[str] | None = None, nrows: int | None = None) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pa_types

        file = pq.ParquetFile(source.handle())
        schema = file.schema_arrow
        _check_width(len(schema.names), source)
        _check_rows(file.metadata.num_rows, source)
        for field in schema:
            if columns is not None and field.name in columns and pa_types.is_nested(field.type):
                raise DataError(
                    f"the column {field.name!r} of {source.label} holds nested values ({field.type}), not one id or number per row",
                    "Flatten the column (one interaction per row) or choose another column.",
                )
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
    for column in frame.columns:  # dictionary-encoded columns arrive as categoricals: use their values
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = pd.Series(np.asarray(frame[column], dtype=object), index=frame.index)
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
    preview = _short_preview(preview)
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


def _short_preview(preview: pd.DataFrame) -> pd.DataFrame:
    """Preview cells cut to 200 characters: a 1 MB cell must not travel to the browser."""
    return preview.apply(lambda column: column.map(lambda v: v[:197] + "..." if isinstance(v, str) and len(v) > 200 else v))


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
        return _finite(values, col, role, source, header)
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.isna().any():
        decimal_comma = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
        if decimal_comma.notna().all():
            return _finite(decimal_comma, col, role, source, header)
        row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
        raise DataError(
            f"the {role} column {col!r} has the non-numeric value {_cell(values.iloc[row])} in {_where(row, source, header)}",
            f"The {role} must be a number in every row: fix that cell, or choose another column.",
        )
    return _finite(numbers, col, role, source, header)


def _cell(value) -> str:
    """A cell for a message: repr, cut short (a 1 MB cell must not become a 1 MB message)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(numbers: pd.Series, col: str, role: str, source: _Input, header: bool) -> pd.Series:
    """Ratings and weights: finite, within ±MAX_ABS_VALUE (float32 would turn 1e300 into inf), weights >= 0."""
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values) | (np.abs(values) > limits.MAX_ABS_VALUE)
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


def _ids(values: pd.Series, col: str, role: str, source: _Input, header: bool) -> pd.Series:
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
    integer = stripped.str.fullmatch(r"-?(0|[1-9]\d{0,17})")
    if integer.all():
        return stripped.astype(np.int64)
    return stripped.astype(object)


def _timestamps(values: pd.Series, col: str, source: _Input, header: bool) -> np.ndarray:
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


def _in_range(seconds: np.ndarray, values: pd.Series, col: str, source: _Input, header: bool) -> np.ndarray:
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
    for col in usecols:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            lengths = frame[col].astype(str).str.len().to_numpy()
            if len(lengths) and lengths.max() > limits.MAX_CELL_CHARS:
                row = int(np.argmax(lengths))
                raise DataError(
                    f"the column {col!r} has a value of {int(lengths[row]):,} characters in {_where(row, source, header)}, "
                    f"more than the {limits.MAX_CELL_CHARS:,} allowed",
                    "Check the delimiter and the quotes (an unclosed quote swallows the rest of the file), or shorten that cell.",
                )

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


def _has_repeated_pairs(data: pd.DataFrame) -> bool:
    """Whether any (user, item) repeats: two hash factorisations and one value sort of packed codes,
    several times faster than ``DataFrame.duplicated`` (a row-wise hash of both columns) at 20M rows."""
    users = pd.factorize(data["user"])[0]
    items, uniques = pd.factorize(data["item"])
    keys = np.sort(users.astype(np.int64) * len(uniques) + items)
    return bool(len(keys) > 1 and (keys[1:] == keys[:-1]).any())


def _merge_duplicates(data: pd.DataFrame, options: UserFileOptions, steps: list[str]) -> pd.DataFrame:
    """One row per (user, item): its latest (by timestamp, else by position); weights summed for "sum"."""
    before = len(data)
    if options.duplicates == "sum" and "weight" not in data.columns:
        data = data.assign(weight=np.ones(len(data)))
    if not _has_repeated_pairs(data):
        return data
    ordered = data.sort_values("timestamp", kind="stable") if "timestamp" in data.columns else data
    if options.duplicates == "sum":
        totals = ordered.groupby(["user", "item"], sort=False)["weight"].transform("sum")
        ordered = ordered.assign(weight=totals)
    merged = ordered.drop_duplicates(["user", "item"], keep="last").sort_index()
    steps.append(f"{len(merged):,} after merging {before - len(merged):,} repeated (user, item) rows ({options.duplicates})")
    return merged
