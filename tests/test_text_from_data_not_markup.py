"""Text from data is shown as text on every page, in plotly figures and in the HTML report; never as markup.

One hostile upload (its file name, user ids, titles and a run's positive rule carry markdown images,
links, bare addresses, HTML and Streamlit colour directives) is opened on every page with AppTest; no
markdown body, widget label or error on any page may hold the markup unescaped.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recsys_core.datasets import UserFileOptions, store_user_file
from recsys_core.experiment import DataSource, run_experiment
from recsys_core.home import runs_dir
from recsys_core.safe_text import plotly_text
from webapp.safe_output import WORD_JOINER, plain, plain_message

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IMAGE = "![x](http://host.example/p.png)"
PAYLOADS = [
    IMAGE,
    "[click](http://evil.example/a)",
    "<img src=x onerror=alert(1)>",
    "http://evil.example/bare",
    ":red[boom]",
    "www.evil.example",
]
# What must never reach a markdown body unescaped (a backslash before markup, a word joiner inside addresses and directives).
RAW = [r"(?<!\\)\]\(http", r"(?<!\\)<(img|b>)", r"://(host|evil)\.example", r":red", r"www\.evil", r"(?<!\\)\[(click|u\])"]


@pytest.fixture
def hostile_home(_isolated_home):
    rng = np.random.default_rng(0)
    users = [IMAGE, "[u](http://evil.example/u)"] + [f"u{i}" for i in range(28)]
    rows = []
    for user in users:
        for item in rng.choice(130, size=12, replace=False):
            title = f"{PAYLOADS[item % len(PAYLOADS)]} {item}"
            rows.append((user, f"i{item}", title, float(rng.integers(1, 6)), 1_000_000 + len(rows)))
    table = pd.DataFrame(rows, columns=["user", "item", "title", "rating", "timestamp"])
    path = _isolated_home / "hostile.csv"
    table.to_csv(path, index=False)
    stored = store_user_file(path, display_name=f"{IMAGE}.csv")
    options = UserFileOptions("user", "item", rating_col="rating", timestamp_col="timestamp", title_col="title")
    source = DataSource.file(stored.path, options, name="hostile", display_name=f"{IMAGE}.csv")
    data = source.load()
    run_ids = [
        run_experiment(data, model, "loo-full", device="cpu", source=source, **kw).run_id
        for model, kw in (("pop", {}), ("ease", {"overrides": {"l2": 50.0}}))
    ]
    for run_id in run_ids:  # a run's positive rule is text from run.json
        path = runs_dir() / run_id / "run.json"
        path.write_text(path.read_text().replace('"text": "', f'"text": "{IMAGE} <b>bold</b> http://evil.example/rule ', 1))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield source, run_ids
    st.cache_resource.clear()
    st.cache_data.clear()


def _figure_strings(at: AppTest) -> list[str]:
    """Every string in every plotly figure on the page (plotly renders them as a subset of HTML)."""
    out, stack = [], [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _texts(at: AppTest) -> list[str]:
    """Every markdown body, label and help text on the page (what Streamlit renders as markdown)."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "children", {}).values())
        for attribute in ("value", "label", "body", "help", "message"):
            try:
                value = getattr(node, attribute, None)
            except Exception:  # a widget whose value cannot be read in this state
                continue
            if isinstance(value, str):
                out.append(value)
    return out


PAGES = [
    "app.py",
    "app_pages/1_Data.py",
    "app_pages/2_Train.py",
    "app_pages/3_Recommend.py",
    "app_pages/4_Compare.py",
    "app_pages/5_Embeddings.py",
    "app_pages/6_Inside.py",
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_hostile_names_as_text(hostile_home, page):
    source, run_ids = hostile_home
    at = AppTest.from_file(str(REPO / page), default_timeout=240)
    at.session_state["source"] = source.to_json()
    at.session_state["run_id"] = run_ids[-1]
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    texts = _texts(at)
    assert any("host" in t for t in texts), "the page shows the hostile data set, run or titles somewhere"
    for text in texts:
        for raw in RAW:
            assert not re.search(raw, text), f"{page} renders {raw!r} from data as markup: {text[:300]!r}"
    figures = _figure_strings(at)
    if page == "app_pages/5_Embeddings.py":  # the item map's hover text holds every title
        assert any("&lt;img src=x" in text for text in figures)
    for text in figures:
        assert "<img" not in text and "<a " not in text, f"{page} draws a figure with markup from data: {text[:300]!r}"


@pytest.mark.parametrize(
    "text", [IMAGE, "see http://evil.example/x", "www.evil.example", "mail me@evil.example", ":red[boom] :material/home: :smile:"]
)
def test_plain_breaks_what_markdown_finds_after_escapes(text):
    shown = plain(text)
    assert not re.search(r"https?://|www\.|@\w|:\w", shown), shown  # autolinks, colours, icons and emoji codes
    assert re.sub(r"\\(.)", r"\1", shown).replace(WORD_JOINER, "") == text  # the same characters, shown as they are


def test_an_error_quoting_a_cell_is_shown_as_text():
    from recsys_core.errors import DataError

    shown = plain_message(DataError(f"the rating {IMAGE!r} in row 3 is not a number", "Fix the cell <b>here</b>."))
    assert not re.search(r"(?<!\\)\]\(http|(?<!\\)<b>", shown) and "http:" + WORD_JOINER in shown


def test_plotly_text_escapes_markup_for_figures_and_keeps_numbers():
    assert plotly_text('<a href="http://evil.example">x</a> & <span style="font-size:99px">') == (
        '&lt;a href="http://evil.example"&gt;x&lt;/a&gt; &amp; &lt;span style="font-size:99px"&gt;'
    )
    assert plotly_text(["<b>", 3]) == ["&lt;b&gt;", 3]
    assert plotly_text(np.array(["<i>"], dtype=object)) == ["&lt;i&gt;"]


def test_the_html_report_escapes_hover_text_labels_and_the_model_name(hostile_home, tmp_path):
    from recsys_core.report import build_report

    source, run_ids = hostile_home
    path = runs_dir() / run_ids[-1] / "run.json"
    path.write_text(path.read_text().replace('"model": "ease"', '"model": "ease<a href=\\"http://evil.example\\">m</a>"', 1))
    html = build_report(run_ids)
    # Plotly writes figures as JSON, where "<" is "\u003c": text that reached a figure unescaped shows up so.
    assert "\\u003cimg" not in html and "\\u003ca href" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.replace("\\u0026", "&")  # the titles are in the item map, escaped
    assert "ease&lt;a href" in html.replace("\\u0026", "&")  # and the model name in its title
