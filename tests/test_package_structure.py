"""The package's shape: imports point one way (no cycle) and no private name crosses a module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "speechft"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """(imported speechft module, names taken from it, line) for every import in the file, at
    any depth (lazy imports inside functions count: they run too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(name, path.name == "__init__.py", node)
            if not target.startswith("speechft"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:  # `from . import module`
                    out.append((sub, [], node.lineno))
                else:
                    out.append((target, [alias.name], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("speechft")]
    return out


def test_no_private_name_is_imported_from_another_module():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        for target, names, line in _imports(name, path, modules):
            offenders += [f"{path.relative_to(PACKAGE.parent)}:{line} imports {n} from {target}"
                          for n in names if n.startswith("_") and not n.startswith("__")]
    assert offenders == []


def test_imports_have_no_cycle():
    modules = _modules()
    # The top-level package and package __init__ files that only re-export are left out: an
    # edge "submodule -> its own package" is how Python imports work, not a design cycle.
    graph = {name: {t for t, _, _ in _imports(name, path, modules) if t in modules and t != "speechft"}
             for name, path in modules.items()}
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checks_see_imports(tmp_path):
    """The walk finds lazy imports and private names (so the two tests above can fail)."""
    modules = _modules()
    found = _imports("speechft.export", PACKAGE / "export.py", modules)
    assert any(t == "speechft.models.ct2.convert" for t, _, _ in found)
    code = "def f():\n    from .io_utils import _temp_name\n"
    fake = tmp_path / "speechft" / "fake.py"
    fake.parent.mkdir()
    fake.write_text(code)
    node = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ImportFrom))
    assert _resolve("speechft.fake", False, node) == "speechft.io_utils"


def test_test_modules_have_unique_basenames():
    # tests/ has no __init__.py files, so pytest imports every test module by its basename:
    # two files named alike in different folders stop collection ("import file mismatch").
    tests = Path(__file__).resolve().parent
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(tests.rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(tests)} and {path.relative_to(tests)}")
        seen.setdefault(path.name, path)
    assert not clashes, "rename one of each pair: " + "; ".join(clashes)
