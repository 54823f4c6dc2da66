"""Facts about each model live on the model (its class and its config's fields), and say what the
name tables they replaced said: the same bounds, search spaces, memory estimates and titles."""

from __future__ import annotations

import dataclasses

import pytest

from recsys_core import limits
from recsys_core.models import MODEL_NAMES, model_class

# The name table the config fields' bounds replaced (recsys_core.limits.SETTING_BOUNDS), and iALS's own
# BOUNDS that took precedence over it: every field of every model must keep exactly this range.
OLD_SETTING_BOUNDS = {
    "epochs": (1, 1000),
    "learning_rate": (1e-7, 1.0),
    "finetune_learning_rate": (1e-7, 1.0),
    "batch_size": (1, 65_536),
    "weight_decay": (0.0, 1e6),
    "patience": (0, 1000),
    "embedding_size": (1, 4096),
    "n_negatives": (0, 100),
    "layers": (1, 8192),
    "hidden": (1, 8192),
    "hidden_size": (1, 8192),
    "rnn_size": (1, 8192),
    "latent_size": (1, 8192),
    "alpha": (0.0, 1.0),
    "dropout": (0.0, 0.99),
    "corruption": (0.0, 0.99),
    "beta_cap": (0.0, 10.0),
    "total_anneal_steps": (1, 1e9),
    "next_k": (1, 100),
    "max_length": (1, 10_000),
    "neighbours": (1, 10_000),
    "shrinkage": (0.0, 1e6),
    "l2": (1e-6, 1e9),
    "l2_grid": (1e-6, 1e9),
}
OLD_OWN_BOUNDS = {"ials": {"alpha": (1e-3, 1e4), "regularization": (0.0, 1e6), "factors": (1, 4096)}}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_setting_keeps_its_range(name):
    config_type = model_class(name).Config
    for field in dataclasses.fields(config_type):
        expected = OLD_OWN_BOUNDS.get(name, {}).get(field.name, OLD_SETTING_BOUNDS.get(field.name))
        assert limits.setting_bounds(field.name, config_type) == expected, (name, field.name)


def test_a_subclass_that_changes_a_default_keeps_the_range():
    from recsys_core.models.vae import MultAutoencoderConfig, MultVAEConfig

    # MultVAEConfig redeclares layers only for its default; the range is its base's.
    assert "bounds" not in MultVAEConfig.__dataclass_fields__["layers"].metadata
    assert limits.setting_bounds("layers", MultVAEConfig) == limits.setting_bounds("layers", MultAutoencoderConfig) == (1, 8192)
    with pytest.raises(Exception, match="outside its range"):
        MultVAEConfig(layers=(600, 9000))
    assert limits.setting_bounds("no_such_setting", MultVAEConfig) is None


# The titles webapp/common.py's MODEL_TITLES gave before each class declared its own.
OLD_TITLES = {
    "pop": "Popularity", "itemknn": "Item-kNN", "bpr": "BPR", "gmf": "GMF", "mlp": "MLP", "neumf": "NeuMF", "autorec": "AutoRec",
    "deeprec": "DeepRec", "cdae": "CDAE", "multvae": "Mult-VAE", "multdae": "Mult-DAE", "svae": "SVAE", "ease": "EASE",
    "ials": "iALS",
}  # fmt: skip


def test_each_model_declares_its_title_and_the_lookup_reads_it_without_torch():
    import subprocess
    import sys

    from recsys_core.models import model_title

    assert set(MODEL_NAMES) == set(OLD_TITLES)
    for name in MODEL_NAMES:
        assert model_class(name).title == model_title(name) == OLD_TITLES[name], name
    assert model_title("a-model-since-removed") == "a-model-since-removed"
    code = (
        "import sys; from recsys_core.models import MODEL_NAMES, model_title; "
        "print([model_title(n) for n in MODEL_NAMES] and 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "naming a model imported torch"


# limits.estimate_memory's totals when its per-model branches were a name table, for two shapes (ml-100k and
# ML-20M), each model's default config and no config: the estimates moved onto the models unchanged.
OLD_MEMORY_TOTALS = {
    ("autorec", (138493, 26744, 20000263), "default"): 6537910320,
    ("autorec", (138493, 26744, 20000263), "none"): 5456556976,
    ("autorec", (943, 1682, 100000), "default"): 62301808,
    ("autorec", (943, 1682, 100000), "none"): 54938864,
    ("bpr", (138493, 26744, 20000263), "default"): 7177147520,
    ("bpr", (138493, 26744, 20000263), "none"): 7684755584,
    ("bpr", (943, 1682, 100000), "default"): 78485232,
    ("bpr", (943, 1682, 100000), "none"): 86549232,
    ("cdae", (138493, 26744, 20000263), "default"): 4126539312,
    ("cdae", (138493, 26744, 20000263), "none"): 4421790640,
    ("cdae", (943, 1682, 100000), "default"): 57785968,
    ("cdae", (943, 1682, 100000), "none"): 69395696,
    ("deeprec", (138493, 26744, 20000263), "default"): 3950373808,
    ("deeprec", (138493, 26744, 20000263), "none"): 3854523312,
    ("deeprec", (943, 1682, 100000), "default"): 71561456,
    ("deeprec", (943, 1682, 100000), "none"): 65533168,
    ("ease", (138493, 26744, 20000263), "default"): 9500162480,
    ("ease", (138493, 26744, 20000263), "none"): 9500162480,
    ("ease", (943, 1682, 100000), "default"): 371161872,
    ("ease", (943, 1682, 100000), "none"): 371161872,
    ("gmf", (138493, 26744, 20000263), "default"): 9084183868,
    ("gmf", (138493, 26744, 20000263), "none"): 9684781884,
    ("gmf", (943, 1682, 100000), "default"): 78752624,
    ("gmf", (943, 1682, 100000), "none"): 96549232,
    ("ials", (138493, 26744, 20000263), "default"): 4014586840,
    ("ials", (138493, 26744, 20000263), "none"): 4459259992,
    ("ials", (943, 1682, 100000), "default"): 44836208,
    ("ials", (943, 1682, 100000), "none"): 52408304,
    ("itemknn", (138493, 26744, 20000263), "default"): 3828060848,
    ("itemknn", (138493, 26744, 20000263), "none"): 3828060848,
    ("itemknn", (943, 1682, 100000), "default"): 99348096,
    ("itemknn", (943, 1682, 100000), "none"): 99348096,
    ("mlp", (138493, 26744, 20000263), "default"): 9227505468,
    ("mlp", (138493, 26744, 20000263), "none"): 9684781884,
    ("mlp", (943, 1682, 100000), "default"): 138816880,
    ("mlp", (943, 1682, 100000), "none"): 96549232,
    ("multdae", (138493, 26744, 20000263), "default"): 3963210928,
    ("multdae", (138493, 26744, 20000263), "none"): 3854523312,
    ("multdae", (943, 1682, 100000), "default"): 72368816,
    ("multdae", (943, 1682, 100000), "none"): 65533168,
    ("multvae", (138493, 26744, 20000263), "default"): 4305534128,
    ("multvae", (138493, 26744, 20000263), "none"): 3854523312,
    ("multvae", (943, 1682, 100000), "default"): 93898416,
    ("multvae", (943, 1682, 100000), "none"): 65533168,
    ("neumf", (138493, 26744, 20000263), "default"): 9227505468,
    ("neumf", (138493, 26744, 20000263), "none"): 9684781884,
    ("neumf", (943, 1682, 100000), "default"): 138816880,
    ("neumf", (943, 1682, 100000), "none"): 96549232,
    ("pop", (138493, 26744, 20000263), "default"): 3471335280,
    ("pop", (138493, 26744, 20000263), "none"): 3471335280,
    ("pop", (943, 1682, 100000), "default"): 41433472,
    ("pop", (943, 1682, 100000), "none"): 41433472,
    ("svae", (138493, 26744, 20000263), "default"): 8264199088,
    ("svae", (138493, 26744, 20000263), "none"): 20596222896,
    ("svae", (943, 1682, 100000), "default"): 318915824,
    ("svae", (943, 1682, 100000), "none"): 1102370032,
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_models_memory_estimate_is_unchanged(name):
    from recsys_core.models import create_model

    for (model, shape, config), total in OLD_MEMORY_TOTALS.items():
        if model == name:
            estimate = limits.estimate_memory(name, *shape, None if config == "none" else create_model(name).config)
            assert estimate.total == total, (name, shape, config)
            assert estimate.dominant and estimate.way_out


def test_each_model_declares_its_inside_views():
    from recsys_core.errors import ModelError
    from recsys_core.models import create_model

    # The name tables recsys_core/inside.py used before (WEIGHT_MODELS, LATENT_MODELS).
    assert [n for n in MODEL_NAMES if model_class(n).offers("item_item_weights")] == ["itemknn", "ease"]
    assert [n for n in MODEL_NAMES if model_class(n).offers("latent_codes")] == ["multvae", "multdae"]
    with pytest.raises(ModelError, match="pop has no item-item weights") as error:
        create_model("pop").item_item_weights([0, 1])
    assert error.value.hint == "Choose a run of Item-kNN or EASE."
    with pytest.raises(ModelError, match="bpr has no latent code") as error:
        create_model("bpr").latent_codes(None)
    assert error.value.hint == "Choose a run of Mult-VAE or Mult-DAE."


def test_every_registered_model_has_a_contract_test_class():
    import importlib
    from pathlib import Path

    from model_contract import ModelContract

    for path in sorted(Path(__file__).parent.glob("test_models_*.py")):
        importlib.import_module(path.stem)
    classes, pending = [], list(ModelContract.__subclasses__())
    while pending:
        klass = pending.pop()
        classes.append(klass)
        pending.extend(klass.__subclasses__())
    covered = {klass.model_name for klass in classes if klass.__name__.startswith("Test") and klass.model_name}
    missing = [name for name in MODEL_NAMES if name not in covered]
    assert not missing, f"registered models without a ModelContract test class in tests/test_models_*.py: {missing}"
