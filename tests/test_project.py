"""House rules checked on every run: the README's commands, a UI-free core, no pickles, no ../shared."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = [*sorted((REPO / "recsys_core").rglob("*.py")), REPO / "app.py", *sorted((REPO / "pages").glob("*.py")), *sorted((REPO / "webapp").glob("*.py"))]


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


def first_page_modules() -> list[str]:
    """The modules app.py (the Home page) imports at its top, read from its source so the list follows the page."""
    import ast

    tree = ast.parse((REPO / "app.py").read_text())
    modules = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            # "from webapp import data_ui, home_ui": the names are modules of the package
            package = node.module
            modules += [f"{package}.{alias.name}" if package == "webapp" else package for alias in node.names]
    return sorted(set(modules))


def test_the_first_page_imports_no_torch():
    modules = first_page_modules()
    assert {"webapp.home_ui", "webapp.data_ui", "webapp.common", "recsys_core.errors"} <= set(modules), modules
    # The data loading the Home page does on its first render: the active source and the built-in readers.
    modules += ["recsys_core.datasets.source", "recsys_core.datasets"]
    code = "import sys\n" + "".join(f"import {name}\n" for name in modules) + "print(sorted(m for m in ('torch', 'umap', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "[]", f"the first page imports {out.stdout.strip()}"
