"""Where a data set comes from: :class:`DataSource`, stored in run.json so a run can be read again.

A source is a small frozen record (a built-in name, or a file in the data home and the options it
is read with) and the positive rule applied on top of it. It lives in ``datasets/``, beside the
readers it calls, and imports only the data layer: the app's first page names its active data
through it without importing torch (``experiment.py`` imports the models and the trainer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..errors import DataError
from ..interactions import Interactions

if TYPE_CHECKING:
    from .user_files import ReadProgress

__all__ = ["DEFAULT_THRESHOLD", "DataSource", "keep_positives"]

#: ``threshold`` of :meth:`DataSource.builtin` when not given: the data set's own positive rule.
DEFAULT_THRESHOLD: Literal["default"] = "default"


def keep_positives(data: Interactions, threshold: float | None) -> Interactions:
    """The interactions rated ``>= threshold`` (all of them when ``threshold`` is None).

    Vocabularies, metadata and the evidence columns are kept, so an index means the same drug or
    condition in the positive data (what models learn from and are tested on) and in all reviews
    (the evidence shown beside an answer). A user or item without a positive stays in the
    vocabulary with no interaction.
    """
    if threshold is None:
        return data
    if data.rating is None:
        raise DataError(
            f"a rating threshold ({threshold:g}) needs ratings, and {data.name} has none",
            "Drop the threshold: every interaction then counts as positive.",
        )
    rating = np.asarray(data.rating, dtype=np.float64)
    keep = rating >= threshold
    if not keep.any():
        raise DataError(
            f"no rating of {data.name} reaches the threshold {threshold:g}",
            f"Its ratings run from {rating.min():g} to {rating.max():g}; choose a threshold in that range or none.",
        )
    return data.subset(keep)


@dataclass(frozen=True)
class DataSource:
    """Where a run's data comes from, stored in run.json so the run can be evaluated again.

    ``kind`` is "builtin" (``name`` is a built-in dataset), "file" (``path`` is a file inside the
    data home and ``options`` the :class:`~recsys_core.datasets.UserFileOptions` it was read with) or
    "drugscom-file" (a Drugs.com review file the user brought, read like the built-in drugscom data:
    rows without a condition and scraping artefacts dropped, reviews kept as evidence).

    ``threshold`` is the positive rule of built-in and Drugs.com data: :meth:`load` keeps the
    interactions rated ``>= threshold`` (None: every interaction is positive), and
    :meth:`all_reviews` is the same source without the rule, for evidence. Drug data defaults to 7
    of 10 (the label "positive" on the binned sample). A user file applies its own
    ``options["threshold"]`` while it is read; :attr:`positive_threshold` reports either.

    ``display_name`` is the name the person knows a file by (the uploaded file's name, or the path
    given to ``train --csv``), where ``path`` is its content-hashed copy in the data home: the
    readers put it in every message. Records from before it have none; their messages name the copy.
    """

    kind: str
    name: str
    path: str | None = None
    options: dict | None = None
    threshold: float | None = None
    display_name: str | None = None

    @classmethod
    def builtin(cls, name: str, threshold: float | None | Literal["default"] = DEFAULT_THRESHOLD) -> DataSource:
        if threshold == DEFAULT_THRESHOLD:
            from .builtin import BUILTIN_DATASETS

            spec = BUILTIN_DATASETS.get(name)
            threshold = spec.positive_threshold if spec is not None else None
        return cls("builtin", name, threshold=None if threshold is None else float(threshold))

    @classmethod
    def file(cls, path: str | Path, options: Any, name: str | None = None, display_name: str | None = None) -> DataSource:
        opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options)
        return cls("file", name or Path(path).stem, str(Path(path).resolve()), opts, display_name=display_name)

    @classmethod
    def drugscom_file(
        cls,
        path: str | Path,
        name: str | None = None,
        threshold: float | None | Literal["default"] = DEFAULT_THRESHOLD,
        display_name: str | None = None,
    ) -> DataSource:
        from .builtin import DRUG_POSITIVE_THRESHOLD

        threshold = DRUG_POSITIVE_THRESHOLD if threshold == DEFAULT_THRESHOLD else threshold
        resolved = str(Path(path).resolve())
        return cls("drugscom-file", name or Path(path).stem, resolved, threshold=None if threshold is None else float(threshold), display_name=display_name)

    @property
    def positive_threshold(self) -> float | None:
        """Ratings at or above this are positive feedback; None: every interaction is."""
        if self.kind == "file":
            value = (self.options or {}).get("threshold")
            return None if value is None else float(value)
        return self.threshold

    def positive_rule(self) -> str:
        """The rule in words, for run records and every page that shows metrics."""
        threshold = self.positive_threshold
        if threshold is None:
            return "every interaction counts as positive"
        if self.kind == "builtin" and self.name == "drugscom-sample" and threshold == 7.0:
            return "reviews labelled positive (rating 7-10 of 10) are positives; neutral and negative reviews are evidence only"
        return f"ratings >= {threshold:g} are positives; lower ratings are evidence only"

    def load(self, download: bool = False, progress: Any = False, read_progress: ReadProgress | None = None) -> Interactions:
        """The positive interactions of this source (models learn from and are tested on these).

        ``progress`` reports a built-in data set's download; ``read_progress(fraction, text)`` the
        steps of reading a user file (see :func:`~recsys_core.datasets.user_files.read_user_file`).
        """
        return keep_positives(self._read(download, progress, read_progress), None if self.kind == "file" else self.threshold)

    def all_reviews(self, download: bool = False, progress: Any = False) -> Interactions:
        """Every interaction, whatever its rating: the evidence behind an answer (same vocabularies as :meth:`load`)."""
        return self._read(download, progress)

    def _read(self, download: bool, progress: Any, read_progress: ReadProgress | None = None) -> Interactions:
        from .. import datasets

        if self.kind == "builtin":
            return datasets.load_dataset(self.name, download=download, progress=progress)
        if self.kind not in ("file", "drugscom-file"):
            raise DataError(f"unknown data source kind {self.kind!r}")
        # run.json is shared and may be edited: only files inside the data home's uploads/ and datasets/ are read,
        # and a missing file and one outside them get the same message (it must not tell whether an outside path exists).
        from ..home import datasets_dir, uploads_dir

        inside = isinstance(self.path, str) and bool(self.path) and "\x00" not in self.path
        if inside:
            resolved = Path(self.path).resolve()
            inside = any(resolved.is_relative_to(root) for root in (uploads_dir(), datasets_dir())) and resolved.exists()
        if not inside:
            raise DataError(
                f"the data file {self.path!r} is no longer there or lies outside the data home's uploads/ and datasets/, so it is not read",
                "Upload the file again in the app, or use `train --csv`: both keep a copy in the data home.",
            )
        if self.kind == "drugscom-file":
            return datasets.read_drugscom(self.path, name=self.name, display_name=self.display_name)
        return datasets.read_user_file(
            self.path, self.file_options(), name=self.name, display_name=self.display_name, progress=read_progress
        )

    def file_options(self):
        """The :class:`~recsys_core.datasets.UserFileOptions` a "file" source is read with (old records upgraded)."""
        from .user_files import UserFileOptions

        return UserFileOptions.from_json(self.options or {})

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DataSource:
        # Records written before the positive rule have no "threshold": their runs used every interaction.
        # Records written before display names have none: messages then name the stored copy.
        return cls(**{k: data.get(k) for k in ("kind", "name", "path", "options", "threshold", "display_name")})
