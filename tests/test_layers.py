"""Imports point down the stack only (STYLE.md section 1): a walk over every module's imports."""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tft_lite")

# layer -> tft_lite layers it may import (itself included). errors is everyone's.
ALLOWED = {
    "ir": {"ir"},
    "io": {"io", "ir"},
    "kernels": {"kernels"},
    "analyzers": {"analyzers", "kernels"},
    "serving": {"serving", "ir", "io", "kernels"},
    "trace": {"trace", "ir"},
    "plan": {"plan", "analyzers", "ir", "serving"},
    "local": {"local", "plan", "ir", "serving", "trace"},
    "graph": {"serving"},
    "__init__": {"local", "trace", "serving", "ir"},
    "data": {"data", "io", "ir"},
    "beam": {"beam", "analyzers", "io", "ir", "plan", "serving", "trace"},
}


def _modules():
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, PACKAGE)
                yield rel, rel.split(os.sep)[0].removesuffix(".py")


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    lazy = os.path.basename(path) == "__init__.py" and os.path.dirname(path) == PACKAGE
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif lazy and isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value.startswith("tft_lite.") and " " not in node.value:
            yield node.value  # lazy imports by name (tft_lite/__init__.py)


@pytest.mark.parametrize("rel,layer", sorted(_modules()))
def test_only_beam_imports_beam_and_nothing_imports_tensorflow(rel, layer):
    for name in _imports(os.path.join(PACKAGE, rel)):
        top = name.split(".")[0]
        assert top != "tensorflow", (rel, name)
        assert top != "apache_beam" or layer == "beam", (rel, name)


@pytest.mark.parametrize("rel,layer", sorted(m for m in _modules() if m[1] in ALLOWED))
def test_imports_point_down(rel, layer):
    for name in _imports(os.path.join(PACKAGE, rel)):
        if name.startswith("tft_lite.") and not name.startswith("tft_lite.errors"):
            target = name.split(".")[1]
            assert target in ALLOWED[layer], f"{rel} imports {name} (layer {layer})"
