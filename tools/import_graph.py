#!/usr/bin/env python3
"""The package's layout, read from its source with ``ast``: imports, layers, circles, sizes.

Nothing is imported or run: each module of the package is parsed, so the report works on any
checkout (an older one too) and never loads TensorFlow::

    python tools/import_graph.py                          # this checkout's sar_colorizer/
    python tools/import_graph.py --root /tmp/old/sar_colorizer
    python tools/import_graph.py --modules                 # one line per module: its job, its lines

``tests/test_layout.py`` holds the package to the rules this module measures. The definitions:

Imports. Every ``import`` and ``from ... import`` of a package module, resolved to the module it
names (``from sar_colorizer.io import raster`` is an edge to ``sar_colorizer.io.raster``;
``from sar_colorizer.io.raster import read`` an edge to ``sar_colorizer.io.raster``; a name
that is no module, such as ``from sar_colorizer import __version__``, an edge to the package's
``__init__``). Python also runs the ``__init__`` of every package on the way; those implied
edges are left out, as they run before the importer's own body and make no cycle of its code.
Each edge has a kind:

- ``module``: at module level (a class body or a ``try`` included): it runs on import;
- ``lazy``: inside a function: it runs on the first call (how the package keeps TensorFlow and
  heavy modules out of start-up); legitimate, but it must not point up the layers either;
- ``typing``: under ``if TYPE_CHECKING:``: never runs, read only by type checkers.

Circles are the strongly connected components of the ``module`` and ``lazy`` edges: a lazy
import that closes a circle is still a circle in the design, it only moves the failure to the
first call. ``typing`` edges make no circle (they never run) but, like every edge, count for
the layers.

Layers. :data:`LAYERS` puts every module in a numbered layer, from the leaves (errors, version,
constants) up to the command line. A module may import modules of its own layer or below; an
edge to a higher layer is an upward import. Within one layer, imports may go either way as long
as they make no circle.

Functions. The lines of code of a function: the lines of its body after its docstring that hold
any token other than a comment (blank lines and comment-only lines do not count; every line of
a multi-line expression or string does; nested functions and classes count toward the function
that holds them, and are measured on their own as well). The ``def`` line, decorators and the
signature are not the body.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "sar_colorizer"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80

# The layers, lowest first. A module belongs to the first layer with a pattern that matches it:
# its dotted name without the package prefix, or a subpackage followed by ".*" (the subpackage's
# __init__ is the name itself). Layer numbers grow upwards; a module may import only its own
# layer and those below.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Imports nothing of the package's: errors, version, constants, process-level helpers.
    ("leaves", ("errors", "version", "color.constants", "_tf", "signals", "progress")),
    # Pure building blocks: colour spaces, SAR radiometry and filters, settings, networks' layers.
    ("building blocks", ("color", "color.*", "sar", "sar.*", "settings", "nets", "nets.*")),
    # Rasters on disk: reading, masks, tiling, atomic publish, output policy, writers.
    ("raster io", ("io", "io.*")),
    # Models: the bundle on disk, the network runtimes, losses and metrics.
    (
        "models",
        (
            "bundle",
            "onnx_graph",
            "onnx_network",
            "export",
            "checkpoints",
            "keras_metrics",
            "losses",
            "metrics",
            "baselines",
            "confidence",
            "novelty",
            "consistency",
            "visual_quality",
        ),
    ),
    # Training data: pairs, chips, records, the tf.data pipeline.
    ("training data", ("data", "data.*")),
    # Colouring scenes: the recipe and its schedulers over arrays and rasters.
    ("inference", ("inference", "inference.*")),
    # What uses inference: training, evaluation, reports, batches of files, dask/xarray.
    (
        "applications",
        (
            "train_config",
            "train_bundle",
            "training",
            "report",
            "report_html",
            "evaluation",
            "batch",
            "xarray_api",
        ),
    ),
    # Ways of running the applications: the Python API and the cluster's executor.
    ("front ends", ("api", "cluster")),
    # The package's face: the lazy public API, the command line.
    ("entry points", ("__init__", "cli", "cli.*", "__main__")),
)


@dataclass(frozen=True)
class Edge:
    """One import of a package module by another."""

    source: str
    target: str
    kind: str  # "module", "lazy" or "typing"
    line: int


@dataclass
class Module:
    """One parsed module of the package."""

    name: str  # dotted, e.g. "sar_colorizer.io.raster"; a package's __init__ is the package
    path: Path
    lines: int
    tree: ast.Module
    source: str
    edges: list[Edge] = field(default_factory=list)

    @property
    def short(self) -> str:
        """The name without the package prefix ("__init__" for the package itself)."""
        if self.name == PACKAGE:
            return "__init__"
        return self.name[len(PACKAGE) + 1 :]

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def summary(self) -> str:
        """The first line of the module's docstring: its job."""
        doc = ast.get_docstring(self.tree) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


def module_name(root: Path, path: Path) -> str:
    """The dotted name of ``path`` in the package whose folder is ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def load_package(root: Path) -> dict[str, Module]:
    """Every module under ``root`` (the package folder), parsed, with its package imports."""
    modules: dict[str, Module] = {}
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = module_name(root, path)
        modules[name] = Module(
            name=name,
            path=path,
            lines=len(source.splitlines()),
            tree=ast.parse(source, filename=str(path)),
            source=source,
        )
    for module in modules.values():
        module.edges = list(_edges(module, modules))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import below ``node`` with its kind (see the module docstring)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, kind
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _imports(child, "typing" if kind == "typing" else "lazy")
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                if isinstance(statement, (ast.Import, ast.ImportFrom)):
                    yield statement, "typing"
                else:
                    yield from _imports(statement, "typing")
            for statement in child.orelse:
                if isinstance(statement, (ast.Import, ast.ImportFrom)):
                    yield statement, kind
                else:
                    yield from _imports(statement, kind)
        else:
            yield from _imports(child, kind)


def _resolve(module: Module, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The package modules that an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return {_longest_known(name, known) for name in names if _in_package(name)} - {""}
    base = node.module or ""
    if node.level:
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    if not _in_package(base):
        return set()
    targets = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        targets.add(submodule if submodule in known else _longest_known(base, known))
    return targets - {""}


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _longest_known(name: str, known: set[str]) -> str:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def _edges(module: Module, modules: dict[str, Module]) -> Iterator[Edge]:
    known = set(modules)
    for node, kind in _imports(module.tree, "module"):
        for target in sorted(_resolve(module, node, known)):
            if target != module.name:
                yield Edge(module.name, target, kind, node.lineno)


def layer_of(name: str) -> int:
    """The index in :data:`LAYERS` of a module (ValueError for a module no layer names)."""
    short = "__init__" if name == PACKAGE else name[len(PACKAGE) + 1 :]
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if short == pattern or (
                pattern.endswith(".*") and short.startswith(pattern[:-1])
            ):
                return index
    raise ValueError(f"{name} is in no layer of LAYERS (tools/import_graph.py): add it to one")


def circles(modules: dict[str, Module], kinds: Iterable[str] = ("module", "lazy")) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    wanted = set(kinds)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module in modules.values():
        for edge in module.edges:
            if edge.kind in wanted:
                graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep package cannot hit the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(found)


def upward_imports(modules: dict[str, Module]) -> list[Edge]:
    """The edges from a module to one of a higher layer, of every kind."""
    return [
        edge
        for module in modules.values()
        for edge in module.edges
        if layer_of(edge.target) > layer_of(edge.source)
    ]


def code_lines(source: str) -> set[int]:
    """The line numbers that hold a token other than a comment (1-based)."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def function_lengths(module: Module) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines of code) for every function and method of a module."""
    lines = code_lines(module.source)
    found: list[tuple[str, int, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                body = child.body
                if ast.get_docstring(child) is not None:
                    body = body[1:]
                if body:
                    start, end = body[0].lineno, child.end_lineno or body[-1].lineno
                    count = sum(1 for line in range(start, end + 1) if line in lines)
                else:
                    count = 0
                found.append((name, child.lineno, count))
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(module.tree, "")
    return found


def report(root: Path, list_modules: bool = False) -> str:
    """The layout report of the package under ``root``, as printed by the command."""
    modules = load_package(root)
    out: list[str] = []
    total = sum(module.lines for module in modules.values())
    out.append(f"{root}: {len(modules)} modules, {total} lines")
    if list_modules:
        for module in sorted(modules.values(), key=lambda m: m.name):
            out.append(f"  {module.short:<28} {module.lines:>5}  {module.summary}")
    big = [m for m in modules.values() if m.lines > MAX_MODULE_LINES]
    out.append(f"modules over {MAX_MODULE_LINES} lines: {len(big)}")
    out.extend(f"  {m.short}: {m.lines}" for m in sorted(big, key=lambda m: -m.lines))
    long_functions = [
        (module.short, name, line, count)
        for module in modules.values()
        for name, line, count in function_lengths(module)
        if count > MAX_FUNCTION_LINES
    ]
    out.append(f"functions over {MAX_FUNCTION_LINES} lines of code: {len(long_functions)}")
    for short, name, line, count in sorted(long_functions, key=lambda row: -row[3]):
        out.append(f"  {short}:{line} {name}: {count}")
    found = circles(modules)
    out.append(f"import circles (module and lazy imports): {len(found)}")
    for component in found:
        members = set(component)
        inside = sorted(
            f"{edge.source[len(PACKAGE) + 1:] or '__init__'} -> "
            f"{edge.target[len(PACKAGE) + 1:] or '__init__'} ({edge.kind})"
            for name in component
            for edge in modules[name].edges
            if edge.target in members and edge.kind != "typing"
        )
        out.append(f"  {' <-> '.join(modules[name].short for name in component)}")
        out.extend(f"      {edge}" for edge in inside)
    try:
        upward = upward_imports(modules)
    except ValueError as error:
        out.append(f"upward imports: not measured ({error})")
    else:
        out.append(f"upward imports (every kind): {len(upward)}")
        for edge in sorted(upward, key=lambda e: (e.source, e.target)):
            source, target = modules[edge.source].short, modules[edge.target].short
            out.append(
                f"  {source}:{edge.line} -> {target} ({edge.kind}; layer "
                f"{LAYERS[layer_of(edge.source)][0]} -> {LAYERS[layer_of(edge.target)][0]})"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent / PACKAGE,
        help="the package folder (default: this checkout's sar_colorizer/)",
    )
    parser.add_argument("--modules", action="store_true", help="one line per module")
    args = parser.parse_args(argv)
    print(report(args.root, list_modules=args.modules))
    print(f"command: python tools/import_graph.py --root {args.root}"
          + (" --modules" if args.modules else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
