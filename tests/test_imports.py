"""The package's modules import each other without cycles, and none shadows the standard library."""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pyfaiss_dpq"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Modules of the package that `name` imports, at module level or inside functions."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pyfaiss_dpq"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pyfaiss_dpq"))
    # Importing a package's own __init__ (e.g. `from . import x`) is not an edge back.
    return {m for m in found if m in MODULES and not name.startswith(m + ".") and m != name}


def find_cycle():
    graph = {m: imports_of(m) for m in MODULES}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                cycle = visit(n, stack + [n])
                if cycle:
                    return cycle
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m, [m])
            if cycle:
                return cycle
    return None


def test_no_import_cycle_between_modules():
    assert find_cycle() is None, " -> ".join(find_cycle())


def test_the_checker_finds_a_cycle(monkeypatch, tmp_path):
    # The checker itself: two modules that import each other are found.
    pkg = tmp_path / "pyfaiss_dpq"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {module_name(p): p for p in pkg.rglob("*.py")})
    assert find_cycle() in (["pyfaiss_dpq.a", "pyfaiss_dpq.b", "pyfaiss_dpq.a"],
                            ["pyfaiss_dpq.b", "pyfaiss_dpq.a", "pyfaiss_dpq.b"])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_shadows_the_standard_library(name):
    assert name.rpartition(".")[2] not in sys.stdlib_module_names
