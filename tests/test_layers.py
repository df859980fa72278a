"""The package's import graph: no circles, and every arrow runs down the pipeline (docs/architecture.md).

Walks every module's imports with `ast` (module level and inside functions
alike: a lazy import is still a dependency), resolves them to modules of the
package, and checks the graph.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "eligibility"

# lower number = lower layer; a module may import its own package and any lower layer,
# never a higher one, and never a sibling package on the same layer
LAYERS = {
    "core": 0,
    "registry": 1,
    "compile": 2,
    "readers": 2,
    "evaluate": 3,
    "sql": 4,
    "engines": 5,
    "report": 5,
    "": 6,   # the top: screening, api, cli, __init__, __main__
}


def _module_name(path: Path) -> str:
    parts = ["eligibility", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            # the longest known module that the dotted name starts with
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "eligibility":
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"


def test_imports_run_downward():
    wrong = []
    for module, targets in _graph().items():
        mine = _package_of(module)
        for target in targets:
            theirs = _package_of(target)
            if theirs == mine:
                continue
            if LAYERS[theirs] >= LAYERS[mine]:
                wrong.append(f"{module} ({mine or 'top'}) imports {target} ({theirs or 'top'})")
    assert not wrong, "imports that do not run downward:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, expected", [
    ("from . import ir\n", {"eligibility.core.ir"}),
    ("from ..registry.units import conversion\n", {"eligibility.registry.units"}),
    ("def f():\n    from eligibility.sql import query\n", {"eligibility.sql.query"}),
])
def test_the_walker_sees_relative_and_lazy_imports(tmp_path, source, expected):
    known = {"eligibility.core.ir", "eligibility.core.errors", "eligibility.registry.units", "eligibility.sql.query"}
    module = tmp_path / "errors.py"
    module.write_text(source)
    assert _imports("eligibility.core.errors", module, known) == expected
