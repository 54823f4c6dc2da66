"""Opening a user file and parsing it as a table: the bytes (size limits, .gz and .zip), the text layout
(encoding, delimiter, header row) and the CSV / parquet parsers that sniffing and reading share.

A file is never read whole before its size is known, and every problem is a
:class:`~recsys_core.errors.DataError` naming the file by its ``label``: the name the person knows it
by (the uploaded file's name, never the content-hashed copy in the data home; see :func:`open_file`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import io
import os
import re
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
import pandas as pd

from ... import limits
from ...errors import DataError

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

_DELIMITERS = (",", "\t", ";", "|")
_HEAD_BYTES = 1 << 16


# -- getting the bytes ------------------------------------------------------------------------------------
# A file is never read whole before its size is known: paths are checked with stat(), file objects are
# read up to the limit, and .gz / .zip content is inflated in chunks into a spooled temporary file (kept
# in memory while small, else in the data home's cache/) that stops at MAX_DECOMPRESSED_BYTES.
_CHUNK = 1 << 20
_SPOOL_IN_MEMORY = 64 << 20
_MAX_NESTING = 3  # .csv.gz.gz is odd but harmless; deeper nesting is a bomb's trick


@dataclass
class OpenedFile:
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


def too_large(label: str, size: int | None, limit: int, what: str = "has") -> DataError:
    amount = f"{size / 1e6:,.1f} MB, more than" if size is not None else "more than"
    return DataError(
        f"{label} {what} {amount} the limit of {limit / 1e6:,.0f} MB",
        "Keep only the columns you need, filter the rows, or split the file (limits are listed in the README's Security section).",
    )


def open_file(source: Source, display_name: str | None = None) -> OpenedFile:
    """The start of ``source`` (a path, bytes or a binary file object), unpacked if compressed, and its size.

    ``display_name`` is the name the person knows the file by (an upload's name, where ``source``
    is its content-hashed copy): every message about the file says it. Without it, messages say a
    path's file name, a file object's name or "the uploaded file".
    """
    opened = _open(source, display_name)
    if display_name:
        opened = dataclasses.replace(opened, label=display_name, stem=display_name.split(".")[0] or opened.stem)
    return _finish(opened)


def _open(source: Source, display_name: str | None) -> OpenedFile:
    max_bytes = limits.MAX_FILE_BYTES
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise too_large(display_name or "the uploaded file", len(data), max_bytes)
        return OpenedFile("the uploaded file", "upload", None, data, data[:_HEAD_BYTES], "", size=len(data))
    if hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = Path(str(getattr(source, "name", "upload")))
        label = name.name or "the uploaded file"
        if len(data) > max_bytes:
            raise too_large(display_name or label, None, max_bytes)
        return OpenedFile(label, name.stem or "upload", None, data, data[:_HEAD_BYTES], name.suffix.lower(), size=len(data))
    path = Path(os.fspath(source)).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist", "Check the path and the file name.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file", "Pick the CSV, TSV or parquet file inside it.")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise too_large(display_name or path.name, size, max_bytes)
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise DataError(f"cannot read {display_name or path}: {exc.strerror or exc}") from None
    suffixes = [s.lower() for s in path.suffixes]
    return OpenedFile(path.name, path.name.split(".")[0] or "upload", path, None, head, suffixes[-1] if suffixes else "", size=size)


def _spool() -> IO[bytes]:
    from ...home import cache_dir

    return tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY, dir=cache_dir())


def _inflated(source: OpenedFile, spool: IO[bytes], inner: str) -> OpenedFile:
    size = spool.tell()
    spool.seek(0)
    head = spool.read(_HEAD_BYTES)
    stem = Path(inner).name.split(".")[0] or source.stem
    return OpenedFile(inner, stem, None, None, head, Path(inner).suffix.lower(), spool=spool, size=size, depth=source.depth + 1)


def _gunzip(source: OpenedFile) -> OpenedFile:
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
                    raise too_large(source.label, None, cap, "expands to")
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


def _unzip(source: OpenedFile) -> OpenedFile:
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
        tables = [
            i for i in infos if not i.is_dir() and not i.filename.startswith("__MACOSX/") and not Path(i.filename).name.startswith(".")
        ]
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
            raise too_large(source.label, None, cap, "expands to")
        try:
            with archive.open(member) as handle:
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > cap:
                        raise too_large(source.label, None, cap, "expands to")
                    _check_ratio(source.label, total, member.compress_size)
                    spool.write(chunk)
        except (zipfile.BadZipFile, NotImplementedError, zlib.error, OSError, EOFError) as exc:
            spool.close()
            raise DataError(
                f"{source.label} is a damaged or unsupported zip archive: {exc}", "Zip the file again with plain deflate."
            ) from None
        except BaseException:
            spool.close()
            raise
    return _inflated(source, spool, Path(member.filename).name)


def _finish(source: OpenedFile) -> OpenedFile:
    if not source.head.strip():
        raise DataError(f"{source.label} is empty", "Choose a file with a header row and at least one row of data.")
    packed = source.head[:2] == b"\x1f\x8b" or (source.head[:4] == b"PK\x03\x04" and source.suffix not in (".xlsx", ".xls", ".ods"))
    if packed:
        if source.depth >= _MAX_NESTING:
            raise DataError(f"{source.label} is compressed inside compressed files {source.depth + 1} times", "Compress the table once.")
        return _finish(_gunzip(source) if source.head[:2] == b"\x1f\x8b" else _unzip(source))
    return source


def is_parquet(source: OpenedFile) -> bool:
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


@dataclass
class TextLayout:
    encoding: str
    delimiter: str
    header: bool
    columns: list[str]
    warnings: list[str]


def text_layout(source: OpenedFile, delimiter: str | None, encoding: str | None) -> TextLayout:
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
    return TextLayout(encoding, delimiter, header, columns, warnings)


def _check_width(n_columns: int, source: OpenedFile) -> None:
    if n_columns > limits.MAX_COLUMNS:
        raise DataError(
            f"{source.label} has {n_columns:,} columns, more than the {limits.MAX_COLUMNS} allowed",
            "Keep only the columns you need (user, item and the optional rating, time, weight and title) and save the file again.",
        )


def _check_rows(n_rows: int, source: OpenedFile) -> None:
    if n_rows > limits.MAX_ROWS:
        raise DataError(
            f"{source.label} has more than {limits.MAX_ROWS:,} rows, the most one file may have",
            "Sample the users or filter the rows before uploading.",
        )


def read_csv_table(source: OpenedFile, layout: TextLayout, nrows: int | None = None, skip_bad_lines: bool = False):
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


def read_parquet_table(source: OpenedFile, columns: list[str] | None = None, nrows: int | None = None) -> pd.DataFrame:
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
        names = schema.names
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise DataError(
                f"{source.label} has repeated column names: {', '.join(map(repr, repeated[:5]))}",
                "Give every column its own name (export the table again), then upload it.",
            )
        if nrows is not None:
            from ...safe_files import byte_size, parquet_stored_bytes

            # A first batch still reads each column's whole dictionary page: bounded by the pages' declared sizes.
            stored = parquet_stored_bytes(file, set(columns if columns is not None else names))
            if stored > limits.MAX_DECOMPRESSED_BYTES:
                raise DataError(
                    f"{source.label} expands to {byte_size(stored)} uncompressed, more than the {byte_size(limits.MAX_DECOMPRESSED_BYTES)} allowed",
                    "Keep the columns you need, or fewer rows.",
                )
            batch = next(file.iter_batches(batch_size=max(1, nrows), columns=columns), None)
            frame = batch.to_pandas() if batch is not None else file.schema_arrow.empty_table().to_pandas()
        else:
            from ...safe_files import read_parquet_capped

            handle = source.handle()
            hint = "Keep the columns you need, or fewer rows; long repeated texts decode to far more than the file's size."
            frame = read_parquet_capped(
                handle, source.label, limits.MAX_DECOMPRESSED_BYTES, columns=columns, error=DataError, hint=hint
            ).to_pandas()
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataError(f"{source.label} is not a readable parquet file: {exc}", "Export the parquet file again, or use CSV.") from None
    frame.columns = [str(c) for c in frame.columns]
    for column in frame.columns:  # dictionary-encoded columns arrive as categoricals: use their values
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = pd.Series(np.asarray(frame[column], dtype=object), index=frame.index)
    return frame
