"""The one way an exception reaches the screen: a library error as its message and hint, an unforeseen one as its
type and text (for a bug report), never a traceback. (A page's own checks of a choice, such as the Train page's
plan problems, are sentences it writes with ``st.error`` itself: no exception is involved.)

:func:`show_error` writes it; :func:`friendly_errors` runs a block and, on a library error, shows it and stops
the page (or the fragment). Every page and helper shows errors through these two; this module imports only
Streamlit and the plain-text helper, so any module may use it without an import circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from recsys_core.errors import RecsysError

from .safe_output import plain, plain_message


def show_error(error: BaseException, what: str = "") -> None:
    """An error as a message on the page (never a traceback); ``what`` says what could not be done."""
    st.error((f"{plain(what)}: " if what else "") + plain_message(error))


@contextmanager
def friendly_errors(what: str = "") -> Iterator[None]:
    """Run a block; a library error in it is shown by :func:`show_error`, then the page stops."""
    try:
        yield
    except RecsysError as error:
        show_error(error, what)
        st.stop()
