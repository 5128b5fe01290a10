"""Imports go one way: no module of the host imports, at module level, a module that imports it back."""
import ast
from pathlib import Path

import petbench

ROOT = Path(petbench.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path) -> set[str]:
    """Module-level ``from . import``/``import petbench...`` targets (function-local imports are lazy on purpose)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("petbench"):
                found.add(target)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("petbench")}
    return found


def test_the_role_modules_import_in_one_direction():
    graph = {module_name(p): module_imports(p) for p in ROOT.glob("*.py")}
    assert "petbench.registry" not in graph["petbench.options"]
    for role in ("petbench.dataset", "petbench.method", "petbench.metric", "petbench.options"):
        assert "petbench.registry" not in graph[role], role
    assert {"petbench.dataset", "petbench.method", "petbench.metric"} <= graph["petbench.registry"]


def test_no_import_cycle_in_the_host():
    graph = {module_name(p): module_imports(p) for p in ROOT.rglob("*.py")}
    modules = set(graph)
    resolved = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}
    # a package's __init__ re-exporting its modules is not a cycle
    resolved = {m: {t for t in ts if not (t.startswith(m + ".") or m.startswith(t + "."))} for m, ts in resolved.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(resolved[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(resolved):
        if node not in state:
            visit(node)
