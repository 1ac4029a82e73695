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


# The colour options are spelled once: their defaults live in ColourOptions only.

# The modules through which a user reaches the colour recipe (predict, eval, the Python API,
# xarray, batches): none re-spells a default of ColourOptions. Lower building blocks (the tone
# table, scene statistics, the colour converter) take explicit values from a resolved Recipe.
OPTION_SURFACES = (
    "api", "xarray_api", "batch", "cluster", "evaluation", "inference.array", "inference.raster",
    "inference.plan", "inference.stream", "inference.core", "cli.*",
)
# (module, function, parameter): why a literal default there is not an option's default.
NOT_OPTION_DEFAULTS = {
    ("inference.array", "colorize_array", "tile_size"): "'model' chooses tiled inference (at the "
    "options' tile size) over one whole-image pass; it is no tile size",
}


def _colour_option_names(modules: dict) -> set[str]:
    import ast

    options = modules["sar_colorizer.inference.options"].tree
    (colour_options,) = [
        node for node in options.body
        if isinstance(node, ast.ClassDef) and node.name == "ColourOptions"
    ]
    names = {
        node.target.id for node in colour_options.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    return names | {"batch_size"}  # the old name of tiles_per_call, still accepted


def _literal_option_defaults(module, names: set[str]) -> list[str]:
    """Parameters, dataclass fields and click options named after a colour option whose default
    is a literal other than None."""
    import ast

    def literal(node: ast.expr | None) -> bool:
        return isinstance(node, ast.Constant) and node.value is not None

    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults,
                             strict=True))
            pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
            for arg, default in pairs:
                if (arg.arg in names and literal(default)
                        and (module.short, node.name, arg.arg) not in NOT_OPTION_DEFAULTS):
                    found.append(f"{module.short}:{node.lineno} {node.name}({arg.arg}=...)")
        elif isinstance(node, ast.ClassDef):
            for field in node.body:
                if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                        and field.target.id in names and literal(field.value)):
                    found.append(f"{module.short}:{field.lineno} {node.name}.{field.target.id}")
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("option"):
            declared = [a.value for a in node.args
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            destination = [d for d in declared if not d.startswith("-")]
            flags = [d.split("/")[0].lstrip("-").replace("-", "_")
                     for d in declared if d.startswith("--")]
            name = (destination or flags or [None])[0]
            for keyword in node.keywords:
                if keyword.arg == "default" and name in names and literal(keyword.value):
                    found.append(f"{module.short}:{node.lineno} option {declared[0]}")
    return found


def test_colour_options_are_spelled_once(modules):
    """No signature, dataclass field or command-line option on the way to the colour recipe
    re-spells a default of ColourOptions (they take ``ColourOptions`` or ``**settings``, or
    read the default from it): a default changed there changes it everywhere."""
    names = _colour_option_names(modules)
    assert {"tone", "input_scale", "chroma_limit", "display_filter"} <= names
    surfaces = [
        m for m in modules.values()
        if any(m.short == s or (s.endswith(".*") and m.short.startswith(s[:-1]))
               for s in OPTION_SURFACES)
    ]
    assert len(surfaces) > 10
    respelled = [line for m in surfaces for line in _literal_option_defaults(m, names)]
    assert not respelled, f"colour option defaults spelled outside ColourOptions: {respelled}"
