"""A small helper for writing Geometry Nodes trees as Python.

Node groups are code: each group is a function that builds it with this
helper, and ``ensure_group`` keeps one copy per name at its version, rebuilt
in place when the version changes so every modifier using it updates.
"""

import bpy
import numpy as np

VERSION_PROPERTY = "blender_cnn_version"

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


def ensure_group(name, version, build):
    """Return the node group ``name`` at ``version``, building it if it is missing or older.

    ``build(tree_builder)`` fills an empty tree. Rebuilding in place (rather than
    making a new group) keeps every modifier and group node that points to it.
    """
    tree = bpy.data.node_groups.get(name)
    if tree is not None and tree.bl_idname == "GeometryNodeTree" and tree.get(VERSION_PROPERTY) == version:
        return tree
    if tree is None or tree.bl_idname != "GeometryNodeTree":
        tree = bpy.data.node_groups.new(name, "GeometryNodeTree")
    tree.nodes.clear()
    tree.interface.clear()
    builder = TreeBuilder(tree)
    build(builder)
    builder.lay_out()
    tree[VERSION_PROPERTY] = version
    return tree


class TreeBuilder:
    """Adds nodes and links to one tree; values or sockets can be given for inputs."""

    def __init__(self, tree):
        self.tree = tree
        self._input_node = None
        self._output_node = None
        self.interface_inputs = {}

    # Interface -----------------------------------------------------------

    def add_input(self, name, kind, default=None, min_value=None, max_value=None, description="", panel=None):
        """Add a group input (inside ``panel`` if given); returns its socket on the Group Input node."""
        item = self.tree.interface.new_socket(name, in_out="INPUT", socket_type=SOCKET_TYPES[kind], parent=panel)
        self.interface_inputs[name if panel is None else f"{panel.name}/{name}"] = item
        item.description = description
        if default is not None:
            item.default_value = default
        if min_value is not None:
            item.min_value = min_value
        if max_value is not None:
            item.max_value = max_value
        return self.group_input().outputs[item.identifier]

    def add_panel(self, name, closed=True):
        """A collapsible panel of inputs, as the modifier shows it."""
        return self.tree.interface.new_panel(name, default_closed=closed)

    def add_output(self, name, kind):
        self.tree.interface.new_socket(name, in_out="OUTPUT", socket_type=SOCKET_TYPES[kind])

    def group_input(self):
        if self._input_node is None:
            self._input_node = self.tree.nodes.new("NodeGroupInput")
        return self._input_node

    def set_outputs(self, **sockets):
        """Link sockets to the Group Output by output name (spaces as underscores)."""
        if self._output_node is None:
            self._output_node = self.tree.nodes.new("NodeGroupOutput")
        for name, socket in sockets.items():
            self.link(socket, self._output_node.inputs[name.replace("_", " ")])

    def lay_out(self):
        """Place the nodes left to right in the order they were added, the output last.

        One ``foreach_set`` for the whole tree: setting a node's location one by
        one costs a tree update each, 2 ms per node in a tree of 1,500 (measured).
        """
        nodes = self.tree.nodes
        order = np.arange(len(nodes), dtype=np.float32)
        if self._output_node is not None:
            order[list(nodes).index(self._output_node)] = len(nodes)
        locations = np.zeros((len(nodes), 2), dtype=np.float32)
        locations[:, 0] = order * 200.0
        nodes.foreach_set("location", locations.ravel())

    # Nodes ---------------------------------------------------------------

    def node(self, idname, inputs=None, **properties):
        """Add a node, set its properties, then its inputs (by name, identifier or index)."""
        node = self.tree.nodes.new(idname)
        for attribute, value in properties.items():
            setattr(node, attribute, value)
        for key, value in (inputs or {}).items():
            self.set_input(node, key, value)
        return node

    def group(self, node_group, inputs=None):
        node = self.node("GeometryNodeGroup")
        node.node_tree = node_group
        for key, value in (inputs or {}).items():
            self.set_input(node, key, value)
        return node

    def set_input(self, node, key, value):
        socket = find_socket(node.inputs, key)
        if isinstance(value, bpy.types.NodeSocket):
            self.link(value, socket)
        else:
            socket.default_value = value

    def link(self, from_socket, to_socket):
        self.tree.links.new(from_socket, to_socket)

    # Shorthands for the nodes every group uses -----------------------------

    def math(self, operation, a, b=None, c=None):
        values = {0: a}
        if b is not None:
            values[1] = b
        if c is not None:
            values[2] = c
        return self.node("ShaderNodeMath", values, operation=operation).outputs[0]

    def vector_math(self, operation, a, b=None):
        values = {0: a} if b is None else {0: a, 1: b}
        node = self.node("ShaderNodeVectorMath", values, operation=operation)
        return node.outputs["Value" if operation in {"LENGTH", "DOT_PRODUCT", "DISTANCE"} else "Vector"]

    def attribute(self, name, data_type="FLOAT"):
        """Read a named attribute (the data Python wrote) as a field."""
        node = self.node("GeometryNodeInputNamedAttribute", {"Name": name}, data_type=data_type)
        return node.outputs["Attribute"]

    def combine_xyz(self, x=0.0, y=0.0, z=0.0):
        return self.node("ShaderNodeCombineXYZ", {"X": x, "Y": y, "Z": z}).outputs[0]

    def separate_xyz(self, vector):
        return self.node("ShaderNodeSeparateXYZ", {"Vector": vector}).outputs

    def int_math(self, operation, a, b=None):
        node = self.node("FunctionNodeIntegerMath", operation=operation)
        self.set_input(node, 0, a)
        if b is not None:
            self.set_input(node, 1, b)
        return node.outputs[0]

    def compare_int(self, a, b, operation="EQUAL"):
        node = self.node("FunctionNodeCompare", data_type="INT", operation=operation)
        self.set_input(node, 0, a)
        self.set_input(node, 1, b)
        return node.outputs["Result"]

    def menu_switch(self, menu, options, data_type="RGBA"):
        """A Menu Switch choosing among ``options`` ({item name: value or socket}) by ``menu``.

        Linking a group's Menu input to it gives that input (and a modifier
        showing it) a drop-down of the item names.
        """
        node = self.node("GeometryNodeMenuSwitch", data_type=data_type)
        node.enum_items.clear()
        for name in options:
            node.enum_items.new(name)
        self.set_input(node, "Menu", menu)
        for name, value in options.items():
            self.set_input(node, name, value)
        return node.outputs[0]

    def color_ramp(self, factor, stops):
        """A Color Ramp with ``stops`` = [(position, (r, g, b)), ...] in linear RGB."""
        node = self.node("ShaderNodeValToRGB", {"Fac": factor})
        elements = node.color_ramp.elements
        while len(elements) > len(stops):
            elements.remove(elements[-1])
        while len(elements) < len(stops):
            elements.new(1.0)
        for element, (position, rgb) in zip(elements, stops):
            element.position = position
            element.color = (*rgb, 1.0)
        return node.outputs["Color"]


def find_socket(sockets, key):
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
