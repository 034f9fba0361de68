"""No two modules of the project import each other, directly or through others, not even
inside a function: every import of the four packages, read with ``ast``, makes a graph that
must have no cycle. (A package's ``__init__`` importing its own modules is not a cycle with
them: importing ``a.b`` runs ``a/__init__`` first, but ``a/__init__`` does not need ``a.b``'s
importer.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("repghost", "space", "latency", "nas")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``name`` imports anywhere in its file (functions included)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in modules:
                found.add(target)
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_back():
    graph = import_graph()
    assert len(graph) > 40 and graph["latency.device_registry"] >= {"latency.devices", "latency.remote"}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_packages_import_only_downward():
    order = {package: rank for rank, package in enumerate(PACKAGES)}
    for name, targets in import_graph().items():
        for target in targets:
            assert order[target.split(".")[0]] <= order[name.split(".")[0]], f"{name} imports {target}, a package above it"


def test_the_walk_finds_a_circle_inside_a_function(tmp_path):
    """The checker itself: a function-local import that closes a circle is found."""
    graph = {"a": {"b"}, "b": set()}
    assert find_cycle(graph) is None
    path = tmp_path / "b.py"
    path.write_text("def later():\n    from a import x\n")
    graph["b"] = imports_of("b", path, {"a": tmp_path / "a.py", "b": path})
    assert find_cycle(graph) == ["a", "b", "a"]
