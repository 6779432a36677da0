"""The "CNN Design" node tree: one node per layer, links for the data flow, shapes inferred as you edit.

Each designable layer type of the registry (``core.layer_specs``) has a node
class whose properties are the Keras arguments the design format takes.
The tree's ``update`` turns the tree into a design (``convert.design_from_tree``)
and runs ``core.design.infer_shapes`` (``convert.analyse_tree``); the result
is cached per tree and drawn on every node (output shape, parameters, or the
reason the node is invalid, which also colours the node red). Nothing here
raises into Blender: update and draw catch every error and show it.
``tree_from_design`` makes a tree of a design (``convert.fill_tree``) with
that analysis suspended until every node is in, and ``check_tree`` gives the
design of a tree without problems.

This module uses ``convert``, never the other way round.
"""

import bpy
import nodeitems_utils
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, IntVectorProperty, StringProperty

from ..core.errors import BlenderCNNError
from ..core.layer_specs import DESIGNER_CATEGORIES, LAYER_SPECS, MANY_INPUTS, designable_layer_types, spec_of
from ..core.shape_rules import shape_text
from . import convert

TREE_TYPE = "BCNN_DesignTree"
SOCKET_TYPE = "BCNN_TensorSocket"
PROBLEM_COLOR = (0.62, 0.12, 0.12)
WRAP = 38  # characters per line of a problem drawn on a node

# ---------------------------------------------------------------- the layer types, from the registry

# The node properties of each designable type: the registry's arguments a node shows.
ARGUMENTS = {
    layer_type: tuple(argument for argument in spec_of(layer_type).arguments if argument.shown)
    for layer_type in designable_layer_types()
}
# The Add menu: the input, then one category per registry category.
CATEGORIES = (
    ("BCNN_INPUT", "Input", ("Input",)),
    *(
        (
            f"BCNN_{category.upper()}",
            category,
            tuple(spec.type for spec in LAYER_SPECS.values() if spec.category == category and spec.shape_rule),
        )
        for category in DESIGNER_CATEGORIES
    ),
)


# ---------------------------------------------------------------- the analysis, cached per tree

_analyses = {}  # tree.as_pointer() -> Analysis
_suspended = []  # non-empty while tree_from_design fills a tree: no analysis per added node


def analyse(tree):
    """Convert ``tree`` to a design, infer its shapes, cache and return the Analysis. Never raises."""
    try:
        result = convert.analyse_tree(tree)
    except Exception as error:  # noqa: BLE001 - shown on the tree, never raised into Blender's update
        result = convert.Analysis(error=f"could not analyse the design: {type(error).__name__}: {error}")
    try:
        _analyses[tree.as_pointer()] = (_signature(tree), result)
    except Exception:  # noqa: BLE001
        pass
    return result


def _signature(tree):
    """What an edit that Blender does not report (a rename, an undo) changes: names, links."""
    return (
        tree.name,
        tuple(node.name for node in tree.nodes),
        tuple((link.from_node.name, link.to_node.name) for link in tree.links),
    )


def analysis(tree):
    """The cached Analysis of ``tree`` (computed when there is none or the tree changed). Never raises."""
    try:
        signature, cached = _analyses.get(tree.as_pointer(), (None, None))
        if cached is not None and signature == _signature(tree):
            return cached
    except Exception:  # noqa: BLE001
        pass
    return analyse(tree)


@bpy.app.handlers.persistent
def _forget_analyses(*_args):
    """After loading a file or an undo step the trees are new datablocks: analyse them again when drawn."""
    _analyses.clear()


_HANDLERS = ("load_post", "undo_post", "redo_post")


def refresh(tree):
    """Analyse ``tree`` and mark its invalid nodes red; returns the Analysis. Never raises."""
    result = analyse(tree)
    try:
        for node in tree.nodes:
            if not isinstance(node, DesignNode):
                continue
            bad = node.name in result.problems
            if bad and (not node.use_custom_color or tuple(node.color) != PROBLEM_COLOR):
                node.use_custom_color = True
                node.color = PROBLEM_COLOR
            elif not bad and node.use_custom_color:
                node.use_custom_color = False
    except Exception:  # noqa: BLE001 - e.g. a context where data cannot be written
        pass
    _tag_redraw()
    return result


def _tag_redraw():
    try:
        for window in bpy.context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "NODE_EDITOR":
                    area.tag_redraw()
    except Exception:  # noqa: BLE001 - no window manager in background mode
        pass


def _changed(self, _context):
    """Update callback of every node property: the design changed."""
    tree = self.id_data
    if not _suspended and getattr(tree, "bl_idname", "") == TREE_TYPE:
        refresh(tree)


def wrapped(text, width=WRAP):
    """``text`` cut into lines of about ``width`` characters at spaces."""
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


# ---------------------------------------------------------------- a tree of a design, the design of a tree


def tree_from_design(design, name=None, tree=None):
    """A "CNN Design" tree (new, or ``tree`` emptied) showing ``design``; layers left to right by depth.

    The design need not be valid (its problems show on the nodes), but it
    must be a dict with a list of layers whose types the designer knows.
    """
    design = convert.checked_structure(design)  # before a tree is made: a refused design leaves none behind
    if tree is None:
        tree = bpy.data.node_groups.new(name or design.get("name") or "CNN Design", TREE_TYPE)
    _suspended.append(tree)
    try:
        convert.fill_tree(tree, design, name)
    finally:
        _suspended.remove(tree)
    refresh(tree)
    return tree


def check_tree(tree):
    """The tree's design, or one BlenderCNNError naming the tree and listing every problem."""
    result = analyse(tree)
    lines = (
        ([result.error] if result.error else [])
        + ([result.design_problem] if result.design_problem else [])
        + [f"{name}: {reason}" for name, reason in result.problems.items()]
    )
    if lines:
        count = f"{len(lines)} problem{'s' if len(lines) > 1 else ''}"
        raise BlenderCNNError(f"design {tree.design_name!r}", f"has {count}:\n  " + "\n  ".join(lines))
    return convert.design_from_tree(tree)


# ---------------------------------------------------------------- tree, socket, nodes


class BCNN_DesignTree(bpy.types.NodeTree):
    """A convolutional neural network designed from nodes: shapes and parameters update as you edit"""

    bl_idname = TREE_TYPE
    bl_label = "CNN Design"
    bl_icon = "NETWORK_DRIVE"

    design_name: StringProperty(
        name="Design Name",
        default="design",
        update=_changed,
        description="The network's name; rebuilding a design of this name replaces its network",
    )
    description: StringProperty(name="Description", default="", update=_changed)
    # Parts of the design that have no node: the training section and unknown keys, as JSON.
    training_json: StringProperty(name="Training", default="", options={"HIDDEN"})
    extra_json: StringProperty(default="", options={"HIDDEN"})

    def update(self):
        if not _suspended:
            refresh(self)


class BCNN_TensorSocket(bpy.types.NodeSocket):
    """A tensor flowing from one layer to the next"""

    bl_idname = SOCKET_TYPE
    bl_label = "Tensor"

    def draw(self, _context, layout, _node, text):
        layout.label(text=text)

    @classmethod
    def draw_color_simple(cls):
        return (0.35, 0.75, 1.0, 1.0)


class DesignNode:
    """Mixin of every designer node: shown shape, parameters and problem; the design's argument values."""

    layer_type = ""
    arguments = ()

    # The order the node's layer takes in the design (ties of the data flow are broken by it).
    order: IntProperty(default=0, options={"HIDDEN"})
    # The design's own values of the arguments ({"args": {...}, "extra": {...}, "inputs": bool}) as JSON,
    # so that a design converted to nodes and back is written exactly as it was.
    given_json: StringProperty(default="", options={"HIDDEN"})

    @classmethod
    def poll(cls, tree):
        return tree.bl_idname == TREE_TYPE

    def init(self, _context):
        if self.layer_type != "Input":
            self.inputs.new(SOCKET_TYPE, "Tensor", use_multi_input=spec_of(self.layer_type).takes == MANY_INPUTS)
        self.outputs.new(SOCKET_TYPE, "Tensor")
        self.width = 210
        try:
            others = [node.order for node in self.id_data.nodes if isinstance(node, DesignNode) and node != self]
            self.order = max(others, default=0) + 1
        except Exception:  # noqa: BLE001
            pass

    def draw_label(self):
        return self.name if self.layer_type == "Input" else f"{self.name} ({self.layer_type})"

    def draw_buttons(self, context, layout):
        try:
            self.draw_arguments(layout)
            self.draw_result(layout, analysis(self.id_data))
        except Exception as error:  # noqa: BLE001 - a node must always draw
            layout.label(text=f"{type(error).__name__}: {error}", icon="ERROR")

    def draw_arguments(self, layout):
        column = layout.column(align=True)
        for argument in self.arguments:
            if argument.optional:
                row = column.row(align=True)
                row.prop(self, argument.use_prop, text="")
                sub = row.row(align=True)
                sub.active = getattr(self, argument.use_prop)
                sub.prop(self, argument.prop, text=_title(argument.name))
            else:
                column.prop(self, argument.prop, text=_title(argument.name))

    def draw_result(self, layout, result):
        for line in result_lines(self, result):
            layout.label(text=line[0], icon=line[1])


def result_lines(node, result):
    """``[(text, icon)]`` a node shows under its properties: its output and parameters, or its problem."""
    problem = result.problems.get(node.name)
    if problem:
        return [(line, "ERROR" if i == 0 else "BLANK1") for i, line in enumerate(wrapped(problem))]
    info = result.layers.get(node.name)
    if info is None or info.output_shape is None:
        return [("shape unknown (an input is invalid)", "QUESTION")] if info is not None or result.layers else []
    return [
        (f"Output {shape_text(info.output_shape)}", "OUTLINER_DATA_LATTICE"),
        (f"{info.params:,} parameters", "NONE"),
    ]


def _title(name):
    return name.replace("_", " ").title()


def _property(argument):
    """The bpy property of one argument."""
    options = {"name": _title(argument.name), "update": _changed}
    start = argument.start
    if argument.kind == "int":
        return IntProperty(
            default=int(start), min=argument.minimum if argument.minimum is not None else -(2**31), **options
        )
    if argument.kind == "axis":
        return IntProperty(default=int(start), min=argument.minimum, max=argument.maximum, **options)
    if argument.kind == "pair":
        low = 1 if argument.minimum is None else argument.minimum
        return IntVectorProperty(size=2, default=(int(start), int(start)), min=low, **options)
    if argument.kind == "enum":
        return EnumProperty(items=[(item, item, "") for item in argument.items], default=start, **options)
    if argument.kind == "bool":
        return BoolProperty(default=bool(start), **options)
    if argument.kind == "float":
        bounds = {}
        if argument.minimum is not None:
            bounds["min"] = argument.minimum
        if argument.maximum is not None:
            bounds["max"] = argument.maximum
        return FloatProperty(default=float(start), precision=4, **bounds, **options)
    if argument.kind == "list":
        return StringProperty(default=convert.list_text(start), **options)
    raise ValueError(argument.kind)


def _node_class(layer_type):
    arguments = ARGUMENTS[layer_type]
    annotations = {}
    for argument in arguments:
        annotations[argument.prop] = _property(argument)
        if argument.optional:
            annotations[argument.use_prop] = BoolProperty(
                name=f"Set {_title(argument.name)}", default=False, update=_changed
            )
    doc = f"A Keras {layer_type} layer"
    return type(
        f"BCNN_NT_{layer_type}",
        (DesignNode, bpy.types.Node),
        {
            "__doc__": doc,
            "bl_idname": convert.node_idname(layer_type),
            "bl_label": layer_type,
            "bl_icon": "NONE",
            "layer_type": layer_type,
            "arguments": arguments,
            "__annotations__": annotations,
        },
    )


class BCNN_NT_Input(DesignNode, bpy.types.Node):
    """The network's input: its shape (channels last) and the names of the classes it tells apart"""

    bl_idname = convert.INPUT_NODE
    bl_label = "Input"
    layer_type = "Input"

    input_shape: IntVectorProperty(name="Input Shape", size=3, default=(28, 28, 1), min=1, update=_changed)
    rank: IntProperty(
        name="Axes",
        default=3,
        min=1,
        max=3,
        update=_changed,
        description="How many axes the input has: 3 for an image (height, width, channels), 1 for a vector",
    )
    class_names: StringProperty(
        name="Classes",
        default="0, 1, 2, 3, 4, 5, 6, 7, 8, 9",
        update=_changed,
        description="The class names, separated by commas: the output layer gives one value per class",
    )

    def draw_arguments(self, layout):
        column = layout.column(align=True)
        column.prop(self, "rank")
        row = column.row(align=True)
        for axis in range(self.rank):
            row.prop(self, "input_shape", index=axis, text="")
        column.prop(self, "class_names", text="")
        column.label(text=f"{len(convert.class_names_of(self))} classes")


LAYER_NODE_CLASSES = tuple(_node_class(layer_type) for layer_type in sorted(ARGUMENTS))
NODE_CLASSES = (BCNN_NT_Input, *LAYER_NODE_CLASSES)


# ---------------------------------------------------------------- the Add menu


class _DesignCategory(nodeitems_utils.NodeCategory):
    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "tree_type", None) == TREE_TYPE


def _categories():
    return [
        _DesignCategory(identifier, label, items=[nodeitems_utils.NodeItem(convert.node_idname(t)) for t in types])
        for identifier, label, types in CATEGORIES
    ]


CATEGORY_ID = "BCNN_DESIGN_NODES"
classes = (BCNN_DesignTree, BCNN_TensorSocket, *NODE_CLASSES)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    nodeitems_utils.register_node_categories(CATEGORY_ID, _categories())
    for name in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if _forget_analyses not in handlers:
            handlers.append(_forget_analyses)


def unregister():
    for name in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if _forget_analyses in handlers:
            handlers.remove(_forget_analyses)
    try:
        nodeitems_utils.unregister_node_categories(CATEGORY_ID)
    except KeyError:
        pass
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    _analyses.clear()
