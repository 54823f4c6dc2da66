"""The data home a child process gets, written once: the test's environment with RECSYS_HOME pointed at a home.

In-process homes are fixtures of tests/conftest.py (``_isolated_home`` per test, ``temporary_data_home`` for a
module's shared runs); a subprocess (``streamlit run``, torchrun, a CLI child) takes :func:`child_env`.
"""

from __future__ import annotations

import os
from pathlib import Path


def child_env(home: str | Path, **settings: str) -> dict[str, str]:
    """This process's environment (RECSYS_MAPS_ON_SAVE=0 and the rest) with ``RECSYS_HOME=home`` and ``settings``."""
    return {**os.environ, "RECSYS_HOME": str(home), **settings}
