"""The house rules, checked on the source: one-way imports with no circle, LanceDB and the on-disk layout only in
indexes/, small modules, and a command line that lists every command however it is started."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "docrag": ROOT / "docrag",
    "docrag.parsers": ROOT / "parsers",
    "docrag.pipeline": ROOT / "pipeline",
    "docrag.indexes": ROOT / "indexes",
}
MAX_LINES = 500  # "no module over about 500 lines"


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if package == "docrag" and path.relative_to(folder).parts[0] in ("parsers", "pipeline", "indexes"):
                continue
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every docrag module this one imports, at the top or inside a function (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_no_import_circle():
    """Not even through an import inside a function: a circle means two modules each know the other."""
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycle = [*stack[stack.index(node) :], node]
            pytest.fail("import circle: " + " -> ".join(cycle))
        if node in done:
            return
        for nxt in sorted(GRAPH[node]):
            if not nxt.endswith("__init__"):
                visit(nxt, [*stack, node])
        done.add(node)

    for name in sorted(GRAPH):
        visit(name, [])


def test_the_house_is_one_way():
    """parsers know nothing above them; indexes know no pipeline; the pipeline uses no ``docrag.api`` facade."""
    for name, deps in GRAPH.items():
        if name.startswith("docrag.parsers"):
            assert all(d.startswith("docrag.parsers") for d in deps), (name, deps)
        if name.startswith("docrag.indexes"):
            assert not any(d.startswith(("docrag.pipeline", "docrag.api", "docrag.cli")) for d in deps), (name, deps)
        if name.startswith("docrag.pipeline"):
            assert not any(d.startswith(("docrag.api", "docrag.cli", "docrag.config")) for d in deps), (name, deps)


def test_only_indexes_talk_to_lancedb_or_know_the_layout():
    for name, path in MODULES.items():
        if name.startswith("docrag.indexes"):
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "lancedb" not in imported, f"{name} imports lancedb"
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [s for s in strings if ".lance" in s], f"{name} knows the on-disk layout"


def test_library_modules_are_small():
    big = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_python_m_docrag_cli_lists_the_same_commands_as_the_app():
    from docrag.cli import app

    names = {c.name or c.callback.__name__ for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert {"route", "index", "search", "show", "eval", "stats", "check", "remove", "doctor", "models"} <= names
    out = subprocess.run([sys.executable, "-m", "docrag.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[1] for line in out.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert names <= listed, names - listed
