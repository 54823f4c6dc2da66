"""The Inside page (AppTest) and the numbers behind it (recsys_core.inside) on ml-100k."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys_core import inside
from recsys_core.experiment import DataSource, run_experiment
from recsys_core.runs import load_run

REPO = Path(__file__).resolve().parents[1]
ML = DataSource.builtin("ml-100k")


@pytest.fixture(scope="module")
def inside_runs(temporary_data_home, ml100k_dir):
    from recsys_core.datasets import fetch

    with temporary_data_home("inside-home") as home:
        fetch("ml-100k", source=ml100k_dir)
        data = ML.load()
        runs = {
            name: run_experiment(data, name, device="cpu", source=ML, **options).run_id
            for name, options in (
                ("pop", {}),
                ("itemknn", {}),
                ("ease", {"overrides": {"l2": 500.0}}),
                ("bpr", {"epochs": 1}),
                ("multvae", {"epochs": 2}),
            )
        }
    st.cache_resource.clear()
    return home, runs


def page(home: Path, run_id: str) -> AppTest:
    os.environ["RECSYS_HOME"] = str(home)
    at = AppTest.from_file(str(REPO / "app_pages" / "6_Inside.py"), default_timeout=240)
    at.session_state["source"] = ML.to_json()
    at.session_state["run_id"] = run_id
    at.run()
    return ok(at)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


def test_strongest_pairs_by_hand():
    weights = np.array([[0.0, 0.5, -0.9], [0.2, 0.0, 0.1], [0.3, 0.05, 0.0]])
    titles = np.array(["a", "b", "c"])
    pairs = inside.strongest_pairs(weights, np.arange(3), titles, n=3)
    # Unordered pairs by their stronger direction: (a,c) |−0.9|, (a,b) 0.5, (b,c) 0.1.
    assert pairs[["from", "to"]].values.tolist() == [["a", "c"], ["a", "b"], ["b", "c"]]
    assert pairs["weight"].tolist() == [-0.9, 0.5, 0.1] and pairs["reverse weight"].tolist() == [0.3, 0.2, 0.05]


def test_item_weights_page_for_ease_and_itemknn(inside_runs):
    home, runs = inside_runs
    at = page(home, runs["ease"])
    assert inside.explanation("item-weights", "item") in [c.value for c in at.caption] and "sequels" in inside.explanation("item-weights")
    # On drug data the heatmap speaks of drugs, not of sequels and genres.
    drugs = inside.explanation("item-weights", "drug")
    assert "same conditions" in drugs and "sequel" not in drugs and "genre" not in drugs
    assert any("weight of the row item" in t for t in chart_titles(at))
    pairs = at.dataframe[0].value
    assert len(pairs) == 15 and {"from", "to", "weight", "reverse weight"} <= set(pairs.columns)
    assert pairs["weight"].abs().is_monotonic_decreasing or (pairs[["weight", "reverse weight"]].abs().max(axis=1).is_monotonic_decreasing)
    run = load_run(runs["ease"])
    items = inside.most_popular_items(run.model, 25)
    block = inside.item_weights(run.model, items)
    assert block.shape == (25, 25) and np.allclose(np.diag(block), 0.0)
    # The block is EASE's B among those items, exactly as it scores.
    np.testing.assert_allclose(block[3, 7], run.model.weights[items[3], items[7]].item(), rtol=1e-6)

    picked = [int(i) for i in items[:4]]
    ok(at.multiselect(key="inside_items").set_value(picked).run())
    assert len(at.dataframe[0].value) == 6  # every pair of 4 items

    at = page(home, runs["itemknn"])
    assert len(at.dataframe[0].value) == 15


def test_embedding_norms_page(inside_runs):
    home, runs = inside_runs
    at = page(home, runs["bpr"])
    assert any("vector length vs popularity" in t for t in chart_titles(at))
    assert "Spearman correlation of length and popularity" in " ".join(m.value for m in at.markdown)
    run = load_run(runs["bpr"])
    table = inside.embedding_norms(run.model)
    note = inside.norm_popularity_note(inside.norm_popularity_correlation(table), table)
    assert note in " ".join(m.value for m in at.markdown)
    np.testing.assert_allclose(table["norm"], np.linalg.norm(run.model.item_embeddings(), axis=1), rtol=1e-5)
    assert table["interactions"].sum() == run.model.known.nnz


def test_a_negative_length_popularity_correlation_is_explained():
    """Issue 21 item 9: the longest vectors on items seen 0-1 times, with no word on why: now said."""
    table = pd.DataFrame({"item_index": range(20), "norm": np.linspace(2.0, 0.1, 20), "interactions": [0] * 8 + list(range(1, 13))})
    correlation = inside.norm_popularity_correlation(table)
    assert correlation < -0.3
    note = inside.norm_popularity_note(correlation, table)
    assert "*less* popular" in note and "9 of the 10 longest" in note and "random starting vector" in note
    assert "popularity bias" in inside.norm_popularity_note(0.8, table)
    assert "weakly" in inside.norm_popularity_note(0.1, table)


def test_latent_page_for_multvae(inside_runs):
    home, runs = inside_runs
    at = page(home, runs["multvae"])
    assert at.radio(key="inside_view").options == ["Embedding norms vs popularity", "Latent code of a user"]
    ok(at.radio(key="inside_view").set_value("latent").run())
    assert inside.EXPLANATIONS["latent"] in [c.value for c in at.caption]
    run = load_run(runs["multvae"])
    profile = [int(i) for i in inside.most_popular_items(run.model, 3)]
    ok(at.multiselect(key="inside_profile").set_value(profile).run())
    spec = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][0]
    path = [trace for trace in spec["data"] if trace.get("name") == "your profile"][0]
    assert len(path["text"]) == 3  # one point per added item (coordinates are binary-encoded by plotly)
    moves = at.dataframe[-1].value
    assert len(moves) == 2 and (moves["move of the code"] > 0).all()
    # The path's last point is the code of the whole profile.
    codes = inside.latent_path(run.model, profile)
    np.testing.assert_allclose(codes[-1], run.model.latent_codes(run.model.history_row(np.array(profile)))[0], atol=1e-5)


def test_popularity_has_nothing_inside(inside_runs):
    home, runs = inside_runs
    at = page(home, runs["pop"])
    assert "no weights, vectors or code" in " ".join(i.value for i in at.info)


def test_the_latent_plane_is_computed_once_per_run(inside_runs, monkeypatch):
    """Every user's code and their principal components do not change with the user or profile picked: a rerun of
    the view must not encode every user again."""
    home, runs = inside_runs
    computed = []
    real = inside.latent_plane
    monkeypatch.setattr(inside, "latent_plane", lambda model: computed.append(1) or real(model))
    from webapp import inside_ui

    inside_ui.latent_plane.clear()
    at = page(home, runs["multvae"])
    ok(at.radio(key="inside_view").set_value("latent").run())
    ok(at.multiselect(key="inside_profile").set_value([0, 1]).run())
    assert len(at.get("plotly_chart")) == 1
    assert computed == [1]
