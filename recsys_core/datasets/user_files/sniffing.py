"""Sniffing a user file: a first look at its start for a form the person confirms.

:func:`sniff_user_file` reports the format, delimiter, encoding and header found by :mod:`.tables`,
a short preview, and a guess of which column plays which role (user, item, rating, timestamp,
weight, title) from the column names.
"""

from __future__ import annotations

import re

import pandas as pd

from ...errors import DataError
from .tables import Source, is_parquet, open_file, read_csv_table, read_parquet_table, text_layout

#: The column roles a user file can fill, in the order guesses are made.
ROLES = ("user", "item", "rating", "timestamp", "weight", "title")

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


# -- public: sniff ---------------------------------------------------------------------------------------------
def sniff_user_file(
    path_or_bytes: Source, delimiter: str | None = None, encoding: str | None = None, display_name: str | None = None
) -> dict:
    """A first look at a user file, for a form where the user confirms the columns.

    Returns ``format`` ("csv" or "parquet"), ``delimiter``, ``encoding``, ``header`` (whether the
    first row names the columns), ``columns``, ``preview`` (a DataFrame of the first rows, all
    text), ``guesses`` (role -> column or None for user, item, rating, timestamp, weight, title)
    and ``warnings`` (things the user should look at, e.g. a single column). ``display_name`` is
    the name messages give the file (see :func:`~.tables.open_file`).
    """
    source = open_file(path_or_bytes, display_name)
    if is_parquet(source):
        preview = read_parquet_table(source, nrows=_PREVIEW_ROWS)
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
    layout = text_layout(source, delimiter, encoding)
    try:
        preview = read_csv_table(source, layout, nrows=_PREVIEW_ROWS)
    except DataError as exc:  # show what can be shown, and say what is wrong
        preview = read_csv_table(source, layout, nrows=_PREVIEW_ROWS, skip_bad_lines=True)
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
