"""The project's own imports run one way: no import circle in core/ or demo/, and core knows no Gradio.

The graph is read from the source with ast, imports inside functions included: a deferred import
that closes a circle is still a circle, only hidden from the interpreter.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).glob("*.py"))}


def imported(name: str) -> set[str]:
    """The project modules that module ``name`` imports, anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: "." is this package, ".." its parent
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            # "from core import engine" imports the submodule; "from core import explain" the package.
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names)
    return {module for module in found if module in MODULES and module != name}


def cycles(names: list[str], imports: Callable[[str], set[str]] = imported) -> list[list[str]]:
    """Every circle among ``names``, each found once, as the path that closes it."""
    graph = {name: imports(name) & set(names) for name in names}
    found, done = [], set()

    def walk(name: str, path: list[str]) -> None:
        if name in path:
            found.append(path[path.index(name) :] + [name])
            return
        if name in done:
            return
        for other in sorted(graph[name]):
            walk(other, [*path, name])
        done.add(name)

    for name in names:
        walk(name, [])
    return found


def package_modules(package: str) -> list[str]:
    return [name for name in MODULES if name == package or name.startswith(package + ".")]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package):
    assert not cycles(package_modules(package))


def test_core_imports_neither_demo_nor_gradio():
    for name in package_modules("core"):
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not [m for m in modules if m.split(".")[0] in ("demo", "gradio", "gradio_client")], f"{name} imports {modules}"


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(["a", "b", "c", "d"], graph.__getitem__) == [["a", "b", "c", "a"]]
