"""What leaves the app built from user data: CSV downloads and text shown in markdown.

Titles, ids and reviews come from files anyone can upload, so they are data, never markup or formulas:

* :func:`csv_download` neutralises formula cells as OWASP recommends ("CSV Injection"): a text cell
  starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote, so a
  spreadsheet shows it as text instead of evaluating ``=HYPERLINK(...)`` or ``@SUM(...)``. Numeric
  columns are left alone (a negative score stays a number).
* :func:`plain` is the one way a string from data or a saved run (a title, an id, a file or data set
  name, a run's positive rule, an error message quoting a cell) enters ``st.markdown``, ``st.caption``,
  ``st.error`` and the like: markdown and HTML are escaped, so ``[click](javascript:...)``,
  ``![](http://tracker)`` or ``<img onerror=...>`` in a title is shown as the characters it is. Bare
  addresses (``http://…``, ``www.…``, ``a@b.org``), Streamlit's ``:red[…]`` colours, ``:material/…:``
  icons and ``:emoji:`` codes are found in the text *after* escapes are resolved, so a backslash does not
  stop them: an invisible word joiner (U+2060) after a ``:`` that starts one, an ``@`` before a domain and
  a ``www`` before a dot does (``07:58``, ``Note: …`` and ``HR@10`` are left as typed). Tables
  (``st.dataframe``) and widget options never render markup and need nothing.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What makes markup in Streamlit's markdown on one line: emphasis, code, links and images ([ ]), HTML
# tags, headings, strikethrough and LaTeX ($). Other punctuation is left as typed, so titles read normally.
_MARKDOWN = re.compile(r"([\\`*\[\]<>#~$|]|(?<!\w)_|_(?!\w))")  # an underscore inside a word never makes emphasis
WORD_JOINER = "\u2060"
# Found in the rendered text, escapes already resolved, so a backslash does not stop them: an invisible word joiner
# does. A colon before a letter or "/" (http://, :red[...], :material/icon:, :emoji:), "@" before a domain (a@b.org),
# "www" before a dot. Colons in "07:58" or "Note: ..." and "@" in "HR@10" are left as typed.
_LINKY = re.compile(r"(:(?=[A-Za-z/])|@(?=[\w-]+\.[\w-])|(?i:www)(?=\.))")


def neutralise_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_download(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV of ``table`` with formula cells neutralised (text cells and column names)."""
    safe = table.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise_cell)
    safe.columns = [neutralise_cell(str(c)) for c in safe.columns]
    return safe.to_csv(index=False).encode("utf-8")


def plain(text: object) -> str:
    """``text`` for markdown: markup characters escaped, newlines as spaces (no lists, tables or headings)."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    return _LINKY.sub(lambda match: match.group(1) + WORD_JOINER, escaped)


def plain_message(error: BaseException) -> str:
    """An error's message and hint as text for ``st.error`` (messages quote cells, names and paths from data)."""
    from recsys_core.errors import RecsysError

    if isinstance(error, RecsysError):
        return plain(error.message) + (f"\n\n{plain(error.hint)}" if error.hint else "")
    return plain(f"{type(error).__name__}: {error}")  # an error the library did not foresee: its type for a bug report
