"""The app's sidebar: "Home" plus every page file in ``pages/``, each with a Material icon.

``app.py`` hands this list to ``st.navigation``, so the home page is called "Home" (not the script's
name, "app") and a page added to ``pages/`` by anyone appears without an edit here: its title comes
from the file name (``6_Inside.py`` → "Inside"), its icon from ``PAGE_ICONS`` or a neutral default.
Material icons (``:material/...:``) are drawn from Streamlit's own font, so they render where no emoji
font is installed (Debian's chromium shows emoji as empty boxes).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "pages"

HOME_ICON = ":material/home:"
DEFAULT_ICON = ":material/article:"
PAGE_ICONS = {
    "Data": ":material/folder_open:",
    "Train": ":material/model_training:",
    "Recommend": ":material/recommend:",
    "Compare": ":material/leaderboard:",
    "Embeddings": ":material/scatter_plot:",
    "Inside": ":material/visibility:",
    "Runs": ":material/inventory_2:",
}


def page_files() -> list[Path]:
    """Every page script in ``pages/``, in the order of its number prefix."""
    return sorted(PAGES_DIR.glob("[0-9]*_*.py"), key=lambda path: (int(path.stem.split("_", 1)[0]), path.name))


def page_title(path: Path) -> str:
    """``pages/3_Recommend.py`` → "Recommend" (the title Streamlit itself would infer)."""
    return path.stem.split("_", 1)[1].replace("_", " ")


def page_icon(title: str) -> str:
    return PAGE_ICONS.get(title.split()[0], DEFAULT_ICON)


def relative_path(path: Path) -> str:
    """The page as ``st.Page`` and ``st.page_link`` take it: relative to the app's root."""
    return f"pages/{path.name}"
