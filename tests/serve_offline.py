"""``streamlit run`` for the browser test, with every built-in fetch imported from the shared copy beside the checkout.

The test machine has no network: the Data page's Fetch button goes through ``recsys_core.datasets.fetch`` as it does
for a person, only its ``source`` is the local folder of the same name. Usage: ``python tests/serve_offline.py run app.py ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))  # as `streamlit run` from the repository root has it (this script's own folder is tests/)

import recsys_core.datasets as datasets  # noqa: E402

_fetch = datasets.fetch


def _fetch_from_shared(name, source=None, progress=True, force=False, url=None):
    return _fetch(name, source=SHARED_DATA / name if source is None else source, progress=progress, force=force)


datasets.fetch = _fetch_from_shared

if __name__ == "__main__":
    from streamlit.web import cli

    sys.exit(cli.main())
