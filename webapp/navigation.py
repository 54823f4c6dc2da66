"""The app's pages: one list of ``st.Page`` objects (:func:`app_pages`), Home first.

``app.py`` hands this list to ``st.navigation`` and runs the page it picks; the Home page's links, the frame's
links to the Data and Train pages (:func:`page`) and every tab's title and icon come from it, so a page's file,
title and icon are written once, here. A new page is one more line in the list.

The page scripts live in ``app_pages/``, not ``pages/``: Streamlit treats a ``pages/`` folder beside the main
script as its older multipage layout until the main script has called ``st.navigation`` once, so on a fresh
server whose first request was a page URL (``/Data``) the sidebar listed "app" and the page files instead of
"Home". Material icons (``:material/...:``) are drawn from Streamlit's own font, so they render where no emoji
font is installed (Debian's chromium shows emoji as empty boxes).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "app_pages"


def app_pages() -> list[st.Page]:
    """Every page in sidebar order; Home is the default. The paths are absolute, so the list can be made by any
    script: the app's, or a page's run on its own (``AppTest.from_file``), where the links fall back to text."""
    return [
        st.Page(PAGES_DIR / "0_Home.py", title="Home", icon=":material/home:", default=True),
        st.Page(PAGES_DIR / "1_Data.py", title="Data", icon=":material/folder_open:"),
        st.Page(PAGES_DIR / "2_Train.py", title="Train", icon=":material/model_training:"),
        st.Page(PAGES_DIR / "3_Recommend.py", title="Recommend", icon=":material/recommend:"),
        st.Page(PAGES_DIR / "4_Compare.py", title="Compare", icon=":material/leaderboard:"),
        st.Page(PAGES_DIR / "5_Embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
        st.Page(PAGES_DIR / "6_Inside.py", title="Inside", icon=":material/visibility:"),
    ]


def page(title: str) -> st.Page:
    """The page called ``title`` ("Data")."""
    return next(p for p in app_pages() if p.title == title)
