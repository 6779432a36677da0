"""A small helper for writing Geometry Nodes trees as Python.

Node groups are code: each group is a function that builds it with this
helper, and ``ensure_group`` keeps one copy per name at the version of the
code that builds it (a hash of that code), rebuilt in place when the code
changes so every modifier using it updates.

``TreeBuilder`` names the operations a group is written in (``b.multiply(a,
c)``, ``b.int_add``, ``b.compare(a, ">=", c)``, ``b.store(geometry, "cell_pitch",
value)``...), takes values or sockets for every input, and reads and stores
attributes at the type ``core/attributes.py`` declares for their name. Nodes
made inside ``with b.frame("..."):`` go in that frame, and ``lay_out`` places
them all at the end (``nodes/layout.py``). Nodes made inside ``with b.part("..."):``
go in a group of their own (``TreeBuilder.part``), which keeps a big tree cheap to build.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import cast

import bpy

from ..core import attributes
from . import layout, prebuilt

VERSION_PROPERTY = "blender_cnn_version"
# Set on the group a ``TreeBuilder.part`` builds: it belongs to the tree that uses it (``tree_nodes``).
PART_PROPERTY = "blender_cnn_part"
# False builds a part's nodes in the tree itself, in a frame, as before parts: tests and benchmarks compare the two.
separate_parts = True
# Socket types of a node's output, as the data type of the nodes that take it (Sample Index, Capture...).
DATA_TYPES = {"VALUE": "FLOAT", "INT": "INT", "BOOLEAN": "BOOLEAN", "VECTOR": "FLOAT_VECTOR", "RGBA": "FLOAT_COLOR"}
# Compare operations by the symbol a reader knows them by.
COMPARISONS = {
    "==": "EQUAL",
    "!=": "NOT_EQUAL",
    "<": "LESS_THAN",
    "<=": "LESS_EQUAL",
    ">": "GREATER_THAN",
    ">=": "GREATER_EQUAL",
}

# What a node's input can be given: a socket to link from, or a value for the socket's default (a number, a
# vector or color, a string or menu item, an object or material).
type Input = bpy.types.NodeSocket | float | str | Sequence[float] | bpy.types.ID
# A node's inputs by name, identifier or index (``find_socket``).
type Inputs = Mapping[int, Input] | Mapping[str, Input]
# A value as nested tuples of numbers and strings (``_plain``).
type Plain = bool | int | float | str | tuple[Plain | None, ...]

SOCKET_TYPES = {
    "GEOMETRY": "NodeSocketGeometry",
    "FLOAT": "NodeSocketFloat",
    "INT": "NodeSocketInt",
    "BOOLEAN": "NodeSocketBool",
    "VECTOR": "NodeSocketVector",
    "COLOR": "NodeSocketColor",
    "STRING": "NodeSocketString",
    "MATERIAL": "NodeSocketMaterial",
    "OBJECT": "NodeSocketObject",
    "MENU": "NodeSocketMenu",
}
# A group's socket for a value a node socket of this ``type`` carries, for the sockets a part passes in and out.
INTERFACE_TYPES = {
    "VALUE": "NodeSocketFloat",
    "INT": "NodeSocketInt",
    "BOOLEAN": "NodeSocketBool",
    "VECTOR": "NodeSocketVector",
    "RGBA": "NodeSocketColor",
    "STRING": "NodeSocketString",
    "ROTATION": "NodeSocketRotation",
    "MATRIX": "NodeSocketMatrix",
    "MENU": "NodeSocketMenu",
    "GEOMETRY": "NodeSocketGeometry",
    "OBJECT": "NodeSocketObject",
    "COLLECTION": "NodeSocketCollection",
    "IMAGE": "NodeSocketImage",
    "MATERIAL": "NodeSocketMaterial",
}


def ensure_group(name: str, build: types.FunctionType) -> bpy.types.GeometryNodeTree:
    """Return the node group ``name`` as ``build`` makes it, building it if it is missing or was built by other code.

    ``build(tree_builder)`` fills an empty tree. The group's version is
    ``code_version(build)``, stored on the group, so a file saved with an
    older add-on gets its groups rebuilt when the code that builds them
    changed. Rebuilding in place (rather than making a new group) keeps every
    modifier and group node that points to it. A file with none of the shared
    groups first takes them all from the prebuilt asset (``nodes/prebuilt.py``),
    and each is then checked against its code the same way.
    """
    version = code_version(build)
    tree = bpy.data.node_groups.get(name)
    if tree is None and not any(group.get(VERSION_PROPERTY) for group in bpy.data.node_groups):
        if prebuilt.append_prebuilt_groups():
            tree = bpy.data.node_groups.get(name)
    if tree is not None and tree.bl_idname == "GeometryNodeTree" and tree.get(VERSION_PROPERTY) == version:
        assert isinstance(tree, bpy.types.GeometryNodeTree)  # its bl_idname says so; the stubs say NodeTree
        return tree
    if tree is None or tree.bl_idname != "GeometryNodeTree":
        tree = bpy.data.node_groups.new(name, "GeometryNodeTree")
    assert isinstance(tree, bpy.types.GeometryNodeTree) and tree.interface is not None
    tree.nodes.clear()
    tree.interface.clear()
    builder = TreeBuilder(tree)
    build(builder)
    builder.lay_out()
    tree[VERSION_PROPERTY] = version
    return tree


# Group versions ----------------------------------------------------------

_PACKAGE = __name__.split(".")[0]
# Modules whose functions the hash does not follow: this builder, its layout and the attribute schema count as
# whole sources, and ``prebuilt`` says where a group comes from, not what it holds. Following them would hash
# their run-time state too (the version cache, whether the asset is used), so that a group's version would
# depend on what the process did before: a group saved by one process was rebuilt by the next.
_WHOLE_OR_UNRELATED = {__name__, layout.__name__, attributes.__name__, prebuilt.__name__}
_versions: dict[tuple[types.CodeType, object], str] = {}
_sources: dict[object, str] = {}


def code_version(build: types.FunctionType) -> str:
    """A hash of the code that builds a group: 16 hex digits.

    It covers ``build``'s source, the values its closure holds, and, followed
    through the names its code reads, the source of every function and class
    of the add-on it reaches and the value of every plain constant (numbers,
    strings, tuples...), plus the source of this builder, its layout and the
    attribute schema. So any change to what a group is built from, down to a
    helper or a color, gives the group a new version, and nothing else does.
    """
    key = (build.__code__, _closure_key(build))
    version = _versions.get(key)
    if version is None:
        digest = hashlib.sha256()
        for module in (sys.modules[__name__], layout, attributes):
            digest.update(_source(module).encode())
        _hash_function(build, digest, set())
        version = _versions[key] = digest.hexdigest()[:16]
    return version


def _closure_key(function: types.FunctionType) -> tuple[tuple[Plain | None, ...], Plain | None, Plain | None]:
    """What a function holds besides its code: the values it closes over and its defaults."""
    return (
        tuple(_plain(cell.cell_contents) for cell in function.__closure__ or ()),
        _plain(function.__defaults__),
        _plain(function.__kwdefaults__),
    )


def _source(thing: types.ModuleType | type | types.FunctionType) -> str:
    """What stands for ``thing``'s source in a version: a function's compiled code, a module's or a class's text.

    The code, not the lines: finding each function's lines in its file took 50 ms of a first network's build, and
    a comment or a moved line changes no group.
    """
    key = getattr(thing, "__code__", thing)
    if key not in _sources:
        code = getattr(thing, "__code__", None)
        if code is not None:
            _sources[key] = _code_text(code)
        else:
            try:
                _sources[key] = inspect.getsource(thing)
            except (OSError, TypeError):  # no source file
                _sources[key] = repr(thing)
    return _sources[key]


def _code_text(code: types.CodeType) -> str:
    """``code``'s instructions, names and constants (nested functions' too), without its file or line numbers."""
    constants = tuple(
        _code_text(constant) if isinstance(constant, types.CodeType) else repr(_plain(constant) or constant)
        for constant in code.co_consts
    )
    return repr(
        (code.co_code, code.co_names, code.co_varnames, code.co_freevars, code.co_argcount, code.co_kwonlyargcount)
        + constants
    )


def _names(code: types.CodeType) -> list[str]:
    """The global and attribute names ``code`` and the functions nested in it read."""
    names = list(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names.extend(_names(constant))
    return names


def _hash_function(function: types.FunctionType, digest: hashlib._Hash, seen: set[object]) -> None:
    if function.__code__ in seen:
        return
    seen.add(function.__code__)
    digest.update(_source(function).encode())
    digest.update(repr(_closure_key(function)).encode())
    for cell in function.__closure__ or ():
        _hash_value(cell.cell_contents, (), digest, seen)
    names = _names(function.__code__)
    for name in names:
        if name in function.__globals__:
            _hash_value(function.__globals__[name], names, digest, seen)


def _hash_value(value: object, names: Sequence[str], digest: hashlib._Hash, seen: set[object]) -> None:
    if isinstance(value, types.ModuleType):
        if value.__name__.startswith(_PACKAGE):
            # ``ops.OP_CONVOLUTION``: the module's attributes the code reads.
            for name in names:
                if name in vars(value):
                    _hash_value(vars(value)[name], (), digest, seen)
    elif isinstance(value, types.FunctionType):
        if value.__module__.startswith(_PACKAGE) and value.__module__ not in _WHOLE_OR_UNRELATED:
            _hash_function(value, digest, seen)
    elif isinstance(value, type):
        if value.__module__.startswith(_PACKAGE) and value not in seen:
            seen.add(value)
            digest.update(_source(value).encode())
    else:
        plain = _plain(value)
        if plain is not None:
            digest.update(repr(plain).encode())


def _plain(value: object) -> Plain | None:
    """``value`` as nested tuples of numbers and strings (sets sorted), or None when it holds anything else."""
    items: Plain | None  # each branch's items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        items = tuple(_plain(item) for item in value)
        return None if any(item is None and original is not None for item, original in zip(items, value)) else items
    if isinstance(value, (set, frozenset)):
        items = _plain(sorted(value, key=repr))
        return None if items is None else ("set", items)
    if isinstance(value, dict):
        items = _plain(list(value.items()))
        return None if items is None else ("dict", items)
    return None


class _Part:
    """A group of nodes built apart from the tree that uses it (``TreeBuilder.part``), and how its sockets connect
    to that tree: sockets of the tree passed in as its inputs, its own sockets passed out as its outputs."""

    def __init__(self, tree: bpy.types.NodeTree) -> None:
        self.tree = tree
        self.node: bpy.types.Node | None = None  # its group node in the tree, once built
        self.input_node: bpy.types.Node | None = None
        self.output_node: bpy.types.Node | None = None
        self.passed_in: dict[int, str] = {}  # a socket of the tree (as_pointer) -> the input's identifier
        self.links_in: list[tuple[bpy.types.NodeSocket, str]] = []
        self.passed_out: dict[int, str] = {}  # a socket of the part (as_pointer) -> the output's identifier


def input_items(tree: bpy.types.NodeTree) -> dict[str, bpy.types.NodeTreeInterfaceSocket]:
    """Every input of ``tree``'s interface by name; an input inside a panel as ``"<panel>/<input>"``, e.g.
    ``"conv1/Fold"``."""
    interface = tree.interface
    assert interface is not None  # every node tree has one; the stubs allow None
    items = {}
    for item in interface.items_tree:
        if isinstance(item, bpy.types.NodeTreeInterfaceSocket) and item.in_out == "INPUT":
            panel = item.parent.name if item.parent is not None else ""
            items[f"{panel}/{item.name}" if panel else item.name] = item
    return items


class TreeBuilder:
    """Adds nodes and links to one tree; values or sockets can be given for inputs."""

    def __init__(self, tree: bpy.types.NodeTree) -> None:
        self.tree = tree
        # A tree made as a copy of another has its Group Input already (``inputs``).
        self._input_node: bpy.types.Node | None = next(
            (node for node in tree.nodes if node.bl_idname == "NodeGroupInput"), None
        )
        self._output_node: bpy.types.Node | None = None
        self._frame: bpy.types.NodeFrame | None = None
        self.interface_inputs: dict[str, bpy.types.NodeTreeInterfaceSocket] = {}
        self._outer_tree = tree  # the tree the builder was made for, while a part is built
        self._part: _Part | None = None  # the part being built
        self._parts: dict[int, _Part] = {}  # the parts built, by their tree's as_pointer

    # Interface -----------------------------------------------------------

    def add_input(
        self,
        name: str,
        kind: str,
        default: Input | None = None,
        min_value: float | None = None,
        max_value: float | None = None,
        description: str = "",
        panel: bpy.types.NodeTreeInterfacePanel | None = None,
    ) -> bpy.types.NodeSocket:
        """Add a group input (inside ``panel`` if given); returns its socket on the Group Input node."""
        assert self._part is None, "a part's inputs are the sockets it uses from outside"
        interface = self.tree.interface
        assert interface is not None  # every node tree has one; the stubs allow None
        # The ignore: bpy's stubs list only "DEFAULT" for socket_type; the socket types are registered at run time.
        item = interface.new_socket(
            name,
            in_out="INPUT",
            socket_type=SOCKET_TYPES[kind],  # type: ignore[arg-type]
            parent=panel,
        )
        self.interface_inputs[name if panel is None else f"{panel.name}/{name}"] = item
        item.description = description
        # The ignores: bpy's stubs give these to the subclass of each socket type (NodeTreeInterfaceSocketFloat...),
        # which ``item`` is.
        if default is not None:
            item.default_value = default  # type: ignore[attr-defined]
        if min_value is not None:
            item.min_value = min_value  # type: ignore[attr-defined]
        if max_value is not None:
            item.max_value = max_value  # type: ignore[attr-defined]
        return self.group_input().outputs[item.identifier]

    def inputs(self) -> dict[str, bpy.types.NodeSocket]:
        """The Group Input's socket of every input the tree has, named as ``input_items`` names them: for a tree
        made as a copy of one that holds inputs."""
        outputs = self.group_input().outputs
        items = input_items(self.tree)
        self.interface_inputs.update(items)
        return {key: outputs[item.identifier] for key, item in items.items()}

    def copy_panel(
        self, panel: bpy.types.NodeTreeInterfacePanel, name: str
    ) -> tuple[bpy.types.NodeTreeInterfacePanel, dict[str, bpy.types.NodeSocket]]:
        """A copy of ``panel`` named ``name``, right after it, with a copy of each of its inputs (default, range
        and description); returns it and its inputs' sockets by name.

        Two changes to the tree instead of one for each input and property of each: Blender updates the whole
        tree on every one.
        """
        interface = self.tree.interface
        assert interface is not None  # every node tree has one; the stubs allow None
        copy = interface.copy(panel)
        assert isinstance(copy, bpy.types.NodeTreeInterfacePanel)  # a panel's copy is one; the stubs say Item
        copy.name = name
        outputs = self.group_input().outputs
        sockets = {}
        for item in copy.interface_items:
            assert isinstance(item, bpy.types.NodeTreeInterfaceSocket)  # the panels copied hold inputs only
            self.interface_inputs[f"{name}/{item.name}"] = item
            sockets[item.name] = outputs[item.identifier]
        return copy, sockets

    def add_panel(self, name: str, closed: bool = True) -> bpy.types.NodeTreeInterfacePanel:
        """A collapsible panel of inputs, as the modifier shows it."""
        interface = self.tree.interface
        assert interface is not None  # every node tree has one; the stubs allow None
        return interface.new_panel(name, default_closed=closed)

    def add_output(self, name: str, kind: str) -> None:
        interface = self.tree.interface
        assert interface is not None  # every node tree has one; the stubs allow None
        # The ignore: as in ``add_input``, the stubs list only "DEFAULT" for socket_type.
        interface.new_socket(name, in_out="OUTPUT", socket_type=SOCKET_TYPES[kind])  # type: ignore[arg-type]

    def group_input(self) -> bpy.types.Node:
        if self._input_node is None:
            self._input_node = self.tree.nodes.new("NodeGroupInput")
        return self._input_node

    def set_outputs(self, **sockets: bpy.types.NodeSocket) -> None:
        """Link sockets to the Group Output by output name (spaces as underscores)."""
        if self._output_node is None:
            self._output_node = self.tree.nodes.new("NodeGroupOutput")
        for name, socket in sockets.items():
            self.link(socket, self._output_node.inputs[name.replace("_", " ")])

    def lay_out(self) -> None:
        """Place every node: columns by depth, left to right, frames kept whole (``nodes/layout.py``).

        One ``foreach_set`` for the whole tree: setting a node's location one by
        one costs a tree update each, 2 ms per node in a tree of 1,500 (measured).
        """
        layout.lay_out(self.tree, first=[self._input_node], last=[self._output_node])

    @contextmanager
    def frame(self, label: str) -> Iterator[bpy.types.NodeFrame]:
        """``with b.frame("Label"):`` puts the nodes made inside in one frame: a logical part of the group."""
        outer = self._frame
        frame = self.tree.nodes.new("NodeFrame")
        assert isinstance(frame, bpy.types.NodeFrame)  # what it makes; the stubs say Node
        frame.label = label
        frame.shrink = True
        self._frame = frame
        try:
            yield frame
        finally:
            self._frame = outer

    @contextmanager
    def part(self, label: str) -> Iterator[None]:
        """``with b.part("Label"):`` builds the nodes made inside in a group of their own, which one group node
        labelled ``label`` uses here.

        Blender updates the whole tree after every node, link and value set, so building a tree costs about the
        square of its size. A part is built while nothing uses it, at the cost of its own size: with its two
        biggest frames built as parts, CIFAR-10 greyscale's network tree (175 nodes, 107 inputs) took its build
        from 0.68 to 0.55 s (measured). Sockets from outside
        that its nodes use become its inputs, and its sockets used outside become its outputs, as they are
        linked; code inside reads like code outside.
        """
        assert self._part is None, "parts do not nest"
        if not separate_parts:
            with self.frame(label):
                yield
            return
        tree = bpy.data.node_groups.new(f"{self.tree.name}: {label}", "GeometryNodeTree")
        assert tree is not None  # bpy stubs: it makes one or raises
        part = _Part(tree)
        part.tree[PART_PROPERTY] = True
        outer = (self._input_node, self._output_node, self._frame)
        self.tree, self._part = part.tree, part
        self._input_node = self._output_node = self._frame = None
        try:
            yield
        finally:
            part.input_node, part.output_node = self._input_node, self._output_node
            self.tree, self._part = self._outer_tree, None
            self._input_node, self._output_node, self._frame = outer
        layout.lay_out(part.tree, first=[part.input_node], last=[part.output_node])
        node = self.group(part.tree)  # type: ignore[arg-type]  # a GeometryNodeTree: it was made as one
        node.label = label
        for socket, identifier in part.links_in:
            self.tree.links.new(socket, node.inputs[identifier])
        part.node = node
        self._parts[part.tree.as_pointer()] = part

    def _reachable(self, socket: bpy.types.NodeSocket) -> bpy.types.NodeSocket:
        """``socket``, or the socket of the tree being built that carries its value across a part's border."""
        owner = socket.id_data
        if owner == self.tree:
            return socket
        if self._part is None:
            return self._passed_out(socket)
        return self._passed_in(socket if owner == self._outer_tree else self._passed_out(socket))

    def _passed_in(self, socket: bpy.types.NodeSocket) -> bpy.types.NodeSocket:
        """The part's input that carries ``socket`` of the outer tree."""
        part = self._part
        assert part is not None  # only called while a part is built
        key = socket.as_pointer()
        if key not in part.passed_in:
            item = _carrying(part.tree, socket, "INPUT")
            part.passed_in[key] = item.identifier
            part.links_in.append((socket, item.identifier))
        return self.group_input().outputs[part.passed_in[key]]

    def _passed_out(self, socket: bpy.types.NodeSocket) -> bpy.types.NodeSocket:
        """The output of a part's group node that carries ``socket`` of that part."""
        owner = socket.id_data
        part = self._parts.get(owner.as_pointer()) if owner is not None else None
        if part is None or part.node is None:
            raise ValueError(
                f"{socket.name!r} is in {getattr(owner, 'name', None)!r}, which this builder does not build"
            )
        key = socket.as_pointer()
        if key not in part.passed_out:
            item = _carrying(part.tree, socket, "OUTPUT")
            if part.output_node is None:
                part.output_node = part.tree.nodes.new("NodeGroupOutput")
            part.tree.links.new(socket, part.output_node.inputs[item.identifier])
            part.passed_out[key] = item.identifier
        return part.node.outputs[part.passed_out[key]]

    # Nodes ---------------------------------------------------------------

    def node(self, idname: str, inputs: Inputs | None = None, **properties: object) -> bpy.types.Node:
        """Add a node, set its properties, then its inputs (by name, identifier or index)."""
        node = self.tree.nodes.new(idname)
        if self._frame is not None:
            node.parent = self._frame
        for attribute, value in properties.items():
            setattr(node, attribute, value)
        for key, value in (inputs or {}).items():
            self.set_input(node, key, value)
        return node

    def group(self, node_group: bpy.types.GeometryNodeTree, inputs: Inputs | None = None) -> bpy.types.Node:
        node = self.node("GeometryNodeGroup")
        assert isinstance(node, bpy.types.GeometryNodeGroup)  # what it makes; the stubs say Node
        node.node_tree = node_group
        for key, value in (inputs or {}).items():
            self.set_input(node, key, value)
        return node

    def set_input(self, node: bpy.types.Node, key: int | str, value: Input) -> None:
        socket = find_socket(node.inputs, key)
        if isinstance(value, bpy.types.NodeSocket):
            self.link(value, socket)
        else:
            socket.default_value = value  # type: ignore[attr-defined]  # bpy stubs: on each socket type's subclass

    def link(self, from_socket: bpy.types.NodeSocket, to_socket: bpy.types.NodeSocket) -> None:
        self.tree.links.new(self._reachable(from_socket), to_socket)

    # Float math ----------------------------------------------------------

    def math(self, operation: str, a: Input, b: Input | None = None, c: Input | None = None) -> bpy.types.NodeSocket:
        """A Math node's result; the named operations below read better."""
        values = {0: a}
        if b is not None:
            values[1] = b
        if c is not None:
            values[2] = c
        return self.node("ShaderNodeMath", values, operation=operation).outputs[0]

    def add(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("ADD", a, b)

    def subtract(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("SUBTRACT", a, b)

    def multiply(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("MULTIPLY", a, b)

    def divide(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("DIVIDE", a, b)

    def multiply_add(self, a: Input, b: Input, c: Input) -> bpy.types.NodeSocket:
        """``a * b + c`` in one node."""
        return self.math("MULTIPLY_ADD", a, b, c)

    def negate(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("MULTIPLY", a, -1.0)

    def minimum(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("MINIMUM", a, b)

    def maximum(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("MAXIMUM", a, b)

    def clamp(self, a: Input, low: Input, high: Input) -> bpy.types.NodeSocket:
        """``a`` kept within ``[low, high]``: the minimum of the maximum."""
        return self.minimum(self.maximum(a, low), high)

    def less_than(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        """1.0 where ``a < b``, else 0.0: a float to compute with (``compare`` gives a boolean)."""
        return self.math("LESS_THAN", a, b)

    def greater_than(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.math("GREATER_THAN", a, b)

    def floor(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("FLOOR", a)

    def ceil(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("CEIL", a)

    def round(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("ROUND", a)

    def absolute(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("ABSOLUTE", a)

    def sqrt(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("SQRT", a)

    def sine(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("SINE", a)

    def cosine(self, a: Input) -> bpy.types.NodeSocket:
        return self.math("COSINE", a)

    def modulo(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        """``a`` floored modulo ``b``: never negative for a positive ``b``, as Python's ``%``."""
        return self.math("FLOORED_MODULO", a, b)

    # Integer math --------------------------------------------------------

    def int_math(self, operation: str, a: Input, b: Input | None = None) -> bpy.types.NodeSocket:
        node = self.node("FunctionNodeIntegerMath", operation=operation)
        self.set_input(node, 0, a)
        if b is not None:
            self.set_input(node, 1, b)
        return node.outputs[0]

    def int_add(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.int_math("ADD", a, b)

    def int_subtract(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.int_math("SUBTRACT", a, b)

    def int_multiply(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.int_math("MULTIPLY", a, b)

    def int_divide(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        """``a // b``: rounded down, as Python's."""
        return self.int_math("DIVIDE_FLOOR", a, b)

    def int_modulo(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        """``a % b``, floored as Python's."""
        return self.int_math("FLOORED_MODULO", a, b)

    def int_minimum(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.int_math("MINIMUM", a, b)

    def int_maximum(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.int_math("MAXIMUM", a, b)

    def int_clamp(self, a: Input, low: Input, high: Input) -> bpy.types.NodeSocket:
        return self.int_maximum(self.int_minimum(a, high), low)

    # Vectors -------------------------------------------------------------

    def vector_math(self, operation: str, a: Input, b: Input | None = None) -> bpy.types.NodeSocket:
        values = {0: a} if b is None else {0: a, 1: b}
        node = self.node("ShaderNodeVectorMath", values, operation=operation)
        return node.outputs["Value" if operation in {"LENGTH", "DOT_PRODUCT", "DISTANCE"} else "Vector"]

    def vector_add(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.vector_math("ADD", a, b)

    def vector_subtract(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.vector_math("SUBTRACT", a, b)

    def scale(self, vector: Input, factor: Input) -> bpy.types.NodeSocket:
        return self.vector_math("SCALE", vector, factor)

    def distance(self, a: Input, b: Input) -> bpy.types.NodeSocket:
        return self.vector_math("DISTANCE", a, b)

    def combine_xyz(self, x: Input = 0.0, y: Input = 0.0, z: Input = 0.0) -> bpy.types.NodeSocket:
        return self.node("ShaderNodeCombineXYZ", {"X": x, "Y": y, "Z": z}).outputs[0]

    def separate_xyz(self, vector: Input) -> bpy.types.NodeOutputs:
        return self.node("ShaderNodeSeparateXYZ", {"Vector": vector}).outputs

    # Booleans and comparisons --------------------------------------------

    def compare(self, a: Input, operation: str, b: Input, data_type: str = "INT") -> bpy.types.NodeSocket:
        """``a <operation> b`` as a boolean; ``operation`` is one of ``== != < <= > >=``."""
        node = self.node("FunctionNodeCompare", data_type=data_type, operation=COMPARISONS[operation])
        self.set_input(node, 0, a)
        self.set_input(node, 1, b)
        return node.outputs["Result"]

    def boolean_math(self, operation: str, a: Input, b: Input | None = None) -> bpy.types.NodeSocket:
        return self.node("FunctionNodeBooleanMath", {0: a} if b is None else {0: a, 1: b}, operation=operation).outputs[
            0
        ]

    def all_of(self, *values: Input) -> Input:
        """True where every value is: ``((a and b) and c) ...``."""
        result = values[0]
        for value in values[1:]:
            result = self.boolean_math("AND", result, value)
        return result

    def any_of(self, *values: Input) -> Input:
        """True where any value is: ``((a or b) or c) ...``."""
        result = values[0]
        for value in values[1:]:
            result = self.boolean_math("OR", result, value)
        return result

    def logical_not(self, value: Input) -> bpy.types.NodeSocket:
        return self.boolean_math("NOT", value)

    # Mixing and choosing -------------------------------------------------

    def mix(self, factor: Input, a: Input, b: Input, data_type: str = "FLOAT") -> bpy.types.NodeSocket:
        """``a`` to ``b`` as ``factor`` goes from 0 to 1; ``data_type`` FLOAT, VECTOR or RGBA."""
        suffix = {"FLOAT": "Float", "VECTOR": "Vector", "RGBA": "Color"}[data_type]
        node = self.node("ShaderNodeMix", {"Factor": factor}, data_type=data_type)
        self.set_input(node, f"A_{suffix}", a)
        self.set_input(node, f"B_{suffix}", b)
        return find_socket(node.outputs, f"Result_{suffix}")

    def map_range(
        self, value: Input, from_min: Input, from_max: Input, interpolation: str = "LINEAR"
    ) -> bpy.types.NodeSocket:
        """``value`` from ``[from_min, from_max]`` to ``[0, 1]``, clamped; ``"SMOOTHSTEP"`` eases both ends."""
        return self.node(
            "ShaderNodeMapRange",
            {"Value": value, "From Min": from_min, "From Max": from_max},
            clamp=True,
            interpolation_type=interpolation,
        ).outputs["Result"]

    def switch(
        self, input_type: str, condition: Input, false: Input | None = None, true: Input | None = None
    ) -> bpy.types.NodeSocket:
        """``true`` where ``condition`` holds, else ``false`` (unset: the type's empty value)."""
        inputs = {"Switch": condition}
        if false is not None:
            inputs["False"] = false
        if true is not None:
            inputs["True"] = true
        return self.node("GeometryNodeSwitch", inputs, input_type=input_type).outputs[0]

    def index_switch(
        self,
        index: Input,
        values: list[Input] | tuple[Input, ...] | Mapping[int, Input],
        data_type: str = "FLOAT",
        label: str = "",
    ) -> bpy.types.NodeSocket:
        """The value at ``index`` of ``values`` (a list, or ``{position: value}`` leaving others empty)."""
        switch = self.node("GeometryNodeIndexSwitch", data_type=data_type)
        if label:
            switch.label = label
        items = dict(enumerate(values)) if isinstance(values, (list, tuple)) else values
        # The cast: the stubs say Node. ``switch`` stays a Node: the stubs type an Index Switch's own sockets by
        # literal index, and as possibly None.
        switch_items = cast(bpy.types.GeometryNodeIndexSwitch, switch).index_switch_items
        while len(switch_items) < max(items, default=-1) + 1:
            switch_items.new()
        self.set_input(switch, "Index", index)
        for position, value in items.items():
            self.set_input(switch, switch.inputs[position + 1].identifier, value)
        return switch.outputs[0]

    def menu_switch(self, menu: Input, options: Mapping[str, Input], data_type: str = "RGBA") -> bpy.types.NodeSocket:
        """A Menu Switch choosing among ``options`` ({item name: value or socket}) by ``menu``.

        Linking a group's Menu input to it gives that input (and a modifier
        showing it) a drop-down of the item names.
        """
        node = self.node("GeometryNodeMenuSwitch", data_type=data_type)
        # The cast: the stubs say Node (``node`` stays one, as in ``index_switch``).
        enum_items = cast(bpy.types.GeometryNodeMenuSwitch, node).enum_items
        enum_items.clear()
        for name in options:
            enum_items.new(name)
        self.set_input(node, "Menu", menu)
        for name, value in options.items():
            self.set_input(node, name, value)
        return node.outputs[0]

    def color_ramp(self, factor: Input, stops: Sequence[tuple[float, Sequence[float]]]) -> bpy.types.NodeSocket:
        """A Color Ramp with ``stops`` = [(position, (r, g, b)), ...] in linear RGB."""
        node = self.node("ShaderNodeValToRGB", {"Fac": factor})
        # The cast: the stubs say Node (``node`` stays one, as in ``index_switch``).
        ramp = cast(bpy.types.ShaderNodeValToRGB, node).color_ramp
        assert ramp is not None  # a Color Ramp node always has its ramp; the stubs allow None
        elements = ramp.elements
        while len(elements) > len(stops):
            elements.remove(elements[-1])
        while len(elements) < len(stops):
            elements.new(1.0)
        for element, (position, rgb) in zip(elements, stops):
            element.position = position
            element.color = (*rgb, 1.0)  # type: ignore[assignment]  # bpy stubs: an array property takes any sequence
        return node.outputs["Color"]

    # Attributes and fields -----------------------------------------------

    def attribute(
        self, name: str, named: bpy.types.NodeSocket | None = None, **parts: str | bpy.types.NodeSocket
    ) -> bpy.types.NodeSocket:
        """Read a named attribute as a field, at the type ``core/attributes.py`` gives ``name``.

        A family's template takes its parts as sockets or values, joined into
        the name in the tree: ``b.attribute("weight_e{epoch}", epoch=low)``;
        or ``named`` gives the name as a string socket (one of the family).
        """
        spec = attributes.spec(name)
        key = named if named is not None else self.attribute_name(name, **parts) if parts else name
        return self.node("GeometryNodeInputNamedAttribute", {"Name": key}, data_type=spec.data_type).outputs[
            "Attribute"
        ]

    def attribute_name(self, template: str, **parts: str | bpy.types.NodeSocket) -> bpy.types.NodeSocket:
        """The name of one attribute of a family, joined in the tree from its parts (sockets or values)."""
        return self.join_strings(*attributes.spec(template).parts(**parts))

    def attribute_exists(self, name: str) -> bpy.types.NodeSocket:
        """True where the geometry has attribute ``name``."""
        return self.node(
            "GeometryNodeInputNamedAttribute", {"Name": name}, data_type=attributes.spec(name).data_type
        ).outputs["Exists"]

    def store(
        self, geometry: Input, name: str, value: Input, domain: str | None = None, selection: Input | None = None
    ) -> bpy.types.NodeSocket:
        """``geometry`` with ``value`` stored as attribute ``name``, at its declared type and (unless given) domain."""
        spec = attributes.spec(name)
        inputs = {"Geometry": geometry, "Name": name, "Value": value}
        if selection is not None:
            inputs["Selection"] = selection
        return self.node(
            "GeometryNodeStoreNamedAttribute", inputs, data_type=spec.data_type, domain=domain or spec.domain
        ).outputs[0]

    def position(self) -> bpy.types.NodeSocket:
        return self.node("GeometryNodeInputPosition").outputs[0]

    def index(self) -> bpy.types.NodeSocket:
        return self.node("GeometryNodeInputIndex").outputs[0]

    def sample_index(
        self,
        geometry: Input,
        value: bpy.types.NodeSocket,
        index: Input,
        data_type: str | None = None,
        clamp: bool = False,
    ) -> bpy.types.NodeSocket:
        """``value`` (a field) on ``geometry``'s point ``index``; its type is the value socket's unless given.

        ``clamp`` for indices that are always valid (a layer's row of a table): out of range they would take the
        nearest point's value instead of the type's default, and checking every index for that cost more than
        the lookup (VGG16's 15 million cells).
        """
        return self.node(
            "GeometryNodeSampleIndex",
            {"Geometry": geometry, "Value": value, "Index": index},
            data_type=data_type or DATA_TYPES[value.type],
            domain="POINT",
            clamp=clamp,
        ).outputs[0]

    def statistic(
        self, geometry: Input, value: Input, selection: Input | None = None, data_type: str = "FLOAT"
    ) -> bpy.types.NodeOutputs:
        """An Attribute Statistic node over the points: its outputs ``Sum``, ``Min``, ``Max``, ``Mean``..."""
        inputs = {"Geometry": geometry, "Attribute": value}
        if selection is not None:
            inputs["Selection"] = selection
        return self.node("GeometryNodeAttributeStatistic", inputs, data_type=data_type, domain="POINT").outputs

    def point_count(self, geometry: Input) -> bpy.types.NodeSocket:
        return self.node("GeometryNodeAttributeDomainSize", {"Geometry": geometry}, component="MESH").outputs[
            "Point Count"
        ]

    def to_string(self, value: Input, decimals: Input | None = None) -> bpy.types.NodeSocket:
        inputs = {"Value": value} if decimals is None else {"Value": value, "Decimals": decimals}
        return self.node("FunctionNodeValueToString", inputs).outputs[0]

    def join_strings(self, *parts: str | bpy.types.NodeSocket) -> bpy.types.NodeSocket:
        """One string from strings and numbers (sockets or values): attribute names such as ``activation_e3_s0``."""
        join = self.node("GeometryNodeStringJoin")
        # Links into a multi-input socket sort newest first: link the last part first.
        for part in reversed(parts):
            if isinstance(part, str):
                part = self.node("FunctionNodeInputString", string=part).outputs[0]
            elif part.type in {"INT", "VALUE"}:
                part = self.to_string(part)
            self.link(part, join.inputs["Strings"])
        return join.outputs[0]

    # Geometry ------------------------------------------------------------

    def object_geometry(self, obj: Input) -> bpy.types.NodeSocket:
        """The geometry of the object ``obj`` (a socket or an object), where it stands relative to this one."""
        return self.node("GeometryNodeObjectInfo", {"Object": obj}, transform_space="RELATIVE").outputs["Geometry"]

    def set_position(
        self, geometry: Input, position: Input | None = None, offset: Input | None = None
    ) -> bpy.types.NodeSocket:
        inputs = {"Geometry": geometry}
        if position is not None:
            inputs["Position"] = position
        if offset is not None:
            inputs["Offset"] = offset
        return self.node("GeometryNodeSetPosition", inputs).outputs[0]

    def transform(
        self, geometry: Input, translation: Input | None = None, rotation: Input | None = None
    ) -> bpy.types.NodeSocket:
        inputs = {"Geometry": geometry}
        if rotation is not None:
            inputs["Rotation"] = rotation
        if translation is not None:
            inputs["Translation"] = translation
        return self.node("GeometryNodeTransform", inputs).outputs[0]

    def set_material(self, geometry: Input, material: Input) -> bpy.types.NodeSocket:
        return self.node("GeometryNodeSetMaterial", {"Geometry": geometry, "Material": material}).outputs[0]

    def realize(self, geometry: Input) -> bpy.types.NodeSocket:
        return self.node("GeometryNodeRealizeInstances", {"Geometry": geometry}).outputs[0]

    def delete(self, geometry: Input, selection: Input, domain: str = "POINT") -> bpy.types.NodeSocket:
        return self.node(
            "GeometryNodeDeleteGeometry", {"Geometry": geometry, "Selection": selection}, domain=domain
        ).outputs[0]

    def keep(self, geometry: Input, selection: Input) -> bpy.types.NodeSocket:
        """The points of ``geometry`` where ``selection`` holds (Separate Geometry's Selection)."""
        return self.node(
            "GeometryNodeSeparateGeometry", {"Geometry": geometry, "Selection": selection}, domain="POINT"
        ).outputs["Selection"]

    def capture(
        self,
        geometry: Input,
        fields: Mapping[str, tuple[str, Input]],
        domain: str = "POINT",
    ) -> tuple[bpy.types.NodeSocket, dict[str, bpy.types.NodeSocket]]:
        """``geometry`` with ``fields`` ({name: (kind, field)}, kind FLOAT, BOOLEAN, VECTOR...) captured on its
        points (or ``domain``); returns ``(geometry, {name: captured field})``: the values as they were there."""
        node = self.node("GeometryNodeCaptureAttribute", domain=domain)
        # The cast: the stubs say Node (``node`` stays one, as in ``index_switch``).
        capture_items = cast(bpy.types.GeometryNodeCaptureAttribute, node).capture_items
        for name, (kind, _field) in fields.items():
            # The ignore: the stubs take the socket types as literals; ``kind`` is one of them.
            capture_items.new(kind, name)  # type: ignore[arg-type]
        self.set_input(node, "Geometry", geometry)
        # Each item's sockets are named after it.
        for name, (_kind, field) in fields.items():
            self.set_input(node, name, field)
        return node.outputs["Geometry"], {name: find_socket(node.outputs, name) for name in fields}

    def instance_on_points(
        self,
        points: Input,
        instance: Input,
        selection: Input | None = None,
        scale: Input | None = None,
        rotation: Input | None = None,
    ) -> bpy.types.NodeSocket:
        inputs = {"Points": points, "Instance": instance}
        for name, value in (("Selection", selection), ("Scale", scale), ("Rotation", rotation)):
            if value is not None:
                inputs[name] = value
        return self.node("GeometryNodeInstanceOnPoints", inputs).outputs[0]

    def remove_attribute(self, geometry: Input, name: str) -> bpy.types.NodeSocket:
        """``geometry`` without attribute ``name``, or every attribute ``name`` matches when it has a ``*``."""
        inputs = {"Geometry": geometry, "Name": name}
        if "*" in name:
            inputs["Pattern Mode"] = "Wildcard"
        return self.node("GeometryNodeRemoveAttribute", inputs).outputs[0]

    def grid(self, size_x: Input, size_y: Input) -> bpy.types.NodeSocket:
        """A flat rectangle in the XY plane, ``size_x`` by ``size_y``, of four vertices."""
        return self.node(
            "GeometryNodeMeshGrid", {"Size X": size_x, "Size Y": size_y, "Vertices X": 2, "Vertices Y": 2}
        ).outputs["Mesh"]

    def spline_parameter(self) -> bpy.types.NodeOutputs:
        """``Factor`` (0 to 1 along the curve), ``Length`` and ``Index`` of each curve point."""
        return self.node("GeometryNodeSplineParameter").outputs

    def set_curve_radius(self, curves: Input, radius: Input) -> bpy.types.NodeSocket:
        return self.node("GeometryNodeSetCurveRadius", {"Curve": curves, "Radius": radius}).outputs[0]

    def join(self, parts: Sequence[bpy.types.NodeSocket]) -> bpy.types.NodeSocket:
        """One geometry of ``parts``, in their order."""
        join = self.node("GeometryNodeJoinGeometry")
        # Links into a multi-input socket sort newest first; link in reverse to keep the order readable.
        for part in reversed(parts):
            self.link(part, join.inputs[0])
        return join.outputs[0]


def _carrying(tree: bpy.types.NodeTree, socket: bpy.types.NodeSocket, in_out: str) -> bpy.types.NodeTreeInterfaceSocket:
    """A new input or output of ``tree`` of the kind of value ``socket`` carries, named as it is."""
    assert tree.interface is not None  # every node tree has one; the stubs allow None
    # The ignores: as in ``add_input``, the stubs list only "DEFAULT" for socket_type, and in_out as a literal.
    return tree.interface.new_socket(
        socket.name,
        in_out=in_out,  # type: ignore[arg-type]
        socket_type=INTERFACE_TYPES[socket.type],  # type: ignore[arg-type]
    )


def tree_parts(tree: bpy.types.NodeTree) -> list[bpy.types.NodeTree]:
    """The parts (``TreeBuilder.part``) ``tree`` uses: groups of its own nodes, which nothing else uses."""
    groups = (getattr(node, "node_tree", None) for node in tree.nodes)
    return [group for group in groups if group is not None and group.get(PART_PROPERTY)]


def tree_nodes(tree: bpy.types.NodeTree) -> Iterator[bpy.types.Node]:
    """The nodes of ``tree`` and of its parts: every node its builder made, the parts' group nodes aside."""
    parts = tree_parts(tree)
    yield from (node for node in tree.nodes if getattr(node, "node_tree", None) not in parts)
    for part in parts:
        yield from tree_nodes(part)


def find_socket(sockets: Iterable[bpy.types.NodeSocket], key: int | str) -> bpy.types.NodeSocket:
    """A socket by index, identifier, or the name of an enabled socket."""
    if isinstance(key, int):
        enabled = [socket for socket in sockets if socket.enabled]
        return enabled[key]
    for socket in sockets:
        if socket.identifier == key:
            return socket
    for socket in sockets:
        if socket.name == key and socket.enabled:
            return socket
    raise KeyError(f"no socket {key!r} among {[s.name for s in sockets]}")
