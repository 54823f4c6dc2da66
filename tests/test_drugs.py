"""The drug explorer on the real Drugs.com sample: the positive rule, both parts of an answer, reverse
mode, drugs like one drug, rank text and the condition-name truncation rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys_core.drugs import (
    MEDICAL_NOTE,
    MIN_CONDITION_SIMILARITY,
    MIN_SHARED_DRUGS,
    SIMILARITY_RULE,
    WELL_REVIEWED,
    DrugExplorer,
    ReviewClasses,
    condition_names,
    condition_similarity,
    paired_names,
    wilson_lower_bound,
)
from recsys_core.errors import DataError
from recsys_core.experiment import DataSource, keep_positives, run_experiment
from recsys_core.explain import item_rank_counts, rank_strength, rank_text
from recsys_core.runs import Run


@pytest.fixture(scope="module")
def module_home(temporary_data_home):
    """One data home for this module's shared runs: a source is only read from inside the home.
    Module-scoped fixtures are built before function-scoped ones, so the home is set here too."""
    with temporary_data_home("drugs-home") as home:
        yield home


@pytest.fixture(autouse=True)
def _isolated_home(module_home, monkeypatch):
    monkeypatch.setenv("RECSYS_HOME", str(module_home))
    yield module_home


@pytest.fixture(scope="module")
def source(drugs_sample_dir, module_home) -> DataSource:
    # A Drugs.com file a user brought lives in the data home's uploads/ (files outside it are refused).
    uploads = module_home / "uploads" / "drugscom-sample"
    shutil.copytree(drugs_sample_dir, uploads)
    return DataSource.drugscom_file(uploads, name="drugscom-sample")


@pytest.fixture(scope="module")
def reviews(source):
    return source.all_reviews()


def _run(source, model: str, **kwargs) -> Run:
    """A run as it is saved (the model knows every positive of the data), kept in memory."""
    data = source.load()
    result = run_experiment(data, model, "loo-sampled", seed=0, device="cpu", save=False, source=source, **kwargs)
    result.model.known = data.to_csr()
    return Run(f"test-{model}", Path("."), result.record, result.model, data.users, data.items, data.item_info, data.user_info)


@pytest.fixture(scope="module", params=["ease", "itemknn", "neumf"])
def explorer(request, source, reviews) -> DrugExplorer:
    kwargs = {"epochs": 2} if request.param == "neumf" else {}
    return DrugExplorer.build(_run(source, request.param, **kwargs), reviews)


# ------------------------------------------------------------------------------------ positive rule
def test_negative_and_neutral_reviews_are_not_training_positives(source, reviews):
    positives = source.load()
    assert source.threshold == 7.0 and np.all(positives.rating >= 7.0)
    assert len(reviews) == 965 and len(positives) == 626  # 89 neutral and 250 negative reviews stay evidence only
    assert np.array_equal(positives.users.ids, reviews.users.ids) and np.array_equal(positives.items.ids, reviews.items.ids)
    result = run_experiment(source, "pop", "loo-sampled", seed=0, device="cpu", save=False)
    split = result.split
    for part in (split.train, split.validation, split.test):
        assert np.all(part.rating >= 7.0)
    # Refitted on train + validation (the default): still positives only.
    assert result.model.known.nnz == split.train_with_validation().to_csr().nnz
    assert result.record["dataset"]["positive_rule"]["threshold"] == 7.0
    assert "positive" in result.record["dataset"]["positive_rule"]["text"]
    assert result.summary()["positive_threshold"] == 7.0


def test_threshold_setting_for_builtin_and_any_rated_data(ml100k):
    assert DataSource.builtin("drugscom-sample").threshold == 7.0
    assert DataSource.builtin("drugscom").threshold == 7.0
    assert DataSource.builtin("ml-100k").threshold is None
    assert DataSource.builtin("ml-100k", threshold=4).threshold == 4.0
    assert DataSource.builtin("drugscom", threshold=None).threshold is None
    # A run recorded before the rule existed used every review: it reloads the same way.
    assert DataSource.from_json({"kind": "builtin", "name": "drugscom-sample"}).threshold is None
    liked = keep_positives(ml100k, 4.0)
    assert len(liked) == int((ml100k.rating >= 4).sum()) and np.all(liked.rating >= 4)
    assert liked.n_users == ml100k.n_users
    with pytest.raises(DataError, match="threshold"):
        keep_positives(ml100k, 6.0)
    unrated = ml100k.subset(np.arange(10))
    unrated = type(unrated)(unrated.user, unrated.item, unrated.users, unrated.items, name="x")
    with pytest.raises(DataError, match="needs ratings"):
        keep_positives(unrated, 4.0)


def test_review_classes_match_the_sample_labels(reviews):
    labels = ReviewClasses.for_threshold(7.0).classify(reviews.rating)
    assert np.array_equal(labels, reviews.extra["rating_label"])
    assert list(ReviewClasses().classify(np.array([1, 4, 5, 6, 7, 10]))) == ["negative"] * 2 + ["neutral"] * 2 + ["positive"] * 2


def test_cli_train_threshold_option(capsys, drugs_sample_dir):
    from recsys_core.cli import main
    from recsys_core.datasets import fetch

    fetch("drugscom-sample", source=drugs_sample_dir, progress=False)
    assert main(["train", "--dataset", "drugscom-sample", "--model", "pop", "--threshold", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["positive_threshold"] is None
    assert main(["train", "--dataset", "drugscom-sample", "--model", "itemknn", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    assert main(["evaluate", "--run", run_id]) == 0  # the recorded rule rebuilds the same positive data
    capsys.readouterr()
    assert main(["recommend", "--run", run_id, "--user", "Birth Control", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert "Part 1 · Drugs reviewed for Birth Control" in out and "Part 2 · Not yet reviewed for Birth Control" in out
    assert out.count(MEDICAL_NOTE) == 1 and "score" not in out
    assert main(["recommend", "--run", run_id, "--similar-to", "Etonogestrel", "--k", "3", "--json"]) == 0
    similar = json.loads(capsys.readouterr().out)
    assert len(similar["similar"]) == 3 and similar["note"] == MEDICAL_NOTE
    assert main(["recommend", "--run", run_id, "--reverse", "--item", "Etonogestrel", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["reviewed"][0]["name"] == "Birth Control"
    assert main(["recommend", "--run", run_id, "--user", "Birth Control", "--order", "evidence", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["order"] == "evidence" and answer["reviewed"][0]["name"] == "Mirena"
    from recsys_core.drugs import conditions_for_drug, drugs_for_condition, drugs_like
    from recsys_core.runs import load_run

    run = load_run(run_id)
    assert drugs_for_condition(run, "Birth Control", k=3).suggested["name"].tolist() == [r["name"] for r in json_part(capsys, run_id)]
    assert conditions_for_drug(run, "Etonogestrel").reviewed["name"].iloc[0] == "Birth Control"
    assert len(drugs_like(run, "Etonogestrel", k=4).table) == 4


def json_part(capsys, run_id: str) -> list[dict]:
    from recsys_core.cli import main

    assert main(["recommend", "--run", run_id, "--user", "Birth Control", "--k", "3", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["suggested"]


# ------------------------------------------------------------------------------------ answers
def test_condition_answer_has_two_labelled_parts_with_evidence(explorer, reviews):
    answer = explorer.for_condition("Birth Control", k=10)
    condition = reviews.users.index("Birth Control")
    mine = reviews.item[reviews.user == condition]
    most_reviewed = pd.Series(reviews.items.ids[mine]).value_counts()
    top = set(most_reviewed.index[:5])  # Ethinyl estradiol / norethindrone, Nexplanon, Etonogestrel, ...
    part1, part2 = answer.reviewed, answer.suggested
    assert top <= set(part1["name"]) and len(part1) == len(set(mine.tolist()))
    assert part1["reviews"].sum() == len(mine)  # every review of the condition, whatever its rating
    assert (part1["positive"] + part1["neutral"] + part1["negative"] == part1["reviews"]).all()
    assert part1["strength"].is_monotonic_decreasing and part1["strength"].between(0, 100).all()
    flagged = part1[part1["negative"] * 2 > part1["reviews"]]
    assert len(flagged) and flagged["status"].str.contains("not a suggestion").all()
    assert (part1.loc[~part1.index.isin(flagged.index), "status"] == "").all()
    assert part1["best_negative"].where(part1["negative"] > 0, "x").str.len().gt(0).all()

    assert 0 < len(part2) <= 10 and not set(part2["name"]) & set(part1["name"])
    assert part2["similar_conditions"].map(len).gt(0).all()  # every suggestion names where it comes from
    assert part2["provenance"].str.startswith("used for ").all()
    assert part2["provenance"].str.contains("in common with Birth Control").all()
    # ordered by strength × similarity, each showing the similarity of its closest source condition
    assert part2["weighted"].is_monotonic_decreasing
    # weighted = strength × similarity before either is rounded for display (strength to a whole number,
    # similarity to 3 decimals, weighted to 1): the shown product can be off by half a strength point × similarity.
    gap = (part2["weighted"] - part2["strength"] * part2["similarity"]).abs()
    assert (gap <= 0.5 * part2["similarity"] + 0.1).all(), part2[["strength", "similarity", "weighted"]]
    assert (part2["similarity"] == part2["similarities"].map(max)).all()
    assert "score" not in part1.columns and "score" not in part2.columns
    text = answer.text(max_rows=5)
    assert "Part 1" in text and "Part 2" in text and text.count(MEDICAL_NOTE) == 1


ACNE_DRUGS = ("isotretinoin", "accutane", "sotret", "tazarotene", "tazorac")
CARDIAC_OR_PROSTATE = r"heart|cardi|angina|hypertension|arrhythm|atrial|coronary|prostat"


def test_birth_control_suggests_no_acne_drug_and_only_similar_enough_conditions(explorer):
    """Acne shares 2 of Birth Control's 34 positively reviewed pills: contact, not overlap. It must not
    carry isotretinoin (Accutane, Sotret) or tazarotene (Tazorac), two of them teratogens, into the answer."""
    answer = explorer.for_condition("Birth Control", k=30)
    names = " ".join(answer.suggested["name"].str.lower().tolist() + answer.suggested["other_names"].str.lower().tolist())
    assert not [drug for drug in ACNE_DRUGS if drug in names], names
    sources = {name for names in answer.suggested["similar_conditions"] for name in names}
    assert "Acne" not in sources and sources <= {"Abnormal Uterine Bleeding", "Endometriosis", "Menstrual Disorders"}
    assert min(value for values in answer.suggested["similarities"] for value in values) >= MIN_CONDITION_SIMILARITY
    assert min(count for counts in answer.suggested["shared_drugs"] for count in counts) >= MIN_SHARED_DRUGS
    assert SIMILARITY_RULE in answer.text() and answer.to_json()["similarity_rule"] == SIMILARITY_RULE


def test_reverse_answer_for_a_combined_pill_reaches_no_cardiac_or_prostate_condition(explorer):
    answer = explorer.for_drug("Ethinyl estradiol / norethindrone", k=30)
    assert not answer.suggested["name"].str.contains(CARDIAC_OR_PROSTATE, case=False).any(), answer.suggested["name"].tolist()
    assert len(answer.suggested) and answer.suggested["similar_conditions"].map(len).gt(0).all()
    assert answer.suggested["provenance"].str.contains("similar to").all()


def test_condition_similarity_by_hand():
    # condition 0 has drugs {0,1,2,3}; 1 has {0,1}; 2 has {0}; 3 has {0,1,2,3,4,5,6,7,8}
    sets = sp.csr_matrix(
        np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0], [1] * 9], dtype=float)
    )
    similarity, shared = condition_similarity(sets, sets[[0]])
    assert shared[0].tolist() == [4, 2, 1, 4]
    # cosine · n / (n + 2): 1 · 4/6 with itself; 2/sqrt(8) · 2/4 = 0.354; one shared drug never counts; 4/6 · 4/6 = 0.444
    np.testing.assert_allclose(similarity[0], [4 / 6, 2 / np.sqrt(8) / 2, 0.0, 4 / 6 * 4 / 6])
    # 2 shared drugs between a set of 2 and one of 100: 2/sqrt(200) · 2/4 = 0.07, below the threshold
    wide = sp.csr_matrix(np.vstack([np.r_[1.0, 1.0, np.zeros(98)], np.ones(100)]))
    similarity, shared = condition_similarity(wide, wide[[0]])
    assert shared[0, 1] == 2 and 2 / np.sqrt(200) / 2 < MIN_CONDITION_SIMILARITY and similarity[0, 1] == 0.0


def test_a_list_with_nothing_similar_enough_says_so(explorer):
    """A migraine list (propranolol, sumatriptan, topiramate) shares at most one positively reviewed drug
    with any condition: the answer says nothing is similar enough instead of reaching for weight-loss drugs."""
    answer = explorer.for_profile(["Propranolol", "Sumatriptan", "Topiramate"], k=10)
    assert answer.question == "profile" and answer.suggested.empty
    assert "No condition is similar enough" in answer.suggested_note and answer.suggested_note in answer.text()
    part1 = answer.reviewed
    assert set(part1["name"]) == {"Propranolol", "Sumatriptan", "Topiramate"} and "score" not in part1.columns
    assert {"strength", "model_rank", "reviews", "positive", "negative", "status", "positive_share_low"} <= set(part1.columns)
    # a list that does overlap a condition gets suggestions from it, with the same columns as a condition's answer
    depression = explorer.for_profile(["Sertraline", "Citalopram", "Escitalopram", "Bupropion"], k=5)
    condition = explorer.for_condition("Depression", k=5)
    assert set(condition.suggested.columns) == set(depression.suggested.columns)
    with pytest.raises(DataError, match="empty"):
        explorer.for_profile([], k=5)


def test_part_one_in_the_evidence_order_puts_mirena_first(explorer):
    """Mirena: 7 of 8 reviews positive, the best-supported share among Birth Control's drugs."""
    answer = explorer.for_condition("Birth Control", k=5, order="evidence")
    part1 = answer.reviewed
    assert part1["name"].iloc[0] == "Mirena" and (part1["positive"].iloc[0], part1["reviews"].iloc[0]) == (7, 8)
    assert part1["positive_share_low"].is_monotonic_decreasing
    assert "evidence" in answer.reviewed_title and answer.to_json()["order"] == "evidence"
    assert set(part1["name"]) == set(explorer.for_condition("Birth Control", k=5).reviewed["name"])  # the same drugs, reordered
    with pytest.raises(DataError, match="order"):
        explorer.for_condition("Birth Control", order="alphabetical")


def test_wilson_lower_bound_agrees_with_scipy():
    from scipy.stats import binomtest

    successes, trials = np.array([7, 1, 0, 5, 30]), np.array([8, 1, 3, 5, 41])
    expected = [binomtest(int(k), int(n)).proportion_ci(method="wilson").low for k, n in zip(successes, trials)]
    np.testing.assert_allclose(wilson_lower_bound(successes, trials), expected, atol=1e-12)
    assert wilson_lower_bound(np.array([0]), np.array([0]))[0] == 0.0


def test_brand_and_generic_names_the_data_pairs_and_binned_ratings(explorer, reviews):
    """In the sample one review is listed under both Etonogestrel and Implanon: each names the other."""
    assert paired_names(reviews)[reviews.items.index("Etonogestrel")] == ["Implanon"]
    assert paired_names(reviews)[reviews.items.index("Implanon")] == ["Etonogestrel"]
    assert sum(map(len, paired_names(reviews))) == 2  # no other pair in the sample
    answer = explorer.for_condition("Birth Control", k=5)
    others = dict(zip(answer.reviewed["name"], answer.reviewed["other_names"]))
    assert others["Etonogestrel"] == "Implanon" and others["Implanon"] == "Etonogestrel" and others["Mirena"] == ""
    assert "also listed as Implanon" in answer.text()
    # the sample's ratings are bins (2.5 / 5.5 / 8.5): the answer says its mean rating is one of bins
    assert "bins" in answer.rating_note and "bin" in answer.mean_rating_label and "mean of rating bins" in answer.text()


def test_well_reviewed_conditions(explorer, reviews):
    well = explorer.well_reviewed_conditions()
    counts = reviews.user_counts()
    assert len(well) and (counts[well] >= WELL_REVIEWED).all() and set(well) == set(np.flatnonzero(counts >= WELL_REVIEWED))
    assert counts[well[0]] == counts.max()


def test_reverse_mode_for_etonogestrel_lists_birth_control_first(explorer):
    answer = explorer.for_drug("Etonogestrel", k=5)
    assert answer.reviewed["name"].iloc[0] == "Birth Control"
    assert answer.reviewed["model_rank"].iloc[0].endswith("drugs for this condition")
    part2 = answer.suggested
    assert len(part2) and "Birth Control" not in set(part2["name"])
    assert part2["similar_conditions"].map(lambda names: "Birth Control" in names).all()
    assert (part2["reviews"] > 0).all()


def test_drugs_like_this_one_name_shared_conditions(explorer):
    similar = explorer.similar_to("Etonogestrel", k=5)
    table = similar.table
    assert len(table) == 5 and "Etonogestrel" not in set(table["name"])
    assert (table["n_shared"] == table["shared_conditions"].map(len)).all()
    if explorer.run.model.name != "neumf":  # two epochs of NeuMF leave its item vectors close to random
        assert "Birth Control" in similar.text() and table["n_shared"].iloc[0] > 0
    assert similar.note == MEDICAL_NOTE


def test_explorer_refuses_reviews_of_other_data(source, ml100k):
    run = _run(source, "pop")
    with pytest.raises(DataError, match="do not belong"):
        DrugExplorer.build(run, ml100k)


# ------------------------------------------------------------------------------------ ranks
def test_rank_text_shows_ties_as_ties():
    scores = np.array([[0.5, 0.9, 0.5, 0.1, 0.5]])
    first, tied = item_rank_counts(scores, np.arange(5)[None, :])
    assert first.tolist() == [[2, 1, 2, 5, 2]] and tied.tolist() == [[3, 1, 3, 1, 3]]
    assert rank_text(1, 1, 251, "drugs") == "ranked 1st of 251 drugs"
    assert rank_text(3, 1, 251, "drugs") == "ranked 3rd of 251 drugs"
    assert rank_text(2, 3, 5, "drugs") == "tied 2nd–4th of 5 drugs"
    assert rank_text(11, 1, 20) == "ranked 11th of 20 items"
    assert rank_strength(first[0], tied[0], 5).tolist() == [50, 100, 50, 0, 50]


def test_rank_users_for_item_reads_as_ranks(source):
    run = _run(source, "itemknn")
    table = run.rank_users_for_item("Etonogestrel", k=5)
    assert "percentile" not in table.columns and "score" not in table.columns
    assert table["model_rank"].str.contains(r"of 470 drugs").all()
    assert table["condition"].iloc[0] == "Birth Control"


# ------------------------------------------------------------------------------------ condition names
def test_truncated_condition_names_are_restored_by_the_documented_rule(reviews):
    from recsys_core.datasets.readers import restore_condition_names, suspect_condition_names

    names = pd.Series(["Premature Lab", "Premature Labor", "Acne", "Acne Rosacea", "Gout", "Gout, Acute", "Depress", "Depression"])
    restored = restore_condition_names(names).tolist()
    assert restored == ["Premature Labor", "Premature Labor", "Acne", "Acne Rosacea", "Gout", "Gout, Acute", "Depression", "Depression"]
    # Alone, a known cut last word is completed: the sample has "Premature Lab" and no "Premature Labor".
    assert restore_condition_names(pd.Series(["Premature Lab", "Bipolar Disorde", "Not Listed / Othe"])).tolist() == [
        "Premature Labor",
        "Bipolar Disorder",
        "Not Listed / Other",
    ]
    conditions = set(reviews.users.ids)
    assert {"Premature Labor", "Bipolar Disorder", "Breast Cancer"} <= conditions
    assert not {"Premature Lab", "Bipolar Disorde"} & conditions
    scraped = pd.Series(reviews.extra["condition_as_scraped"])
    assert (scraped == "Premature Lab").sum() == (pd.Series(reviews.users.ids[reviews.user]) == "Premature Labor").sum() > 0
    assert suspect_condition_names(conditions) == ["atigue", "ibromyalgia", "mance Anxiety", "min)", "moterol)"]
    report = condition_names(reviews)
    assert report.suspect == ("atigue", "ibromyalgia", "mance Anxiety", "min)", "moterol)")
    row = report.restored[report.restored["as_scraped"] == "Premature Lab"]
    assert row["restored"].item() == "Premature Labor" and row["reviews"].item() > 0
