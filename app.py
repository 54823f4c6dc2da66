"""Recsys Explorer: the app's frame and router. Run with ``streamlit run app.py``.

``st.navigation`` gets the app's one list of pages (``webapp.navigation.app_pages``: Home first, then Data,
Train, Recommend, Compare, Embeddings and Inside) and runs the page the person opened; every page, Home
included, is a script of its own in ``app_pages/``. Nothing else happens here, so the first page loads only
what it needs (no torch, no UMAP).
"""

from __future__ import annotations

import streamlit as st

from webapp import navigation

st.navigation(navigation.app_pages()).run()
