"""The user's own interaction files: CSV / TSV (any common delimiter and encoding) or parquet.

Three steps, one module each: :mod:`.sniffing` looks at the start of a file and guesses its
delimiter, encoding and which columns hold users, items, ratings and so on, for a form the person
confirms; :mod:`.reading` reads it with :class:`UserFileOptions` into
:class:`~recsys_core.interactions.Interactions`; :mod:`.storing` keeps a copy in the data home
under a content-hash name (the app's uploads and ``train --csv`` alike). :mod:`.tables` holds what
sniffing and reading share: the size limits, unpacking .gz / .zip, the text layout and the parsers.
Every problem with a file is a :class:`~recsys_core.errors.DataError` saying what is wrong, where,
and how to fix it, naming the file by the name the person knows it by.
"""

from .reading import (
    DUPLICATE_RULE_TEXT,
    DUPLICATE_RULES,
    DuplicateRule,
    ReadAccount,
    ReadProgress,
    UserFileOptions,
    read_user_file,
    read_user_file_with_account,
)
from .sniffing import ROLES, sniff_user_file
from .storing import StoredFile, store_user_file

__all__ = [
    "DUPLICATE_RULES",
    "DUPLICATE_RULE_TEXT",
    "ROLES",
    "DuplicateRule",
    "ReadAccount",
    "ReadProgress",
    "StoredFile",
    "UserFileOptions",
    "read_user_file",
    "read_user_file_with_account",
    "sniff_user_file",
    "store_user_file",
]
