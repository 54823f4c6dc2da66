"""House rules checked on every run: the README's commands, a UI-free core, no pickles, no ../shared."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = [
    *sorted((REPO / "recsys_core").rglob("*.py")),
    REPO / "app.py",
    *sorted((REPO / "app_pages").glob("*.py")),
    *sorted((REPO / "webapp").glob("*.py")),
]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", quick, flags=re.S)]


def test_readme_has_exactly_two_quick_start_commands_and_ci_runs_the_test_one():
    run, test = readme_commands()
    assert "pip install -r requirements.txt" in run and "streamlit run app.py" in run
    assert "pytest" in test
    assert test in (REPO / ".ci" / "run").read_text()


def test_core_never_imports_streamlit():
    for path in (REPO / "recsys_core").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+streamlit", path.read_text(), flags=re.M), path


def test_product_never_reads_shared_or_loads_pickles():
    for path in PRODUCT:
        text = path.read_text()
        assert "../shared" not in text and "shared/data" not in text, path
        assert "pickle.load" not in text and "allow_pickle=True" not in text, path
        assert not re.search(r"torch\.load\((?![^)]*weights_only=True)", text), path


def test_importing_the_core_is_light():
    code = "import sys, recsys_core, recsys_core.datasets, recsys_core.cli; print('torch' in sys.modules, 'umap' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_requirements_pin_torch_exactly():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert "torch==2.13.0" in pins
    assert all("==" in line for line in pins)


def test_models_do_not_import_the_trainer():
    # The circle models/base.py ↔ trainer.py is gone: building, loading and scoring a model needs no trainer.
    code = (
        "import sys, recsys_core.models as m; [m.model_class(name) for name in m.MODEL_NAMES]; print('recsys_core.trainer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.split() == ["False"], out.stderr


def test_model_sources_never_mention_the_trainer_module():
    pattern = re.compile(
        r"^\s*(from\s+(\.\.|recsys_core\.)trainer\b|from\s+\.\.\s+import\s+.*\btrainer\b|import\s+recsys_core\.trainer\b)", re.M
    )
    for path in sorted((REPO / "recsys_core" / "models").glob("*.py")):
        assert not pattern.search(path.read_text()), f"{path.name} imports recsys_core.trainer"
    # the fit context, which models do import, must not reach the trainer either
    assert not re.search(
        r"^\s*from\s+\.trainer\b|import\s+recsys_core\.trainer\b", (REPO / "recsys_core" / "fit_context.py").read_text(), re.M
    )


def test_device_helpers_live_in_device_py():
    # One home for CUDA: device helpers are defined in recsys_core/device.py and nowhere else.
    for path in PRODUCT:
        if path.name == "device.py":
            continue
        text = path.read_text()
        assert not re.search(r"^def (resolve_device|device_description|autocast)\b", text, flags=re.M), path
        assert "torch.autocast(" not in text, path


def first_page_modules() -> list[str]:
    """The modules app.py (the router) and the Home page import at their top, read from their source so the list
    follows the page."""
    import ast

    modules = []
    nodes = [node for path in ("app.py", "app_pages/0_Home.py") for node in ast.parse((REPO / path).read_text()).body]
    for node in nodes:
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            # "from webapp import data_ui, home_ui": the names are modules of the package
            package = node.module
            modules += [f"{package}.{alias.name}" if package == "webapp" else package for alias in node.names]
    return sorted(set(modules))


def test_the_first_page_imports_no_torch():
    modules = first_page_modules()
    assert {"webapp.home_ui", "webapp.data_ui", "webapp.run_labels", "recsys_core.errors"} <= set(modules), modules
    # The data loading the Home page does on its first render: the active source and the built-in readers.
    modules += ["recsys_core.datasets.source", "recsys_core.datasets"]
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + "print(sorted(m for m in ('torch', 'umap', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "[]", f"the first page imports {out.stdout.strip()}"


def test_listing_runs_imports_no_torch(tmp_path):
    """Every page's sidebar lists the runs (``webapp.loading.all_runs``): that must not load the models (torch), or the
    Data page would wait for torch whenever a run is saved."""
    code = "import sys; from webapp.loading import all_runs; all_runs(); print('torch' in sys.modules)"
    env = {**os.environ, "RECSYS_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"
