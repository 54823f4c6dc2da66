"""Inside: what a fitted model learned — item-item weights, embedding norms vs popularity, a VAE's latent code."""

from __future__ import annotations

import streamlit as st

from recsys_core import inside
from recsys_core.drugs import MEDICAL_NOTE
from recsys_core.models import model_title
from webapp import frame, inside_ui, pickers
from webapp.loading import is_drug_data

page = frame.open_page("Inside", heading="Inside the model")
data, data_key = page.data, page.data_key
run = frame.pick_run(data, key="inside_run")
if is_drug_data(data):
    st.info(MEDICAL_NOTE)
views = inside.views_for(run.model)
if not views:
    st.info(f"The {model_title(run.model.name)} model has no weights, vectors or code to look inside; choose a run of another model.")
    st.stop()
frame.keep_valid("inside_view", views)
view = st.radio("View", views, format_func=inside_ui.VIEW_LABELS.get, key="inside_view", horizontal=True)


def _pick_items(key: str, data, label: str) -> list[int]:
    return pickers.pick_items(key, data, data_key, label)


def _pick_user(key: str, data) -> int:
    return pickers.pick_user(key, data, data_key)


if view == "item-weights":
    inside_ui.show_item_weights(run, data, _pick_items)
elif view == "embedding-norms":
    inside_ui.show_embedding_norms(run)
else:
    inside_ui.show_latent(run, data, _pick_user, _pick_items)
