"""Text from data, made safe for the two places outside the app's markdown where it is shown: plotly and a terminal.

Titles, ids, data set and file names and a run's model name come from files anyone can upload or edit:

* :func:`plotly_text` for plotly's text, hover text, tick labels, legend names and titles, which plotly
  renders as a subset of HTML (``<a href>``, ``<b>``, ``<span style>``, ``<br>``) in the app and in the
  self-contained HTML report: ``&``, ``<`` and ``>`` become entities, which plotly shows as the characters.
* :func:`terminal_text` for the CLI's text output: control characters (ESC starting ANSI and OSC
  sequences — clipboard writes, screen clears, hyperlinks —, BEL, backspace, carriage return, C1 controls,
  DEL) are shown as visible escapes (``\\x1b``) instead of being sent to the terminal. ``--json`` output
  escapes them already (JSON strings cannot hold raw control characters).

The app's markdown has its own helper, ``webapp.safe_output.plain``.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable
from typing import TextIO

import numpy as np

# C0 controls except tab and newline, DEL, C1 controls; and the bidirectional overrides that reorder what a line shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plotly_text(values: object) -> object:
    """A string, or every string of a sequence / array, escaped for plotly's pseudo-HTML (other values kept)."""
    if isinstance(values, str):
        return html.escape(values, quote=False)
    if isinstance(values, (list, tuple, np.ndarray)) or hasattr(values, "to_numpy"):
        return [plotly_text(v) for v in (values.to_numpy() if hasattr(values, "to_numpy") else values)]
    return values


def _visible_controls(text: str) -> str:
    """``text`` with every :data:`_CONTROL` character shown as its ``\\xNN`` / ``\\uNNNN`` escape."""
    return _CONTROL.sub(lambda match: match.group(0).encode("unicode_escape").decode("ascii"), text)


def terminal_text(value: object) -> str:
    """``str(value)`` with control characters shown as ``\\xNN`` / ``\\uNNNN`` escapes (tabs and newlines in a cell as well)."""
    return _visible_controls(str(value).replace("\t", " ").replace("\n", " "))


def terminal_lines(lines: Iterable[object]) -> str:
    return "\n".join(terminal_text(line) for line in lines)


class VisibleControls(io.TextIOBase):
    """A text stream that passes lines and tabs through and shows every other control character as an escape.

    The CLI writes its text output through one (``recsys_core.cli.main``), so a title or id holding
    ``ESC ] 52`` (a clipboard write), ``ESC [ 2 J`` (clear screen) or ``ESC ] 8`` (a hyperlink) is printed
    as ``\\x1b]52;...`` instead of being obeyed by the terminal."""

    def __init__(self, stream: TextIO):
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(_visible_controls(text))  # _CONTROL spares tabs and newlines
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def writable(self) -> bool:
        return True
