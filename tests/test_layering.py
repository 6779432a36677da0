"""The add-on's layers import in the allowed directions only (CONTRIBUTING.md, "Layers, and what each may import").

Every module under ``blender_cnn/`` is read with ``ast``, not imported: an
import inside a function counts as much as one at the top, because a lazy
import is still a dependency, and it is where layering breaks hide. Relative
imports are resolved to absolute module names; ``from package import name``
counts as importing ``package.name`` when that is a module.

The rules: ``core`` is plain numpy (no Blender, no TensorFlow, nothing of the
add-on outside ``core``); ``extract`` is the only TensorFlow code and needs
no Blender; ``nodes``, ``scene`` and ``ui`` stay below the layers that use
them; the modules of ``extract`` and of ``designer`` import each other
without cycles. A failure names the importing module, the line, the imported
module and the rule.
"""

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = "blender_cnn"
PACKAGE_FOLDER = Path(__file__).resolve().parent.parent / PACKAGE
BLENDER_MODULES = {"bpy", "bpy_extras", "bmesh", "mathutils", "nodeitems_utils", "gpu", "blf"}
TENSORFLOW_MODULES = {"tensorflow", "keras", "tf_keras"}
ACYCLIC_PACKAGES = ("extract", "designer")


def module_names(folder=PACKAGE_FOLDER):
    """``{dotted module name: path}`` of every module of the add-on; a package is named by its folder."""
    names = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(module, source, is_package, known_modules):
    """``[(imported module, line)]`` of every import statement in ``source``, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule if submodule in known_modules else base, node.lineno))
    return found


def _from_base(module, is_package, level, name):
    """The absolute module a ``from ... import`` reads from (``level`` dots, then ``name``)."""
    if level == 0:
        return name
    package = module.split(".") if is_package else module.split(".")[:-1]
    package = package[: len(package) - (level - 1)]
    return ".".join(package + ([name] if name else []))


@functools.cache
def import_graph():
    """``((importer, imported, line), ...)`` of every import in the add-on."""
    names = module_names()
    return tuple(
        (module, imported, line)
        for module, path in names.items()
        for imported, line in imports_of(module, path.read_text(encoding="utf-8"), path.name == "__init__.py", names)
    )


def layer(module):
    """The add-on layer (``core``, ``extract``, ...) a module belongs to; None outside the add-on or at its root."""
    parts = module.split(".")
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else None


def top(module):
    return module.split(".")[0]


def assert_no_import_breaks(rule, is_broken):
    """Fail naming importer, imported module and ``rule`` for every import where ``is_broken(importer, imported)``."""
    found = [
        f"{importer} (line {line}) imports {imported}: {rule}"
        for importer, imported, line in import_graph()
        if is_broken(importer, imported)
    ]
    assert not found, "\n" + "\n".join(found)


def cycles_within(package, edges):
    """The import cycles among the modules of ``blender_cnn.<package>``, each as its edges ``[(importer, imported,
    line)]``: the shortest cycle through each module on one, every set of modules once."""
    prefix = f"{PACKAGE}.{package}"

    def inside(module):
        return module == prefix or module.startswith(prefix + ".")

    graph = {}
    for importer, imported, line in edges:
        if inside(importer) and inside(imported) and importer != imported:
            graph.setdefault(importer, {}).setdefault(imported, line)
    found, reported = [], set()
    for start in sorted(graph):
        cycle = _shortest_cycle(start, graph)
        members = frozenset(importer for importer, _imported, _line in cycle or ())
        if cycle and members not in reported:
            reported.add(members)
            found.append(cycle)
    return found


def _shortest_cycle(start, graph):
    """The edges of a shortest path of imports from ``start`` back to itself, or None (breadth first)."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for target in sorted(graph.get(path[-1], {})):
            if target == start:
                return [(a, b, graph[a][b]) for a, b in zip(path, path[1:] + [start])]
            if target not in seen:
                seen.add(target)
                paths.append(path + [target])
    return None


# ---------------------------------------------------------------- the reader itself


def test_imports_are_read_everywhere_and_resolved():
    source = (
        "import bpy.props\n"
        "from . import design\n"
        "from .errors import BlenderCNNError\n"
        "def later():\n"
        "    from ..extract.keras_models import build_model\n"
        "    class Inner:\n"
        "        import tensorflow as tf\n"
    )
    known = {"blender_cnn.core.design", "blender_cnn.extract.keras_models"}
    assert imports_of("blender_cnn.core.presets", source, False, known) == [
        ("bpy.props", 1),
        ("blender_cnn.core.design", 2),
        ("blender_cnn.core.errors", 3),
        ("blender_cnn.extract.keras_models", 5),
        ("tensorflow", 7),
    ]
    assert imports_of("blender_cnn.designer", "from . import tree\n", True, {"blender_cnn.designer.tree"}) == [
        ("blender_cnn.designer.tree", 1)
    ]


def test_the_reader_finds_every_layer():
    layers = {layer(module) for module in module_names()}
    assert {"core", "extract", "nodes", "scene", "ui", "designer"} <= layers


def test_cycles_are_found_and_named():
    a, b, c = "blender_cnn.extract.a", "blender_cnn.extract.b", "blender_cnn.extract.c"
    edges = [(a, b, 3), (b, c, 4), (c, a, 5), (c, "blender_cnn.core.x", 6), (b, a, 7)]
    assert cycles_within("extract", edges) == [[(a, b, 3), (b, a, 7)], [(c, a, 5), (a, b, 3), (b, c, 4)]]
    assert cycles_within("extract", edges[:2]) == []
    assert cycles_within("designer", edges) == []


# ---------------------------------------------------------------- the rules


def add_on_layer(module):
    """The layer of a module of the add-on; None for any other module."""
    return layer(module) if top(module) == PACKAGE else None


def test_core_is_plain_numpy():
    def is_broken(importer, imported):
        return layer(importer) == "core" and (
            top(imported) in BLENDER_MODULES | TENSORFLOW_MODULES
            or top(imported) == PACKAGE
            and layer(imported) != "core"
        )

    assert_no_import_breaks(
        "core imports no Blender module (bpy, mathutils, ...), no TensorFlow/Keras and "
        "nothing of blender_cnn outside core",
        is_broken,
    )


def test_only_extract_imports_tensorflow():
    def is_broken(importer, imported):
        return top(imported) in TENSORFLOW_MODULES and layer(importer) != "extract"

    assert_no_import_breaks("only blender_cnn.extract imports tensorflow, keras or tf_keras", is_broken)


def test_extract_runs_without_blender():
    def is_broken(importer, imported):
        return layer(importer) == "extract" and (
            top(imported) in BLENDER_MODULES or add_on_layer(imported) in ("nodes", "scene", "ui", "designer")
        )

    assert_no_import_breaks(
        "extract imports no Blender module and nothing of nodes, scene, ui or designer "
        "(its CLIs run in a Python without Blender)",
        is_broken,
    )


def test_nodes_stay_below_the_scene():
    def is_broken(importer, imported):
        return layer(importer) == "nodes" and add_on_layer(imported) in ("scene", "ui", "designer", "extract")

    assert_no_import_breaks("nodes imports nothing of scene, ui, designer or extract", is_broken)


def test_scene_stays_below_the_ui_and_the_designer():
    def is_broken(importer, imported):
        return layer(importer) == "scene" and add_on_layer(imported) in ("ui", "designer")

    assert_no_import_breaks("scene imports nothing of ui or designer", is_broken)


def test_ui_stays_below_the_designer():
    def is_broken(importer, imported):
        return layer(importer) == "ui" and add_on_layer(imported) == "designer"

    assert_no_import_breaks(
        "ui imports nothing of designer (the designer builds on the ui's jobs and preferences)", is_broken
    )


@pytest.mark.parametrize("package", ACYCLIC_PACKAGES)
def test_modules_of_a_package_import_each_other_without_cycles(package):
    rule = f"the modules of blender_cnn.{package} import each other in one direction only, never in a cycle"
    found = [
        "; ".join(f"{importer} (line {line}) imports {imported}" for importer, imported, line in cycle) + f": {rule}"
        for cycle in cycles_within(package, import_graph())
    ]
    assert not found, "\n" + "\n".join(found)
