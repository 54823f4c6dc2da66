"""Storing a user file in the data home: one implementation for the app's uploads and ``train --csv``.

A stored copy is named by its content: the first 32 hex digits of its sha256 and the type ending of
the name the person knows it by (``3f2a…9c.csv``, ``….tsv.gz``, ``….parquet``). So the same bytes
are stored once, under the same name whether they came through the browser or the command line,
and a run's data file never changes under it. The ending is kept because one reader decides by it
(a Drugs.com ``.csv`` is comma-separated, its ``.tsv`` tab-separated); nothing else of the original
name is, so a file name never reaches the file system.

The copy is written like a run (run_store.py): into a dot-named staging file in ``uploads/``, flushed
and fsynced, then renamed into place. A crash or a kill mid-write leaves at most the staging file,
which :func:`recsys_core.home.clean_stale_staging` removes once its writer is gone; the final name
only ever holds complete content.

Copies stored before this module kept other names: the app's ``<sha256[:16]>-<name>`` and the
command line's ``<stem>-<sha256[:12]><ending>``. They stay where they are (run records point at
them and are read as they are), and :func:`store_user_file` reuses such a copy, checked by its full
hash, instead of storing the same bytes a second time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ... import limits
from ...errors import DataError, RecsysError
from ...safe_files import open_regular_file
from .tables import Source, too_large

__all__ = ["StoredFile", "store_user_file", "stored_ending"]

#: Type endings kept in a stored name (a compression ending after a table ending, as in ``.csv.gz``).
_TABLE_ENDINGS = (".csv", ".tsv", ".txt", ".tab", ".dat", ".parquet", ".pq")
_PACKED_ENDINGS = (".gz", ".zip")
_CHUNK = 1 << 20
_HASH_DIGITS = 32


@dataclass(frozen=True)
class StoredFile:
    """A user file's copy in the data home's ``uploads/``.

    ``display_name`` is the name the person knows the file by (the uploaded file's name, or the
    path's file name on the command line): readers put it in their messages. ``created`` says
    whether this call wrote the copy (False: the same content was stored before).
    """

    path: Path
    display_name: str
    sha256: str
    size: int
    created: bool


def stored_ending(display_name: str) -> str:
    """The type ending a stored copy keeps: ``"ratings.CSV"`` -> ``".csv"``, ``"x.tsv.gz"`` -> ``".tsv.gz"``, else ``""``."""
    suffixes = [s.lower() for s in Path(display_name.replace("\\", "/")).suffixes]
    ending = ""
    if suffixes and suffixes[-1] in _PACKED_ENDINGS:
        ending = suffixes.pop()
    if suffixes and suffixes[-1] in _TABLE_ENDINGS:
        ending = suffixes[-1] + ending
    return ending


def _chunks(source: Source, label: str) -> Iterator[bytes]:
    """The source's bytes in chunks, refusing more than MAX_FILE_BYTES (a path is checked before it is read)."""
    max_bytes = limits.MAX_FILE_BYTES
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if len(view) > max_bytes:
            raise too_large(label, len(view), max_bytes)
        for start in range(0, len(view), _CHUNK):
            yield bytes(view[start : start + _CHUNK])
        return
    if hasattr(source, "read"):
        handle, total = source, 0
        while chunk := handle.read(_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise too_large(label, None, max_bytes)
            yield chunk
        return
    path = Path(os.fspath(source)).expanduser()
    if not path.is_file():
        raise DataError(f"no file at {str(path)!r}", "Check the path to your interaction file.")
    if path.stat().st_size > max_bytes:
        raise too_large(label, path.stat().st_size, max_bytes)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _same_content(path: Path, sha256: str) -> bool:
    """Whether ``path`` holds the bytes of this hash. ``uploads/`` is untrusted like every folder of the home: a link,
    a pipe or a file over ``limits.MAX_FILE_BYTES`` found under a stored name is not read, and is no copy."""
    digest = hashlib.sha256()
    try:
        with open_regular_file(path, f"the stored copy {path.name}", limits.MAX_FILE_BYTES, error=DataError) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except (OSError, RecsysError):
        return False
    return digest.hexdigest() == sha256


def _earlier_copy(folder: Path, sha256: str, ending: str) -> Path | None:
    """A copy of the same bytes stored under an older naming scheme (see the module docstring)."""
    candidates = [*folder.glob(f"{sha256[:16]}-*"), *folder.glob(f"*-{sha256[:12]}{ending}")]
    for path in sorted(set(candidates)):
        if not path.name.startswith(".") and stored_ending(path.name) == ending and _same_content(path, sha256):
            return path
    return None


def store_user_file(source: Source, display_name: str | None = None) -> StoredFile:
    """Keep a copy of ``source`` (a path, bytes or a binary file object) in ``uploads/`` under its content-hash name.

    ``display_name`` is the name the person knows the file by; it defaults to a path's file name.
    Storing the same bytes again (with the same type ending) finds the stored copy and writes nothing.
    Raises :class:`DataError` for a missing path or a file over ``limits.MAX_FILE_BYTES``.
    """
    from ...home import uploads_dir

    if display_name is None:
        display_name = Path(os.fspath(source)).name if isinstance(source, (str, os.PathLike)) else "upload"
    folder = uploads_dir()
    ending = stored_ending(display_name)
    # Hash while copying into the staging file: one pass over the bytes, and the final name is
    # known only once the last chunk is in.
    fd, staging = tempfile.mkstemp(prefix=f".upload-{os.getpid()}-", dir=folder)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(source, display_name):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha256 = digest.hexdigest()
        target = folder / f"{sha256[:_HASH_DIGITS]}{ending}"
        # A file already under the final name is checked like an older copy: a link or other bytes put there are
        # replaced by this copy (os.replace swaps the name itself, never what a link points to).
        existing = target if _same_content(target, sha256) else _earlier_copy(folder, sha256, ending)
        if existing is not None:
            return StoredFile(existing, display_name, sha256, size, created=False)
        os.replace(staging, target)
        _fsync_folder(folder)
        return StoredFile(target, display_name, sha256, size, created=True)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
