"""Designs (preset dicts, ``core.design``) to the nodes of "CNN Design" trees and back, and bundles to designs.

``fill_tree(tree, design)`` makes the nodes and links of a design, laid out
left to right by depth (branches stacked below); ``design_from_tree(tree)``
writes the design back: layer names are node names, inputs come from the
links (an Add or Concatenate takes its multi-input socket's links in order)
and the layer order follows the data flow. A node remembers the design's own
spelling of each argument (``3`` or ``[3, 3]``, a float the node stores in
single precision) and writes it back unchanged while its value is not edited,
so a preset converts to nodes and back exactly. ``analyse_tree`` gives what
the tree's nodes show. An invalid design raises nothing here, its problems
are data; only a design or bundle no nodes can show is refused
(``checked_structure``, ``design_from_bundle``).

This module only reads and writes the nodes of a tree it is given; it imports
neither bpy nor ``tree``, which defines the node types, analyses trees as they
are edited (with this module) and makes new trees (``tree.tree_from_design``).
"""

import heapq
import json
from dataclasses import dataclass, field

import numpy as np

from ..core import design as design_core
from ..core.errors import BlenderCNNError
from ..core.layer_specs import designable_layer_types, spec_of

DESIGN_KEYS = ("name", "description", "input_shape", "class_names", "layers", "training")
COLUMN_SPACING = 280
ROW_SPACING = 420
INPUT_NODE = "BCNN_DesignInput"


def node_idname(layer_type):
    """The node type that stands for a design's layer type (``"Input"``: the network's input)."""
    return INPUT_NODE if layer_type == "Input" else f"BCNN_Design{layer_type}"


DESIGNABLE_TYPES = frozenset(designable_layer_types())
DESIGN_NODE_TYPES = frozenset([INPUT_NODE, *map(node_idname, DESIGNABLE_TYPES)])


def is_design_node(node):
    """Whether ``node`` is one of the designer's (a layer or the Input), not a reroute or a frame."""
    return node.bl_idname in DESIGN_NODE_TYPES


@dataclass
class Analysis:
    """What the tree's design is: per node its DesignLayer and problem, the totals."""

    layers: dict = field(default_factory=dict)  # node name -> DesignLayer
    problems: dict = field(default_factory=dict)  # node name -> reason
    design_problem: str = None  # problems of the design as a whole
    total_params: int = 0
    error: str = None  # an unexpected failure of the analysis itself

    @property
    def problem_count(self):
        return len(self.problems) + (1 if self.design_problem else 0) + (1 if self.error else 0)


# ---------------------------------------------------------------- argument values


def list_text(value):
    """How a list argument (``target_shape``, ZeroPadding2D's ``padding``) reads in its text field."""
    return json.dumps(value)


def parse_list(text):
    """The value of a list argument's text: JSON, with the outer brackets optional ('7, 7, 1'); else the text."""
    for candidate in (text, f"[{text}]"):
        try:
            return json.loads(candidate)
        except (TypeError, ValueError):
            continue
    return text


def class_names_of(input_node):
    return [name.strip() for name in input_node.class_names.split(",") if name.strip()]


def _float32(value):
    return float(np.float32(value))


def _short_float(value):
    """A single-precision property value as the shortest decimal that reads back the same."""
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if np.float32(float(text)) == np.float32(value):
            return float(text)
    return float(value)


def node_value(node, argument):
    """The argument's value on ``node``, as plain Python (pairs as ``[a, b]``); None when an optional is unset."""
    if argument.optional and not getattr(node, argument.use_prop):
        return None
    value = getattr(node, argument.prop)
    if argument.kind == "pair":
        return [int(value[0]), int(value[1])]
    if argument.kind in ("int", "axis"):
        return int(value)
    if argument.kind == "bool":
        return bool(value)
    if argument.kind == "float":
        return _short_float(value)
    if argument.kind == "list":
        return parse_list(value)
    return str(value)


def _matches(argument, value, given):
    """Whether the design's own spelling ``given`` means the node's ``value``."""
    if given is None or value is None:
        return given is None and value is None or (argument.kind == "enum" and given is None and value == "linear")
    try:
        if argument.kind == "pair":
            pair = [given, given] if not isinstance(given, (list, tuple)) else list(given)
            return pair == value and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        if argument.kind == "float":
            return not isinstance(given, bool) and _float32(given) == _float32(value)
        if argument.kind in ("int", "axis", "bool"):
            return type(given) is type(value) and given == value
        return given == value
    except (TypeError, ValueError, OverflowError):
        return False


def _written(argument, value):
    """How a value the user set is written: a pair of equal sizes as one integer."""
    if argument.kind == "pair" and value is not None and value[0] == value[1]:
        return value[0]
    return value


def set_node_value(node, argument, value):
    """Show the design's ``value`` on the node; False when the property cannot hold it (kept verbatim then)."""
    try:
        if argument.optional:
            setattr(node, argument.use_prop, value is not None)
            if value is None:
                return True
        if argument.kind == "pair":
            pair = [value, value] if not isinstance(value, (list, tuple)) else list(value)
            if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
                return False
            setattr(node, argument.prop, pair)
            return list(getattr(node, argument.prop)) == pair
        if argument.kind in ("int", "axis"):
            if isinstance(value, bool) or not isinstance(value, int):
                return False
            setattr(node, argument.prop, value)
            return getattr(node, argument.prop) == value
        if argument.kind == "bool":
            if not isinstance(value, bool):
                return False
            setattr(node, argument.prop, value)
            return True
        if argument.kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
            setattr(node, argument.prop, float(value))
            return _float32(getattr(node, argument.prop)) == _float32(value)
        if argument.kind == "list":
            setattr(node, argument.prop, list_text(value))
            return True
        if argument.kind == "enum":
            if value is None and argument.default == "linear":
                value = "linear"
            if value not in argument.items:
                return False
            setattr(node, argument.prop, value)
            return True
    except (TypeError, ValueError, OverflowError):
        return False
    return False


def _given(node):
    try:
        given = json.loads(node.given_json) if node.given_json else {}
    except ValueError:
        given = {}
    return given if isinstance(given, dict) else {}


def entry_of(node):
    """The design entry (``type``, ``name``, arguments; no ``inputs``) a layer node stands for."""
    given = _given(node)
    given_args, extra = given.get("args", {}), given.get("extra", {})
    entry = {"type": node.layer_type, "name": node.name}
    for argument in node.arguments:
        value = node_value(node, argument)
        if argument.name in given_args and _matches(argument, value, given_args[argument.name]):
            entry[argument.name] = given_args[argument.name]
        elif argument.optional:
            if value is not None or argument.name in given_args:
                entry[argument.name] = _written(argument, value)
        elif argument.required or argument.name in given_args or _written(argument, value) != argument.default:
            entry[argument.name] = _written(argument, value)
    for key, value in extra.items():
        entry.setdefault(key, value)
    return entry


# ---------------------------------------------------------------- tree -> design


class _Graph:
    """The tree read as a design: the Input node, the layer nodes in design order, their sources."""

    def __init__(self, tree):
        nodes = [node for node in tree.nodes if is_design_node(node)]
        inputs = [node for node in nodes if node.layer_type == "Input"]
        self.input = inputs[0] if inputs else None
        self.problems = {node.name: "a design has one Input node; remove this one" for node in inputs[1:]}
        layers = [node for node in nodes if node.layer_type != "Input"]
        self.sources = {}
        for node in layers:
            names = []
            for link in node.inputs[0].links if len(node.inputs) else ():
                source = _through_reroutes(link)
                if source is None or not is_design_node(source):
                    continue
                names.append(design_core.INPUT_NAME if source == self.input else source.name)
            self.sources[node.name] = names
            if not names:
                self.problems[node.name] = "has no input: link a layer's (or the Input's) Tensor output to it"
            elif any(source in self.problems and self._is_extra_input(source, inputs) for source in names):
                self.problems[node.name] = "takes input from a second Input node"
        self.layers = _design_order(layers, self.sources)

    @staticmethod
    def _is_extra_input(name, inputs):
        return any(node.name == name for node in inputs[1:])


def _through_reroutes(link):
    node, seen = link.from_node, set()
    while node is not None and node.bl_idname == "NodeReroute" and node.name not in seen:
        seen.add(node.name)
        links = node.inputs[0].links if len(node.inputs) else ()
        node = links[0].from_node if links else None
    return node


def _design_order(layers, sources):
    """Layer nodes each after its sources (ties by creation order, then x); the output (a sink) last."""
    by_name = {node.name: node for node in layers}

    def key(node):
        return (node.order, node.location.x, node.name)

    waiting = {name: {s for s in sources[name] if s in by_name} for name in by_name}
    users = {name: [] for name in by_name}
    for name, needed in waiting.items():
        for source in needed:
            users[source].append(name)
    ready = [(key(by_name[name]), name) for name, needed in waiting.items() if not needed]
    heapq.heapify(ready)
    order, done = [], set()
    while ready:
        _key, name = heapq.heappop(ready)
        order.append(by_name[name])
        done.add(name)
        for user in users[name]:
            waiting[user].discard(name)
            if not waiting[user] and user not in done:
                heapq.heappush(ready, (key(by_name[user]), user))
    order += sorted((node for node in layers if node.name not in done), key=key)  # cycles: the design says so
    sinks = [node for node in order if not users[node.name]]
    if sinks and order[-1] is not sinks[-1]:
        order.remove(sinks[-1])
        order.append(sinks[-1])
    return order


def design_from_tree(tree):
    """The design (preset dict) a "CNN Design" tree stands for; best effort for an invalid tree."""
    return _design_and_graph(tree)[0]


def _design_and_graph(tree):
    graph = _Graph(tree)
    try:
        extra = json.loads(tree.extra_json) if tree.extra_json else {}
    except ValueError:
        extra = {}
    design = {"name": tree.design_name}
    if tree.description:
        design["description"] = tree.description
    if graph.input is not None:
        design["input_shape"] = [int(size) for size in graph.input.input_shape[: graph.input.rank]]
        given = _given(graph.input)
        names = class_names_of(graph.input)
        given_names = given.get("class_names")
        design["class_names"] = (
            given_names
            if isinstance(given_names, list) and [str(name).strip() for name in given_names] == names
            else names
        )
    layers, previous = [], design_core.INPUT_NAME
    for node in graph.layers:
        entry = entry_of(node)
        sources = graph.sources[node.name]
        if sources and (_given(node).get("inputs") or sources != [previous]):
            entry["inputs"] = list(sources)
        layers.append(entry)
        previous = node.name
    design["layers"] = layers
    if tree.training_json:
        try:
            design["training"] = json.loads(tree.training_json)
        except ValueError:
            design["training"] = tree.training_json  # the design's check says what is wrong with it
    for key, value in extra.items() if isinstance(extra, dict) else ():
        design.setdefault(key, value)
    return design, graph


def analyse_tree(tree):
    """The tree's ``Analysis``: per node its DesignLayer and problem, the totals."""
    design, graph = _design_and_graph(tree)
    result = Analysis()
    if graph.input is None:
        result.design_problem = "add an Input node (Add > Input) and link layers to it"
        result.problems.update(graph.problems)
        return result
    infos = design_core.infer_shapes(design)
    node_of = {design_core.INPUT_NAME: graph.input.name}
    for info in infos:
        node_name = node_of.get(info.name, info.name)
        result.layers.setdefault(node_name, info)
        if info.problem:
            problem = info.problem
            if info.name == design_core.INPUT_NAME:
                problem = problem.replace("'input_shape'", "the input shape")
            result.problems[node_name] = (
                problem if node_name not in result.problems else f"{result.problems[node_name]}; {problem}"
            )
    result.problems.update(graph.problems)  # a node's own structure first: a missing link explains the rest
    design_problem = design_core.problems(design).get(design_core.DESIGN_KEY)
    result.design_problem = design_problem
    result.total_params = design_core.total_parameters(info for info in infos if info.ok)
    return result


# ---------------------------------------------------------------- design -> tree


def checked_structure(design):
    """``design`` when the designer can show it: a dict whose input shape and layer types have nodes; else
    BlenderCNNError. Whether the design is valid is the nodes' business: its problems show on them."""
    if not isinstance(design, dict) or not isinstance(design.get("layers"), list):
        raise BlenderCNNError("design", "must be a dict with a list of 'layers'")
    shape = design.get("input_shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise BlenderCNNError(
            f"design {design.get('name')!r}",
            f"has input_shape {shape!r}; the node designer takes 1 to 3 positive sizes",
        )
    unknown = sorted(
        {
            str(entry.get("type")) if isinstance(entry, dict) else repr(entry)
            for entry in design["layers"]
            if not isinstance(entry, dict) or entry.get("type") not in DESIGNABLE_TYPES
        }
    )
    if unknown:
        raise BlenderCNNError(
            f"design {design.get('name')!r}", f"has layer types the designer has no node for: {', '.join(unknown)}"
        )
    return design


def fill_tree(tree, design, name=None):
    """Replace the nodes of ``tree`` with the layers of ``design`` (as ``checked_structure`` passed it).

    The tree analyses itself on every node added, so its owner suspends that
    while this runs (``tree.tree_from_design``).
    """
    tree.nodes.clear()
    tree.design_name = str(design.get("name") or name or "design")
    tree.description = str(design.get("description") or "")
    tree.training_json = json.dumps(design["training"]) if "training" in design else ""
    extra = {key: value for key, value in design.items() if key not in DESIGN_KEYS}
    tree.extra_json = json.dumps(extra) if extra else ""
    _add_nodes(tree, design)


def _add_nodes(tree, design):
    input_node = tree.nodes.new(INPUT_NODE)
    input_node.name = design_core.INPUT_NAME
    input_node.order = 0
    shape = design.get("input_shape")
    given_input = {}
    input_node.rank = len(shape)
    input_node.input_shape = list(shape) + [1] * (3 - len(shape))
    class_names = design.get("class_names")
    if isinstance(class_names, list):
        input_node.class_names = ", ".join(str(name) for name in class_names)
        given_input["class_names"] = class_names
    input_node.given_json = json.dumps(given_input)

    nodes = {design_core.INPUT_NAME: input_node}
    previous = design_core.INPUT_NAME
    sources = {}
    for position, entry in enumerate(design["layers"], start=1):
        node = tree.nodes.new(node_idname(entry["type"]))
        node.name = str(entry.get("name") or f"{entry['type'].lower()}_{position}")
        node.order = position
        args, extra = {}, {}
        arguments = {argument.name: argument for argument in node.arguments}
        for key, value in entry.items():
            if key in ("type", "name", "inputs"):
                continue
            if key in arguments and set_node_value(node, arguments[key], value):
                args[key] = value
            else:
                extra[key] = value
        node.given_json = json.dumps({"args": args, "extra": extra, "inputs": "inputs" in entry})
        listed = entry.get("inputs")
        sources[node.name] = list(listed) if isinstance(listed, list) and listed else [previous]
        nodes[node.name] = node
        previous = node.name
    for name, names in sources.items():
        socket = nodes[name].inputs[0]
        # A multi-input socket lists the link made last first: link in reverse to read them in order.
        for source in reversed(names) if socket.is_multi_input else names:
            if source in nodes and nodes[source] is not nodes[name]:
                tree.links.new(nodes[source].outputs[0], socket)
    _lay_out(tree, nodes, sources)


def _lay_out(tree, nodes, sources):
    """Columns by depth (longest path from the input), rows in each column in design order."""
    depth = {design_core.INPUT_NAME: 0}
    for _ in range(len(nodes)):
        changed = False
        for name, names in sources.items():
            value = 1 + max((depth.get(source, 0) for source in names if source in nodes), default=0)
            if depth.get(name) != value:
                depth[name], changed = value, True
        if not changed:
            break
    rows = {}
    for name, node in nodes.items():
        column = min(depth.get(name, 0), len(nodes))
        row = rows.get(column, 0)
        rows[column] = row + 1
        node.location = (column * COLUMN_SPACING, -row * ROW_SPACING)


# ---------------------------------------------------------------- bundle -> design


def design_from_bundle(bundle):
    """A design of a network bundle's layers: types, inputs, and the config keys the designer's rules take.

    Config values Keras stores as defaults are written too (``None`` ones and
    ``data_format`` are left out). Raises BlenderCNNError naming the layer
    types the designer has no node for.
    """
    manifest_layers = list(bundle.layers)
    input_names = {layer.name for layer in manifest_layers if layer.type == "InputLayer"}
    if len(bundle.inputs) > 1 or len(bundle.outputs) > 1:
        raise BlenderCNNError(
            bundle.name,
            f"has {len(bundle.inputs)} inputs and {len(bundle.outputs)} outputs; "
            "the designer designs networks of one input and one output",
        )
    unknown = sorted(
        {layer.type for layer in manifest_layers if layer.type != "InputLayer" and layer.type not in DESIGNABLE_TYPES}
    )
    if unknown:
        raise BlenderCNNError(bundle.name, f"has layer types the designer has no node for: {', '.join(unknown)}")
    layers, previous = [], design_core.INPUT_NAME
    for layer in manifest_layers:
        if layer.type == "InputLayer":
            continue
        allowed = spec_of(layer.type).argument_names
        entry = {"type": layer.type, "name": layer.name}
        for key in allowed:
            value = (layer.config or {}).get(key)
            if value is None or key == "data_format":
                continue
            entry[key] = list(value) if isinstance(value, tuple) else value
        if layer.type == "ZeroPadding2D" and "padding" in entry:
            entry["padding"] = [list(side) for side in entry["padding"]]
        inputs = [design_core.INPUT_NAME if name in input_names else name for name in layer.inputs]
        if inputs != [previous]:
            entry["inputs"] = inputs
        layers.append(entry)
        previous = layer.name
    return {
        "name": bundle.name,
        "input_shape": [int(size) for size in bundle.input_shape],
        "class_names": [str(name) for name in bundle.class_names],
        "layers": layers,
    }
