"""Data sets: the built-in registry, readers for their file formats, fetching, user files, and the
:class:`DataSource` a run records (where its data came from).

>>> from recsys_core.datasets import fetch, load_dataset
>>> fetch("ml-100k")                 # doctest: +SKIP
>>> data = load_dataset("ml-100k")   # doctest: +SKIP
"""

from .builtin import BUILTIN_DATASETS, DatasetSpec, PipSource, dataset_path, is_available, list_datasets
from .fetch import fetch, load_dataset
from .readers import read_drugscom, read_ml1m, read_ml100k, read_movielens_csv, read_recbole_ml100k
from .source import DataSource
from .user_files import UserFileOptions, read_user_file, sniff_user_file, store_user_file

__all__ = [
    "BUILTIN_DATASETS",
    "DataSource",
    "DatasetSpec",
    "PipSource",
    "dataset_path",
    "fetch",
    "is_available",
    "list_datasets",
    "load_dataset",
    "read_drugscom",
    "read_ml1m",
    "read_ml100k",
    "read_movielens_csv",
    "read_recbole_ml100k",
    "read_user_file",
    "sniff_user_file",
    "store_user_file",
    "UserFileOptions",
]
