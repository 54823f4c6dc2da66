"""Parsers for the file formats of the built-in data sets, one module per family:
:mod:`.movielens` (100K, 1M, the CSV releases, RecBole's copy) and :mod:`.drugscom` (Drugs.com
reviews). Both return :class:`~recsys_core.interactions.Interactions` with ``name`` set.
"""

from .drugscom import (
    DRUGSCOM_FILE_SETS,
    DRUGSCOM_SAMPLE_RATINGS,
    DRUGSCOM_TRUNCATED_WORDS,
    read_drugscom,
    restore_condition_names,
    suspect_condition_names,
)
from .movielens import ML1M_OCCUPATIONS, ML100K_GENRES, read_ml1m, read_ml100k, read_movielens_csv, read_recbole_ml100k

__all__ = [
    "read_ml100k",
    "read_ml1m",
    "read_movielens_csv",
    "read_recbole_ml100k",
    "read_drugscom",
    "ML100K_GENRES",
    "ML1M_OCCUPATIONS",
    "DRUGSCOM_FILE_SETS",
    "DRUGSCOM_SAMPLE_RATINGS",
    "DRUGSCOM_TRUNCATED_WORDS",
    "restore_condition_names",
    "suspect_condition_names",
]
