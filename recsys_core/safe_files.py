"""Reading files from the data home, which is untrusted: regular files only, size-capped before reading.

Saved runs are shared as folders and the data home may be writable by others, so a file where a run's
``run.json`` should be may be a symbolic link out of the home, a named pipe (reading it waits forever),
a character device (``/dev/zero`` reads until memory runs out) or simply huge. Every read of such a file
goes through :func:`open_regular_file` (or :func:`read_regular_file` for the whole content):

* ``os.lstat`` first: a link, a pipe, a device, a socket or a folder is refused by name, and so is a
  file bigger than the cap of its kind (:mod:`recsys_core.limits`), before it is opened;
* then opened with ``O_NOFOLLOW | O_NONBLOCK`` (a pipe swapped in after the check neither hangs nor
  follows a link) and checked again with ``fstat``: still a regular file, the same one;
* reads stop at the cap even if the file grows meanwhile.

:func:`parse_json` is the one JSON parser for such files: nesting capped before parsing (a file nested
100,000 deep would exhaust Python's recursion), no ``NaN`` / ``Infinity`` / ``1e999`` (they are not
JSON and would turn into infinities on a page), optionally a cap on the length of every string.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import RecsysError, RunFileError

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a named pipe"); "a regular file" for one."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "a special file")


def byte_size(n: int) -> str:
    """A byte count for a message: "1.4 GiB", "23.0 MiB", "812 bytes"."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def check_regular_file(
    path: Path, what: str, max_bytes: int, *, root: Path | None = None, error: type[RecsysError] = RunFileError, hint: str | None = None
) -> os.stat_result:
    """``lstat`` of ``path``, refused unless it is a regular file of at most ``max_bytes`` (inside ``root``).

    A missing file raises FileNotFoundError (callers tell "absent" from "refused" themselves)."""
    hint = hint or "Only regular files are read from a run folder: delete it and train it again, or copy the real file in."
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} is {file_kind(info.st_mode)}, not a regular file, so it is not read", hint)
    if root is not None and not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise error(f"{what} lies outside its folder, so it is not read", hint)
    if info.st_size > max_bytes:
        raise error(f"{what} has {byte_size(info.st_size)}, more than the {byte_size(max_bytes)} such a file may have", hint)
    return info


def open_regular_file(
    path: Path, what: str, max_bytes: int, *, root: Path | None = None, error: type[RecsysError] = RunFileError, hint: str | None = None
) -> BinaryIO:
    """A binary handle on ``path`` after :func:`check_regular_file`; the opened file is checked again."""
    before = check_regular_file(path, what, max_bytes, root=root, error=error, hint=hint)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:  # ELOOP: a link swapped in since the check
        raise error(f"{what} cannot be opened: {exc.strerror}", hint) from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise error(f"{what} was replaced while it was opened; it is not read", hint)
    return os.fdopen(fd, "rb")


def read_regular_file(
    path: Path, what: str, max_bytes: int, *, root: Path | None = None, error: type[RecsysError] = RunFileError, hint: str | None = None
) -> bytes:
    """The content of a regular file of at most ``max_bytes`` (see :func:`open_regular_file`)."""
    with open_regular_file(path, what, max_bytes, root=root, error=error, hint=hint) as handle:
        # read(n) allocates n bytes up front: ask for the size the file has, then for what it grew by, up to the cap.
        parts = [handle.read(os.fstat(handle.fileno()).st_size + 1)]
        total = len(parts[0])
        while total <= max_bytes and parts[-1]:
            parts.append(handle.read(min(1 << 20, max_bytes + 1 - total)))
            total += len(parts[-1])
        data = b"".join(parts)
    if len(data) > max_bytes:  # it grew after the check
        raise error(f"{what} has more than the {byte_size(max_bytes)} such a file may have", hint)
    return data


def json_depth(data: bytes, block: int = 1 << 24) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text, outside strings (vectorised, in blocks; no parsing)."""
    # Escaped backslashes and quotes cannot open or close a string: drop them before finding strings.
    raw = np.frombuffer(data.replace(b"\\\\", b"").replace(b'\\"', b""), dtype=np.uint8)
    deepest, depth, in_string = 0, 0, 0
    for start in range(0, raw.size, block):  # blocks keep the int32 running sums at 4 bytes per byte of a block
        chunk = raw[start : start + block]
        inside = np.bitwise_xor.accumulate((chunk == ord('"')).view(np.uint8)) ^ in_string
        opens = (chunk == ord("[")) | (chunk == ord("{"))
        closes = (chunk == ord("]")) | (chunk == ord("}"))
        step = np.where(inside == 1, 0, opens.view(np.int8) - closes.view(np.int8))
        running = np.cumsum(step, dtype=np.int32) + depth
        deepest = max(deepest, int(running.max()))
        depth, in_string = int(running[-1]), int(inside[-1])
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


def _longest_string(value: Any) -> int:
    longest, stack = 0, [value]
    while stack:  # iterative: depth is capped already, but a flat walk needs no recursion at all
        item = stack.pop()
        if isinstance(item, str):
            longest = max(longest, len(item))
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return longest


def parse_json(
    data: bytes, what: str, *, max_string: int | None = None, error: type[RecsysError] = RunFileError, hint: str | None = None
) -> Any:
    """JSON from an untrusted file: depth capped before parsing, finite numbers only, strings optionally capped."""
    from .limits import MAX_JSON_DEPTH

    hint = hint or "Delete the run and train it again."
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise error(f"{what} nests {depth:,} levels deep, more than the {MAX_JSON_DEPTH} a run's JSON may have", hint)
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{what} is not readable JSON: {exc}", hint) from None
    if max_string is not None:
        longest = _longest_string(value)
        if longest > max_string:
            raise error(f"{what} holds a string of {longest:,} characters, more than the {max_string:,} allowed", hint)
    return value


def parquet_stored_bytes(file, columns: set[str]) -> int:
    """The uncompressed size of ``columns``' pages, summed over a parquet file's row groups (from its metadata)."""
    metadata = file.metadata
    return sum(
        metadata.row_group(g).column(c).total_uncompressed_size
        for g in range(metadata.num_row_groups)
        for c in range(metadata.num_columns)
        if metadata.row_group(g).column(c).path_in_schema.split(".")[0] in columns
    )


def read_parquet_capped(
    handle: BinaryIO | str | os.PathLike,
    what: str,
    max_decoded: int,
    *,
    columns: list[str] | None = None,
    error: type[RecsysError] = RunFileError,
    hint: str | None = None,
):
    """A parquet file as an Arrow table, refused before it outgrows ``max_decoded`` bytes in memory.

    A parquet file's size says little about its decoded size: one 5,000-character title stored once in a
    column's dictionary and repeated over 300,000 rows is a 159 KB file that decodes to 1.5 GB. So: the
    column names must be distinct; the column chunks' uncompressed sizes (file metadata) must fit; text
    columns are read as dictionaries (memory: the dictionary and 4-byte indices) and their decoded size
    is summed from the dictionary entries' lengths over the indices, before anything is decoded."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def fmt(n: int) -> str:
        return byte_size(int(n))

    if hasattr(handle, "seek"):
        handle.seek(0)
    file = pq.ParquetFile(handle)
    names = file.schema_arrow.names
    repeated = sorted({name for name in names if names.count(name) > 1}) if len(names) <= 4096 else []
    if repeated or len(names) > 4096:
        raise error(
            f"{what} has repeated column names: {', '.join(map(repr, repeated[:5]))}" if repeated else f"{what} has {len(names):,} columns",
            hint,
        )
    wanted = set(names if columns is None else columns)
    stored = parquet_stored_bytes(file, wanted)
    if stored > max_decoded:
        raise error(f"{what} expands to {fmt(stored)} uncompressed, more than the {fmt(max_decoded)} allowed", hint)
    texts = [
        f.name
        for f in file.schema_arrow
        if f.name in wanted
        and (
            pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
        )
    ]
    if hasattr(handle, "seek"):  # a file object (a path is opened afresh)
        handle.seek(0)
    table = pq.ParquetFile(handle, read_dictionary=texts).read(columns=columns, use_threads=False)
    decoded = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.binary_length(chunk.dictionary).fill_null(0).cast(pa.int64())
                decoded += int(pc.sum(pc.take(lengths, chunk.indices.fill_null(0))).as_py() or 0) + 8 * len(chunk)
            else:
                decoded += chunk.nbytes
    if decoded > max_decoded:
        raise error(f"{what} decodes to {fmt(decoded)}, more than the {fmt(max_decoded)} allowed", hint)
    return table


def decoded_frame(table):
    """An Arrow table from :func:`read_parquet_capped` as a DataFrame with plain values (text as objects, not categoricals)."""
    import pandas as pd

    frame = table.to_pandas()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = pd.Series(np.asarray(frame[column], dtype=object), index=frame.index)
    return frame
