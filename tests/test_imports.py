"""The package's modules import each other without cycles, and none shadows the standard library;
the C++ core's modules (a file's .h and .cpp, or a folder such as scan/) include each other without cycles."""

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pyfaiss_dpq"
CSRC = Path(__file__).resolve().parents[1] / "csrc"


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


def find_cycle(graph=None):
    graph = graph if graph is not None else {m: imports_of(m) for m in MODULES}
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


def csrc_module(path: Path) -> str:
    """A top-level file's stem (x.h and x.cpp are one module), or its folder below csrc/."""
    rel = path.relative_to(CSRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def csrc_graph() -> dict:
    """Module -> the other modules whose headers it includes (quoted includes only)."""
    graph = {}
    for path in sorted(CSRC.rglob("*")):
        if path.suffix not in (".h", ".cpp"):
            continue
        me = csrc_module(path)
        graph.setdefault(me, set())
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', path.read_text(), re.M):
            target = (path.parent / inc).resolve()
            if target.is_file() and CSRC in target.parents:
                other = csrc_module(target)
                if other != me:
                    graph[me].add(other)
    return graph


def test_no_include_cycle_between_csrc_modules():
    graph = csrc_graph()
    assert {"scan", "index_dpq", "codec"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_include_checker_finds_a_cycle(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CSRC", tmp_path)
    (tmp_path / "scan").mkdir()
    (tmp_path / "lut.h").write_text("#pragma once\n")
    (tmp_path / "lut.cpp").write_text('#include "lut.h"\n#include "scan/dispatch.h"\n')
    (tmp_path / "scan" / "dispatch.h").write_text("#pragma once\n")
    (tmp_path / "scan" / "search.cpp").write_text('#include "../lut.h"\n')
    assert find_cycle(csrc_graph()) in (["lut", "scan", "lut"], ["scan", "lut", "scan"])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_shadows_the_standard_library(name):
    assert name.rpartition(".")[2] not in sys.stdlib_module_names
