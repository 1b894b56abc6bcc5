"""The package's layers, read from the code's own imports: the core is pure (no I/O, no clock, no
Kafka, nothing from the layers above), and each layer imports only those below it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from uniqcount import REPO

PACKAGE = REPO / "uniqcount"
LAYERS = ["core", "kafka_client", "runtime", "web", "cli", "devtools"]  # each may import those before it
CORE_MAY_IMPORT = {"__future__", "array", "bisect", "collections", "dataclasses", "datetime", "enum",
                   "functools", "itertools", "math", "re", "heapq", "statistics", "struct", "typing", "msgspec", "xxhash", "datasketches", "numpy",
                   "sys.getsizeof",  # sys for its memory figure only, never its streams
                   "uniqcount_native"}  # native/: this project's C (frames.c scans bytes, no I/O)
IO_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def imports(path: Path) -> list[str]:
    """Every module a file imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = ".".join(path.relative_to(REPO).parts[:-1])
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                found.append(f"{base}.{node.module}" if node.module else base)
            elif node.module == "sys":
                found += [f"sys.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return found


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).glob("*.py"))


def test_every_module_is_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside the layers: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


@pytest.mark.parametrize("path", layer_files("core"), ids=lambda p: p.name)
def test_the_core_imports_nothing_impure(path):
    for module in imports(path):
        if module.startswith("uniqcount."):
            assert module.startswith("uniqcount.core"), f"{path.name} imports {module}"
        else:
            allowed = module if module.startswith("sys") else module.split(".")[0]
            assert allowed in CORE_MAY_IMPORT, f"{path.name} imports {module}: the core does no I/O"


@pytest.mark.parametrize("path", layer_files("core"), ids=lambda p: p.name)
def test_the_core_calls_no_io_builtins(path):
    calls = {node.func.id for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not calls & IO_CALLS, f"{path.name} calls {sorted(calls & IO_CALLS)}"


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    above = LAYERS[LAYERS.index(layer) + 1:]
    for path in layer_files(layer):
        for module in imports(path):
            parts = module.split(".")
            if parts[0] == "uniqcount" and len(parts) > 1:
                assert parts[1] not in above, f"{layer}/{path.name} imports {module}"


def test_the_check_sees_a_bad_import(tmp_path):
    """The checks read real imports: a file that imports the runtime and opens a file is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from uniqcount.runtime import config\nimport os\nopen('x')\n")
    assert "uniqcount.runtime" in imports(bad) and "os" in imports(bad)
    with pytest.raises(AssertionError):
        test_the_core_imports_nothing_impure(bad)
    with pytest.raises(AssertionError):
        test_the_core_calls_no_io_builtins(bad)
