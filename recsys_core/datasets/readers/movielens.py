"""Readers of the MovieLens formats: 100K's ``u.data`` files, 1M's ``::`` files, the CSV releases
(20M, 25M, latest-small) and RecBole's atomic copy of 100K.

Every reader takes the folder that holds the files (or a folder one level above it: a lone
sub-folder is searched as well) and returns an :class:`~recsys_core.interactions.Interactions`
whose ``name`` is set. Interactions keep the row order of the files. Ratings are ``float32``,
timestamps unix seconds (``int64``). ``item_info`` has the columns ``title`` (str), ``genres`` (a
``"|"``-joined string, empty where none is listed), ``year`` (nullable ``Int64``) and
``release_date`` (ISO ``YYYY-MM-DD`` string where the format has one, else missing).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ...interactions import Interactions
from .common import as_folder, read_csv_file

__all__ = ["ML100K_GENRES", "ML1M_OCCUPATIONS", "read_ml100k", "read_ml1m", "read_movielens_csv", "read_recbole_ml100k"]

#: Genre flag names of MovieLens 100K in flag order (as listed in ``u.genre``).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

#: Occupation codes of MovieLens 1M ``users.dat``, from the data set's README.
ML1M_OCCUPATIONS: dict[int, str] = {
    0: "other or not specified",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}

_NO_GENRES = {"(no genres listed)", "unknown"}
_YEAR_IN_TITLE = r"\((\d{4})[^()]*\)\s*$"


def _locate(path: str | Path, required: Sequence[str], what: str) -> Path:
    """The folder holding all ``required`` files: ``path`` itself or its only sub-folder."""
    folder = as_folder(path, what)
    if folder.is_file():
        folder = folder.parent
    if all((folder / name).is_file() for name in required):
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    if len(subdirs) == 1 and all((subdirs[0] / name).is_file() for name in required):
        return subdirs[0]
    found = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    missing = [name for name in required if not (folder / name).is_file()]
    raise DataError(
        f"{folder} does not hold the {what} files: missing {', '.join(missing)}",
        f"Expected {', '.join(required)}; the folder holds: {', '.join(found[:20]) or 'nothing'}.",
    )


def _read_double_colon(path: Path, names: list[str], dtype: dict) -> pd.DataFrame:
    """MovieLens 1M's ``::``-separated files, parsed by the fast C engine after a byte substitution."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if b"\t" in raw:
        raise DataError(f"{path.name} contains tab characters: it is not a MovieLens 1M '::' file")
    data = io.BytesIO(raw.replace(b"::", b"\t"))
    try:
        return pd.read_csv(data, sep="\t", header=None, names=names, dtype=dtype, encoding="latin-1", quoting=csv.QUOTE_NONE)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse {path.name} in {path.parent}: {exc}") from None


def _year_from_title(titles: pd.Series) -> pd.Series:
    return pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE, expand=False), errors="coerce").astype("Int64")


def _clean_genres(genres: pd.Series) -> pd.Series:
    genres = genres.fillna("").astype(str).str.strip()
    return genres.where(~genres.isin(_NO_GENRES), "")


def _item_info(ids, titles, genres, year, release_date=None) -> pd.DataFrame:
    n = len(ids)
    info = pd.DataFrame(
        {
            "title": pd.Series(titles, dtype=object).to_numpy(),
            "genres": pd.Series(genres, dtype=object).to_numpy(),
            "year": pd.array(year, dtype="Int64"),
            "release_date": pd.Series(release_date if release_date is not None else [None] * n, dtype=object).to_numpy(),
        },
        index=pd.Index(ids, name="item"),
    )
    return info


def _flags_to_genres(flags: np.ndarray, names: Sequence[str]) -> pd.Series:
    """``(n, g)`` 0/1 flags -> ``"A|B"`` strings, without looping over rows."""
    labels = np.array(["" if g in _NO_GENRES else f"{g}|" for g in names], dtype=object)
    parts = np.where(flags.astype(bool), labels[None, :], "")
    joined = pd.DataFrame(parts).sum(axis=1) if len(parts) else pd.Series([], dtype=object)
    return joined.astype(str).str.rstrip("|")


def _frame_to_interactions(ratings: pd.DataFrame, items: pd.DataFrame | None, users: pd.DataFrame | None, name: str):
    return Interactions.from_frame(
        ratings,
        user_col="user",
        item_col="item",
        rating_col="rating",
        timestamp_col="timestamp",
        item_info=items,
        user_info=users,
        name=name,
    )


_RATING_DTYPES = {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}


# -- MovieLens 100K -------------------------------------------------------------------------
def read_ml100k(folder: str | Path, name: str = "ml-100k") -> Interactions:
    """MovieLens 100K from the original GroupLens files.

    ``u.data`` (tab-separated user, item, rating, unix time) is required; ``u.item`` (pipe-
    separated, latin-1: id, title, release date, video date, IMDb url, 19 genre flags named in
    ``u.genre``) and ``u.user`` (id|age|gender|occupation|zip) add item and user metadata.
    ``year`` comes from the title's ``(1995)`` (as in every MovieLens release and RecBole's copy),
    else from the release date. The genre flag
    "unknown" is not listed as a genre.
    """
    root = _locate(folder, ("u.data",), "MovieLens 100K")
    ratings = read_csv_file(root / "u.data", sep="\t", header=None, names=list(_RATING_DTYPES), dtype=_RATING_DTYPES)

    items = None
    if (root / "u.item").is_file():
        genre_names = list(ML100K_GENRES)
        if (root / "u.genre").is_file():
            table = read_csv_file(root / "u.genre", sep="|", header=None, names=["genre", "index"], encoding="latin-1")
            table = table.dropna().sort_values("index")
            if len(table) == len(ML100K_GENRES):
                genre_names = table["genre"].astype(str).tolist()
        columns = ["item", "title", "release", "video", "url", *[f"g{i}" for i in range(len(genre_names))]]
        raw = read_csv_file(
            root / "u.item", sep="|", header=None, names=columns, encoding="latin-1",
            quoting=csv.QUOTE_NONE, dtype={"item": np.int64, "title": str, "release": str},
        )  # fmt: skip
        flags = raw[columns[5:]].fillna(0).to_numpy(dtype=np.int8)
        release = pd.to_datetime(raw["release"], format="%d-%b-%Y", errors="coerce")
        year = _year_from_title(raw["title"].fillna("")).fillna(pd.Series(pd.array(release.dt.year, dtype="Int64")))
        items = _item_info(
            raw["item"].to_numpy(),
            raw["title"].fillna("").str.strip(),
            _flags_to_genres(flags, genre_names),
            year,
            release.dt.strftime("%Y-%m-%d").astype(object).where(release.notna(), None),
        )

    users = None
    if (root / "u.user").is_file():
        users = read_csv_file(
            root / "u.user", sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
            encoding="latin-1", dtype={"user": np.int64, "age": np.int64, "gender": str, "occupation": str, "zip": str},
        ).set_index("user")  # fmt: skip
    return _frame_to_interactions(ratings, items, users, name)


# -- MovieLens 1M ---------------------------------------------------------------------------
def read_ml1m(folder: str | Path, name: str = "ml-1m") -> Interactions:
    """MovieLens 1M: ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated, latin-1).

    ``user_info.age`` is the data set's age-group code (1 = under 18, 18 = 18-24, 25, 35, 45,
    50, 56 = 56+); ``occupation`` is the name of the occupation code, as in :data:`ML1M_OCCUPATIONS`.
    ``year`` comes from the title's ``(1995)``; the files hold no release date.
    """
    root = _locate(folder, ("ratings.dat",), "MovieLens 1M")
    ratings = _read_double_colon(root / "ratings.dat", list(_RATING_DTYPES), _RATING_DTYPES)

    items = None
    if (root / "movies.dat").is_file():
        raw = _read_double_colon(root / "movies.dat", ["item", "title", "genres"], {"item": np.int64, "title": str, "genres": str})
        titles = raw["title"].fillna("").str.strip()
        items = _item_info(raw["item"].to_numpy(), titles, _clean_genres(raw["genres"]), _year_from_title(titles))

    users = None
    if (root / "users.dat").is_file():
        users = _read_double_colon(
            root / "users.dat",
            ["user", "gender", "age", "occupation", "zip"],
            {"user": np.int64, "gender": str, "age": np.int64, "occupation": np.int64, "zip": str},
        )
        codes = users["occupation"]
        users["occupation"] = codes.map(ML1M_OCCUPATIONS).fillna(codes.astype(str)).astype(object)
        users = users[["user", "age", "gender", "occupation", "zip"]].set_index("user")
    return _frame_to_interactions(ratings, items, users, name)


# -- MovieLens CSV (20M, 25M, latest-small) ---------------------------------------------------

_CSV_RATING_TYPES = {"userId": np.int32, "movieId": np.int32, "rating": np.float32, "timestamp": np.int64}


def _read_ratings_csv(path: Path) -> pd.DataFrame:
    """MovieLens ``ratings.csv`` into user/item/rating/timestamp columns of narrow dtypes.

    pyarrow's multi-threaded CSV reader goes straight to numpy (no per-row Python); pandas' C
    engine is the fallback.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            header = [c.strip().strip('"') for c in handle.readline().split(",")]
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    missing = [c for c in _CSV_RATING_TYPES if c not in header]
    if missing:
        raise DataError(
            f"{path.name} in {path.parent} lacks the column(s) {', '.join(missing)}",
            "A MovieLens ratings.csv starts with the header userId,movieId,rating,timestamp.",
        )
    names = {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"}
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        frame = read_csv_file(path, dtype=_CSV_RATING_TYPES, usecols=list(_CSV_RATING_TYPES))
        return frame[list(_CSV_RATING_TYPES)].rename(columns=names)
    types = {c: pa.from_numpy_dtype(np.dtype(t)) for c, t in _CSV_RATING_TYPES.items()}
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types)))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"cannot parse {path.name} in {path.parent}: {exc}",
            "The file is damaged or not in the expected format; fetch the data set again with force=True.",
        ) from None
    if any(table.column(c).null_count for c in types):
        raise DataError(f"{path.name} in {path.parent} has empty cells", "Every rating needs a user, movie, rating and time.")
    return pd.DataFrame({names[c]: table.column(c).to_numpy() for c in types})


def read_movielens_csv(folder: str | Path, name: str | None = None) -> Interactions:
    """MovieLens 20M, 25M and latest(-small): ``ratings.csv`` and ``movies.csv`` (utf-8).

    Ratings are read with explicit narrow dtypes (``int32`` ids, ``float32`` ratings) by
    pyarrow's multi-threaded CSV reader straight into numpy, so 25 million rows take seconds.
    ``genres`` is the file's pipe-joined list ("(no genres listed)" becomes empty); ``year``
    comes from the title.
    ``name`` defaults to the folder's name.
    """
    root = _locate(folder, ("ratings.csv",), "MovieLens CSV")
    name = name or (root.name if root.name.startswith("ml-") else "movielens")
    ratings = _read_ratings_csv(root / "ratings.csv")

    items = None
    if (root / "movies.csv").is_file():
        raw = read_csv_file(root / "movies.csv", dtype={"movieId": np.int64, "title": str, "genres": str}, keep_default_na=False)
        titles = raw["title"].str.strip()
        items = _item_info(raw["movieId"].to_numpy(), titles, _clean_genres(raw["genres"]), _year_from_title(titles))
    return _frame_to_interactions(ratings, items, None, name)


# -- RecBole atomic files -----------------------------------------------------------------------
def _read_atomic(path: Path, rename: dict[str, str], numeric: Iterable[str] = ()) -> pd.DataFrame:
    """One RecBole atomic file: a ``field:type`` header, tab-separated, utf-8."""
    frame = read_csv_file(
        path, sep="\t", header=0, dtype=str, encoding="utf-8", quoting=csv.QUOTE_NONE, keep_default_na=False,
        na_values=[""],
    )  # fmt: skip
    frame.columns = [str(c).split(":", 1)[0] for c in frame.columns]
    missing = [c for c in rename if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path.name} lacks the field(s) {', '.join(missing)}",
            f"Its header has: {', '.join(frame.columns)}; a RecBole ml-100k file has {', '.join(rename)}.",
        )
    frame = frame.rename(columns=rename)
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path.name}: field {column!r} has a non-numeric value {frame[column].iloc[row]!r} in row {row + 1}")
        frame[column] = values
    return frame


def read_recbole_ml100k(folder: str | Path, name: str = "ml-100k") -> Interactions:
    """MovieLens 100K from RecBole's atomic files (``ml-100k.inter``, ``.item``, ``.user``).

    These ship in the ``recbole==1.2.1`` wheel under ``recbole/dataset_example/ml-100k/``. The
    interactions, vocabularies and user metadata equal :func:`read_ml100k`'s on the GroupLens
    files. RecBole's item file holds ``movie_title`` without the year, ``release_year`` and the
    genres as space-separated ``class``: titles are rebuilt as ``"Title (year)"``, which matches
    the GroupLens title for nearly all movies, and ``release_date`` is missing. RecBole's typo
    "unkonwn" (movie 267) is read as "unknown" and a missing year.
    """
    root = as_folder(folder, "RecBole ml-100k")
    inter_name = "ml-100k.inter"
    if not (root / inter_name).is_file() and not (root.is_dir() and any(root.glob("*/" + inter_name))):
        candidates = sorted(root.glob("*.inter")) if root.is_dir() else []
        if len(candidates) == 1:
            inter_name = candidates[0].name
    root = _locate(root, (inter_name,), "RecBole atomic")
    prefix = inter_name[: -len(".inter")]

    frame = _read_atomic(
        root / inter_name,
        {"user_id": "user", "item_id": "item", "rating": "rating", "timestamp": "timestamp"},
        numeric=("user", "item", "rating", "timestamp"),
    )
    ratings = pd.DataFrame(
        {
            "user": frame["user"].to_numpy(np.int64),
            "item": frame["item"].to_numpy(np.int64),
            "rating": frame["rating"].to_numpy(np.float32),
            "timestamp": frame["timestamp"].to_numpy(np.int64),
        }
    )

    items = None
    if (root / f"{prefix}.item").is_file():
        raw = _read_atomic(
            root / f"{prefix}.item",
            {"item_id": "item", "movie_title": "title", "release_year": "year", "class": "genres"},
            numeric=("item",),
        )
        title = raw["title"].fillna("").str.strip().replace("unkonwn", "unknown")
        year = pd.to_numeric(raw["year"], errors="coerce").astype("Int64")
        full_title = title.where(year.isna(), title + " (" + year.astype(str) + ")")
        genres = _clean_genres(raw["genres"].fillna("").str.split().str.join("|"))
        items = _item_info(raw["item"].to_numpy(np.int64), full_title, genres, year)

    users = None
    if (root / f"{prefix}.user").is_file():
        raw = _read_atomic(
            root / f"{prefix}.user",
            {"user_id": "user", "age": "age", "gender": "gender", "occupation": "occupation", "zip_code": "zip"},
            numeric=("user", "age"),
        )
        users = pd.DataFrame(
            {
                "age": raw["age"].to_numpy(np.int64),
                "gender": raw["gender"].astype(object).to_numpy(),
                "occupation": raw["occupation"].astype(object).to_numpy(),
                "zip": raw["zip"].astype(object).to_numpy(),
            },
            index=pd.Index(raw["user"].to_numpy(np.int64), name="user"),
        )
    return _frame_to_interactions(ratings, items, users, name)
