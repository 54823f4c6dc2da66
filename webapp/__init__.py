"""Streamlit glue shared by app.py and app_pages/: caching, session state and error display.

Everything that computes lives in recsys_core; this package only connects it to widgets.
"""
