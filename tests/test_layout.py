"""The package's layout: module and function sizes, import circles, imports up the layers.

Read from the source with ``ast`` by ``tools/import_graph.py`` (no module of the package is
imported, so this stays fast and TensorFlow-free). The rules, and how each is measured (the
tool's docstring has the full definitions):

- No module over 800 lines (physical lines of the file).
- No function or method over 80 lines of code: the lines of its body after its docstring that
  hold any token other than a comment; blank and comment-only lines do not count, every line of
  a multi-line expression or string does, and a nested function counts toward its holder too.
- No import circle among the package's modules: the strongly connected components of imports
  at module level *and* inside functions (a lazy import that closes a circle only moves the
  failure to the first call). Imports under ``if TYPE_CHECKING:`` never run and make no circle.
- No import from a lower layer up (every kind of import, ``TYPE_CHECKING`` and lazy ones
  included: a lazy import keeps TensorFlow out of start-up, it does not license a dependency on
  a higher layer). The layers, lowest first, are ``LAYERS`` in the tool: leaves (errors,
  version, constants) < building blocks (color, sar, settings, nets) < raster io (io) < models
  (bundle, ONNX, losses, metrics) < training data (data) < inference < applications (training,
  evaluation, reports, batch, xarray_api) < front ends (api, cluster) < entry points
  (``__init__``, cli). Every module must be in a layer.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = REPO / "sar_colorizer"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "tools" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


graph = _tool()


@pytest.fixture(scope="module")
def modules() -> dict:
    return graph.load_package(PACKAGE_ROOT)


def test_no_module_over_800_lines(modules):
    big = {m.short: m.lines for m in modules.values() if m.lines > graph.MAX_MODULE_LINES}
    assert graph.MAX_MODULE_LINES == 800
    assert not big, f"modules over 800 lines (split them by job): {big}"


def test_no_function_over_80_lines_of_code(modules):
    assert graph.MAX_FUNCTION_LINES == 80
    long = [
        f"{m.short}:{line} {name} ({count} lines)"
        for m in modules.values()
        for name, line, count in graph.function_lengths(m)
        if count > graph.MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over 80 lines of code: {long}"


def test_no_import_circles(modules):
    found = graph.circles(modules)
    assert not found, f"import circles: {[' <-> '.join(c) for c in found]}"


def test_every_module_has_a_layer(modules):
    for name in modules:
        graph.layer_of(name)  # raises, naming the module, for one in no layer


def test_no_import_from_a_lower_layer_up(modules):
    upward = [
        f"{e.source}:{e.line} -> {e.target} ({e.kind})" for e in graph.upward_imports(modules)
    ]
    assert not upward, f"imports up the layers: {upward}"


# The measures themselves, on small made-up packages: each rule catches what it is for.


def _package(tmp_path: Path, files: dict[str, str]) -> dict:
    root = tmp_path / "sar_colorizer"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return graph.load_package(root)


def test_a_lazy_import_closes_a_circle_a_type_checking_one_does_not(tmp_path):
    lazy = _package(tmp_path / "a", {
        "batch.py": "def run():\n    from sar_colorizer import cluster\n",
        "cluster.py": "from sar_colorizer.batch import run\n",
    })
    assert graph.circles(lazy) == [["sar_colorizer.batch", "sar_colorizer.cluster"]]
    typing_only = _package(tmp_path / "b", {
        "batch.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from sar_colorizer import cluster\n",
        "cluster.py": "from sar_colorizer.batch import run\n",
    })
    assert graph.circles(typing_only) == []


def test_upward_imports_of_every_kind_are_found(tmp_path):
    modules = _package(tmp_path, {
        "errors.py": "from sar_colorizer import __version__\n",  # leaf -> package __init__
        "color/__init__.py": "",
        "color/lab.py": "def f():\n    from sar_colorizer.inference import core\n",
        "inference/__init__.py": "",
        "inference/core.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from ..api import Model\nfrom ..color import lab\n",
        "api.py": "from sar_colorizer.inference.core import x\n",
    })
    found = {(e.source, e.target, e.kind) for e in graph.upward_imports(modules)}
    assert found == {
        ("sar_colorizer.errors", "sar_colorizer", "module"),
        ("sar_colorizer.color.lab", "sar_colorizer.inference.core", "lazy"),
        ("sar_colorizer.inference.core", "sar_colorizer.api", "typing"),
    }


def test_lines_of_code_leave_out_the_docstring_blanks_and_comments(tmp_path):
    body = "\n".join(f"    x{i} = {i}  # counted" for i in range(80))
    text = (
        'def short():\n    """A docstring\n\n    of four lines.\n    """\n'
        f"{body}\n\n    # a comment\n\n"
        "def long():\n"
        f"{body}\n    return (\n        x0\n    )\n"
    )
    modules = _package(tmp_path, {"m.py": text})
    lengths = {name: count for name, _, count in graph.function_lengths(modules["sar_colorizer.m"])}
    assert lengths == {"short": 80, "long": 83}
