"""Recsys Explorer's toolkit: data, leak-free evaluation, neural and classic recommenders.

Heavy libraries (torch, umap) are imported by the modules that need them, not here, so that
``import recsys_core`` stays fast for the web app.
"""

__version__ = "0.1.0"
