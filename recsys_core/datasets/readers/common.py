"""What the built-in readers share: finding the folder a data set was unpacked to, and parsing a CSV
with failures turned into a :class:`~recsys_core.errors.DataError` that names the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError


def as_folder(path: str | Path, what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DataError(f"{folder} does not exist", f"Pass the folder that holds the {what} files.")
    return folder


def read_csv_file(path: Path, display_name: str | None = None, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` with parse failures turned into a :class:`DataError` naming the file: by
    ``display_name`` where the person knows it by another name than the stored copy's."""
    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        where = display_name or f"{path.name} in {path.parent}"
        raise DataError(
            f"cannot parse {where}: {exc}",
            "The file is damaged or not in the expected format; fetch the data set again with force=True.",
        ) from None
