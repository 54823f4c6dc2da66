"""The stakeholder report: its content from saved runs, the CLI, and the file opened offline in Chromium.

The browser part fails (it does not skip) when Chromium or Playwright is missing (the chromium_browser fixture).
"""

from __future__ import annotations

import re

import pytest

from recsys_core.experiment import DataSource, run_experiment


@pytest.fixture(scope="module")
def report_runs(temporary_data_home, ml100k_dir):
    """A data home with three runs on ml-100k (popularity, EASE, BPR for one epoch)."""
    from recsys_core.datasets import fetch

    with temporary_data_home("report-home") as home:
        fetch("ml-100k", source=ml100k_dir)
        source = DataSource.builtin("ml-100k")
        data = source.load()
        ids = [
            run_experiment(data, model, "loo-sampled", device="cpu", source=source, **options).run_id
            for model, options in (("pop", {}), ("ease", {"overrides": {"l2": 500.0}}), ("bpr", {"epochs": 1}))
        ]
    return home, ids


def test_report_cli_writes_every_section(report_runs, monkeypatch, tmp_path, capsys):
    from recsys_core.cli import main

    home, ids = report_runs
    monkeypatch.setenv("RECSYS_HOME", str(home))
    out = tmp_path / "report.html"
    assert main(["report", "--runs", *ids, "--out", str(out)]) == 0
    assert "report written" in capsys.readouterr().out
    text = out.read_text()
    for heading in (
        "1. Data: ml-100k",
        "2. How the models were tested",
        "3. Leaderboard (loo-sampled, test split)",
        "4. Beyond accuracy",
        "5. Sample users",
        "6. Embedding map",
    ):
        assert heading in text, heading
    assert "99 items the user never interacted with" in text and "test part was used once" in text
    assert text.count('class="plotly-graph-div"') == 4  # leaderboard, accuracy vs coverage, vs novelty, map
    assert "ease vs pop (loo-full): On the 943 test users both runs were evaluated on, ease has mean HR@10" in text
    assert "Because you liked" in text
    assert "Which model should I demo?" in text and "<strong>Demo " in text and "ms per user" in text
    assert "Best run: ease (" in text and "full ranking).</strong> Best run = the highest test score on the full ranking" in text
    assert "PCA of the unit-length item vectors" in text  # no UMAP map was cached for these runs
    # Self-contained: no external script or stylesheet.
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    assert main(["report", "--runs", "no-such-run", "--out", str(tmp_path / "x.html")]) == 2
    assert "no saved run" in capsys.readouterr().err and not (tmp_path / "x.html").exists()


def test_report_refuses_runs_on_different_data(report_runs, monkeypatch, drugs_sample_dir):
    from recsys_core.datasets import fetch
    from recsys_core.errors import DataError
    from recsys_core.report import build_report

    home, ids = report_runs
    monkeypatch.setenv("RECSYS_HOME", str(home))
    fetch("drugscom-sample", source=drugs_sample_dir)
    other = run_experiment(
        DataSource.builtin("drugscom-sample").load(), "pop", device="cpu", source=DataSource.builtin("drugscom-sample")
    ).run_id
    with pytest.raises(DataError, match="same data"):
        build_report([ids[0], other])


@pytest.mark.browser
def test_report_renders_offline_in_chromium(report_runs, monkeypatch, tmp_path, chromium_browser):
    from recsys_core.report import write_report

    home, ids = report_runs
    monkeypatch.setenv("RECSYS_HOME", str(home))
    path = write_report(ids, tmp_path / "report.html")

    requested: list[str] = []
    context = chromium_browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
    try:
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri(), wait_until="load", timeout=60_000)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4", timeout=60_000)
        drawn = page.evaluate(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(p => ({id: p.id, points: p.querySelectorAll('.scatterlayer .point, .barlayer .point').length}))"
        )
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
    finally:
        context.close()
    from test_browser import _doc_copy

    _doc_copy(tmp_path / "report.png", "report.png")  # the README's copy, retaken with UPDATE_SCREENSHOTS=1
    assert not errors, errors
    assert [d["id"] for d in drawn] == ["leaderboard", "tradeoff-coverage", "tradeoff-novelty", "embedding-map"]
    by_id = {d["id"]: d["points"] for d in drawn}
    assert by_id["leaderboard"] == 3 and by_id["tradeoff-coverage"] == 3 and by_id["embedding-map"] > 1000
    assert all(url.startswith("file://") for url in requested), [u for u in requested if not u.startswith("file://")]


def test_two_saved_rating_runs_are_paired_and_reported(ml100k_dir):
    """A rating result lists a user once per test rating; its saved file must read back (it was once refused as
    "repeated indices", so rating runs could be paired neither on the Compare page nor in the report)."""
    import numpy as np

    from recsys_core.comparison import paired_comparison
    from recsys_core.datasets import fetch
    from recsys_core.report import build_report
    from recsys_core.runs import load_run

    fetch("ml-100k", source=ml100k_dir)
    source = DataSource.builtin("ml-100k")
    data = source.load()
    ids = [
        run_experiment(data, "autorec", "ratings", device="cpu", source=source, epochs=1, threads=1, overrides=overrides).run_id
        for overrides in ({}, {"hidden": 50})
    ]
    a, b = (load_run(run_id).evaluation("ratings") for run_id in ids)
    assert len(np.unique(a.users)) < len(a.users), "a rating result lists its users once per rating"
    assert paired_comparison(a, b, "squared_error")["n_users"] == len(a.users)
    report = build_report(ids)
    assert "squared_error" in report and "cannot be paired" not in report
