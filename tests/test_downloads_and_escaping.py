"""What leaves the app: CSV downloads with formula cells neutralised, user text never rendered as markup."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from webapp.safe_output import WORD_JOINER, csv_download, neutralise_cell, plain

REPO = Path(__file__).resolve().parents[1]
HOSTILE = REPO / "tests" / "fixtures" / "hostile"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://evil.example","click")', '\'=HYPERLINK("http://evil.example","click")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Toy Story (1995)", "Toy Story (1995)"),
        ("a=b", "a=b"),
        (-0.5, -0.5),
        (None, None),
    ],
)
def test_formula_cells_are_neutralised_as_owasp_recommends(cell, expected):
    assert neutralise_cell(cell) == expected


def test_a_download_of_hostile_titles_opens_as_text():
    from recsys_core.datasets import UserFileOptions, read_user_file

    data = read_user_file(HOSTILE / "formula_cells.csv", UserFileOptions("user", "item", title_col="title"))
    table = pd.DataFrame(
        {"rank": [1, 2, 3, 4], "title": data.item_titles(), "user": data.users.ids[:4], "score": [-1.5, 0.2, 3.0, -0.1], "=col": 1}
    )
    text = csv_download(table).decode("utf-8")
    back = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for column in back.columns:
        assert not back[column].str.match(r"^[=+\-@\t\r]").any() or column == "score", column
    assert back.columns[-1] == "'=col"
    assert back["score"].tolist() == ["-1.5", "0.2", "3.0", "-0.1"]  # numbers stay numbers
    assert "'=HYPERLINK" in text and "'@SUM" in text and "'+cmd" in text


def test_every_download_button_goes_through_the_neutraliser():
    sources = [p for p in [*REPO.joinpath("app_pages").glob("*.py"), *REPO.joinpath("webapp").glob("*.py"), REPO / "app.py"]]
    buttons = [p for p in sources if "download_button(" in p.read_text()]
    assert buttons, "the Recommend page offers a CSV download"
    for path in buttons:
        text = path.read_text()
        assert "to_csv(" not in text, f"{path.name} writes CSV itself"
    helper = (REPO / "webapp" / "recommend_ui.py").read_text()
    assert re.search(r"def download_button\([^)]*\)[\s\S]*?csv_download\(shown\)", helper)


@pytest.mark.parametrize(
    "text",
    [
        "[click](javascript:alert(1))",
        "![x](http://tracker.example/p.png)",
        "<img src=x onerror=alert(1)>",
        "**bold** _it_ `code`",
        "# Heading\n- item",
    ],
)
def test_user_text_is_escaped_for_markdown(text):
    shown = plain(text)
    unescaped = re.findall(r"(?<!\\)[\[\]<>*_`#$~]", shown)
    assert not unescaped, shown
    assert re.sub(r"\\(.)", r"\1", shown).replace(WORD_JOINER, "") == " ".join(text.split())  # the same characters, shown as they are


def test_no_page_allows_raw_html():
    for path in [*REPO.joinpath("app_pages").glob("*.py"), *REPO.joinpath("webapp").glob("*.py"), REPO / "app.py"]:
        assert "unsafe_allow_html=True" not in path.read_text(), path.name
