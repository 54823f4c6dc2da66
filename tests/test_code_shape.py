"""The shape of the code itself: short functions, and no import circle among the app's modules.

Both are read from the source with ``ast`` (nothing is imported), so they hold for lazy imports inside
functions too: a circle closed by an import inside a function still makes the modules' order of
initialisation matter and is how the app's error helper once came to depend on its own callers.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80


def _sources(*roots: str) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        path = REPO / root
        assert path.exists(), f"{root} is gone: name the folder that holds that code now"
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def test_no_function_in_the_core_or_the_app_is_longer_than_80_lines():
    long = []
    for path in _sources("recsys_core", "webapp", "app_pages", "app.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these into named steps:\n" + "\n".join(long)


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function, as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from webapp import train_jobs`` imports the module webapp.train_jobs
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return stack[stack.index(child) :] + [child]
            if child not in state and (cycle := visit(child)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_app_modules_import_each_other_without_a_circle():
    modules = {_module_name(path): path for path in _sources("webapp")}
    graph = {name: {m for m in _imported_modules(path) if m in modules and m != name} for name, path in modules.items()}
    cycle = _find_cycle(graph)
    assert cycle is None, "import circle (lazy imports count): " + " -> ".join(cycle)

