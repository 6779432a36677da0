"""The top-level node tree of one network: its modifier inputs and the groups wired together.

The tree is per network because its labels hold that network's layer names;
everything else lives in the shared groups of ``groups.py``.
"""

from dataclasses import dataclass

from ..core import colormaps
from ..core.placement import opening_order
from . import annotations, groups, operations, timeline
from .builder import VERSION_PROPERTY, TreeBuilder, ensure_group, input_items
from .graph import add_graph_labels, add_placed_table, ensure_graph_links, ensure_graph_position, item_openings
from .layer_controls import add_layer_inputs, has_controls, layer_fields, line_direction

# False joins the cells' instances with the other parts' as they are, as before the nesting: tests and benchmarks
# compare the two.
nest_cells = True

# Modifier inputs: (name, kind, default, min, max, description). Defaults suit a cell size of 1.
LAYOUT_INPUTS = (
    ("Layer Spacing", "FLOAT", 40.0, 0.0, None, "Distance between layers along the network"),
    ("Map Gap", "FLOAT", 2.0, 0.0, None, "Space between the feature maps of a layer"),
    ("Cell Size", "FLOAT", 1.0, 0.001, None, "Distance between neighbouring cells"),
    ("Neuron Scale", "FLOAT", 2.5, 0.01, None, "Size of dense-layer neurons relative to feature-map cells"),
    (
        "Output Scale",
        "FLOAT",
        1.0,
        0.01,
        None,
        "Size of the output neurons that carry class names and probabilities, relative to other neurons: their "
        "texts grow with them",
    ),
    ("Cell Gap", "FLOAT", 0.12, 0.0, 0.95, "Share of each cell left empty"),
    ("Edge Radius", "FLOAT", 0.15, 0.0, None, "Radius of the strongest connection"),
    ("Label Size", "FLOAT", 3.5, 0.0, None, "Height of the layer labels"),
    ("Line Direction", "FLOAT", 0.0, 0.0, 1.0, "Where a line of maps runs: 0 = across the wall, 1 = along the network"),
    ("Fold to Max", "BOOLEAN", False, None, None, "A folded layer shows the maximum over its channels, not the mean"),
    # The controls of the article's Unity version (docs/animation.md, "Opening the network").
    (
        "Expansion Level",
        "FLOAT",
        1.0,
        0.0,
        1.0,
        "0 = every layer folded and every block collapsed, 1 = as each one's Fold and Expand say; between, they "
        "open one after another along the network",
    ),
    (
        "Filter Spread",
        "FLOAT",
        1.0,
        0.0,
        None,
        "How far a layer's maps stand from its centre: 0 = stacked there, 1 = as the layout places them, 2 = twice",
    ),
    ("Reduced Depth", "INT", 0, 0, None, "Every layer shows at most its first N maps (0: all)"),
    (
        "Collapse Input",
        "FLOAT",
        0.0,
        0.0,
        1.0,
        "0 = the input's channels (R, G, B...) side by side, 1 = stacked one behind another as one image",
    ),
    (
        "Lane Spacing",
        "FLOAT",
        40.0,
        0.0,
        None,
        "Distance between a main path and the branches beside it, and between rows of a long network",
    ),
    (
        "Row Length",
        "INT",
        1000,
        1,
        None,
        "Columns of layers (or collapsed blocks) in a row before the network turns into the next row",
    ),
    ("Link Radius", "FLOAT", 0.6, 0.0, None, "Radius of the links between the layers of a graph"),
)
BLOCKS_PANEL = "Blocks"


@dataclass(frozen=True)
class GraphObjects:
    """What the tree needs to place a graph: the layer table and links objects, and the scene plan."""

    layer_table: object
    links: object
    plan: object  # core.scene_plan.ScenePlan


# What the network shows over training, as LAYOUT_INPUTS: keyframe them to animate.
TIMELINE_INPUTS = (
    ("Epoch", "FLOAT", 0.0, None, None, "Epoch number shown; between two epochs their values blend"),
    ("Sample", "FLOAT", 0.0, 0.0, None, "Input sample shown; between two samples their activations cross-fade"),
    (
        "Show Training Overlay",
        "BOOLEAN",
        False,
        None,
        None,
        "Epoch, loss and accuracy in the top left of the camera's view",
    ),
    ("Overlay Size", "FLOAT", 0.02, 0.0, None, "Height of the overlay's text as a share of the frame's width"),
)
# Modifier inputs of the connections, as LAYOUT_INPUTS.
CONNECTION_INPUTS = (
    (
        "Bundling Strength",
        "FLOAT",
        1.0,
        0.0,
        1.0,
        "0 = straight connections, 1 = fully bundled; keyframe it to gather them",
    ),
    ("Highlight Neuron", "INT", -1, -1, None, "Cell index of a dense neuron whose connections stay bright (-1: none)"),
    ("Dimmed Brightness", "FLOAT", 0.12, 0.0, 1.0, "Brightness of the other connections while a neuron is highlighted"),
)
# Modifier inputs of the importance view, as LAYOUT_INPUTS.
IMPORTANCE_INPUTS = (
    (
        "Show Importance",
        "FLOAT",
        0.0,
        0.0,
        1.0,
        "0 = cells and connections colored by activation and weight, 1 = by importance; keyframe it to fade",
    ),
    (
        "Importance Class",
        "INT",
        -1,
        -1,
        None,
        "Class whose importance is shown; -1: all classes, each part in the color of the class it matters most for",
    ),
)
# Modifier inputs of the look: (name, kind, default, description). A menu gets its items from the
# groups' Menu Switches once linked, and starts on the first: the colormaps' defaults.
STYLE_INPUTS = (
    ("Activation Colormap", "MENU", colormaps.ACTIVATION_COLORMAP, "Sequential colormap of the activations"),
    (
        "Normalize Across Network",
        "BOOLEAN",
        False,
        "Color every layer on the whole network's range instead of its own (0 to the layer's maximum)",
    ),
    ("Weight Colormap", "MENU", colormaps.WEIGHT_COLORMAP, "Diverging colormap of the weights, centred on zero"),
    ("Show Legend", "BOOLEAN", True, "A color bar under the input layer saying what the colors mean"),
    ("Show Connections", "BOOLEAN", True, "The curves between dense layers, one per drawn weight"),
    (
        "Realize in Render",
        "BOOLEAN",
        True,
        "Final renders get the cells as one mesh (faster to render up to millions of cells); the viewport always "
        "draws them as instances of one quad. Turn off for networks too large to realize in memory",
    ),
)


# The materials a network's tree is given, as ``scene.materials.ensure_materials`` makes them.
MATERIAL_KINDS = ("cell", "edge", "label", "highlight")
# The network's own objects it reads: (input name, description).
SOURCE_INPUTS = (
    ("Cells", "The mesh that holds one vertex per cell"),
    ("History", "The mesh that holds one vertex per epoch: its number and metrics"),
    ("Importance", "The mesh that holds the importance of every channel and unit"),
)


def ensure_network_skeleton():
    """A tree that holds what every network's tree has, whatever the network: the inputs, each with its default,
    range and description, the output, and the nodes that show the epoch, sample and importance, draw the cells
    and connections and the training overlay (named as ``SKELETON_NODES``), waiting for the network's own nodes.

    Each network's tree starts as a copy of it (``build_network_tree``): building these anew, each input's
    property, node, link and value a change after which Blender updates the whole tree, took about a sixth of a
    first network's build.
    """
    skeleton = ensure_group("BCNN Skeleton of Network Trees", _build_network_skeleton)
    # Nothing uses it, only copies it: without a fake user a saved file would lose it, and the next network
    # built there would build it again.
    skeleton.use_fake_user = True
    return skeleton


# The skeleton's nodes the network's own connect to, by what they do: their names in the tree.
SKELETON_NODES = {
    "epoch position": "Epoch Position",
    "cells shown": "Cells Shown",
    "feature maps": "Feature Maps",
    "connections": "Connections",
    "connections shown": "Connections Shown",
    "overlay shown": "Training Overlay Shown",
}


def _build_network_skeleton(b):
    settings = _add_network_inputs(b)

    def named(node, key):
        node.name = SKELETON_NODES[key]
        return node

    with b.frame("The epoch, sample and importance shown"):
        history = b.object_geometry(settings["History"])
        position = named(
            b.group(timeline.ensure_epoch_position(), {"History": history, "Epoch": settings["Epoch"]}),
            "epoch position",
        )
        epoch_blend = _epoch_blend(position)
        trained = b.group(
            timeline.ensure_trained_cells(),
            {"Cells": b.object_geometry(settings["Cells"]), "Sample": settings["Sample"], **epoch_blend},
        )
        showing_importance = b.greater_than(settings["Show Importance"], 0.0)
        importance = b.group(
            timeline.ensure_importance(from_table=True),
            {
                "Geometry": trained.outputs[0],
                "Table": b.object_geometry(settings["Importance"]),
                **epoch_blend,
                "Class": settings["Importance Class"],
            },
        )
        named(_only_when(b, showing_importance, trained.outputs[0], importance.outputs[0]).node, "cells shown")
    with b.frame("Cells and connections drawn"):
        # Their cells, the network's layer table and its class count come from the network's own nodes.
        named(
            b.group(
                groups.ensure_feature_maps(),
                {
                    "Cell Gap": settings["Cell Gap"],
                    "Colormap": settings["Activation Colormap"],
                    "Across Network": settings["Normalize Across Network"],
                    "Show Importance": settings["Show Importance"],
                    "Material": settings[_material_input("cell")],
                },
            ),
            "feature maps",
        )
        trained_connections = b.group(
            timeline.ensure_trained_weights("CURVE"), {"Geometry": settings["Geometry"], **epoch_blend}
        )
        trained_connections = _only_when(
            b,
            showing_importance,
            trained_connections.outputs[0],
            b.group(
                timeline.ensure_importance(from_table=False),
                {"Geometry": trained_connections.outputs[0], **epoch_blend, "Class": settings["Importance Class"]},
            ).outputs[0],
        )
        edges = named(
            b.group(
                groups.ensure_connections(),
                {
                    "Curves": trained_connections,
                    "Colormap": settings["Weight Colormap"],
                    **_same_named(
                        settings, "Edge Radius", "Bundling Strength", "Highlight Neuron", "Dimmed Brightness"
                    ),
                    "Show Importance": settings["Show Importance"],
                    "Material": settings[_material_input("edge")],
                },
            ),
            "connections",
        )
        named(b.switch("GEOMETRY", settings["Show Connections"], true=edges.outputs[0]).node, "connections shown")
    with b.frame("The training overlay"):
        overlay = b.group(
            timeline.ensure_training_overlay(),
            {
                "History": history,
                "Epoch": settings["Epoch"],
                **epoch_blend,
                "Size": settings["Overlay Size"],
                "Material": settings[_material_input("label")],
            },
        ).outputs[0]
        named(b.switch("GEOMETRY", settings["Show Training Overlay"], true=overlay).node, "overlay shown")


def _epoch_blend(position):
    """The Epoch Low/High/Factor sockets of the Epoch Position node ``position``: what picks an epoch's values."""
    return {f"Epoch {name}": position.outputs[name] for name in ("Low", "High", "Factor")}


def _add_network_inputs(b):
    """Add every network's inputs and output; returns the inputs' sockets by name."""
    sockets = {"Geometry": b.add_input("Geometry", "GEOMETRY")}
    for label, kind, default, low, high, description in (
        TIMELINE_INPUTS + LAYOUT_INPUTS + CONNECTION_INPUTS + IMPORTANCE_INPUTS
    ):
        sockets[label] = b.add_input(label, kind, default, low, high, description)
    for label, kind, default, description in STYLE_INPUTS:
        sockets[label] = b.add_input(label, kind, None if kind == "MENU" else default, description=description)
    for label, description in SOURCE_INPUTS:
        sockets[label] = b.add_input(label, "OBJECT", description=description)
    for kind in MATERIAL_KINDS:
        sockets[_material_input(kind)] = b.add_input(_material_input(kind), "MATERIAL")
    operations.add_operation_inputs(b)
    b.add_output("Geometry", "GEOMETRY")
    return sockets


def _material_input(kind):
    return f"{kind.title()} Material"


def build_network_tree(
    name,
    layers,
    class_names,
    cells_object,
    history_object,
    materials,
    operation_objects,
    label_notes=None,
    importance_object=None,
    importance_method="",
    stored_classes=0,
    graph=None,
    output_heads=None,
):
    """A new modifier tree for one network, for the Curves object that holds its connections.

    The cells come from ``cells_object`` (a mesh of one vertex per cell), the
    epochs' numbers and metrics from ``history_object`` (one vertex per epoch). The
    tree sits on a Curves object because Cycles renders the curves a Mesh
    object's nodes make as nothing, while a Curves object renders both.
    ``layers`` are ``core.cells.LayerCells``; ``materials`` maps "cell",
    "edge", "label" and "highlight" to materials; ``operation_objects`` (from
    ``scene.operations.add_operation_objects``) hold what the receptive fields,
    kernels, pooling, flatten and probabilities are drawn from; ``label_notes`` maps layer names to a
    line added under their label. ``importance_object`` holds the importance
    table (``core/importance_timeline.py``) the cells look up, computed by
    ``importance_method`` (the legend's words) for ``stored_classes`` classes.
    ``graph`` (``GraphObjects``) places units, blocks and rows and draws the
    links of a graph; without it the layers stand in one row. ``output_heads``
    (``core.scene_plan.OutputLabels``, one per output of the network) say which
    neurons get their class name and probability; by default every neuron of
    the last layer, named by ``class_names``.
    Returns the node group.
    """
    assert set(materials) == set(MATERIAL_KINDS), f"materials for {MATERIAL_KINDS}, not {sorted(materials)}"
    tree = ensure_network_skeleton().copy()
    del tree[VERSION_PROPERTY]  # the network's own tree, which no code rebuilds
    tree.name = f"BCNN Network {name}"
    tree.is_modifier = True
    tree.description = f"The 3D scene of the network {name}"
    b = TreeBuilder(tree)
    inputs = b.inputs()
    for source, value in (("Cells", cells_object), ("History", history_object), ("Importance", importance_object)):
        b.interface_inputs[source].default_value = value
    for kind, material in materials.items():
        b.interface_inputs[_material_input(kind)].default_value = material
    settings = {
        label: inputs[label]
        for label, *_rest in TIMELINE_INPUTS + LAYOUT_INPUTS + CONNECTION_INPUTS + IMPORTANCE_INPUTS + STYLE_INPUTS
    }
    material_inputs = {kind: inputs[_material_input(kind)] for kind in MATERIAL_KINDS}
    named_heads = operations.labeled_heads(layers, class_names, output_heads)
    operation_inputs = operations.operation_inputs(
        b, inputs, layers, operation_objects, max((len(names) for _cells, names, _units in named_heads), default=0)
    )
    if graph is not None:
        table_source = b.add_input(
            "Layer Table",
            "OBJECT",
            graph.layer_table,
            description="The mesh that holds one point per layer: its block and place",
        )
        links_source = b.add_input(
            "Links", "OBJECT", graph.links, description="The curves that hold the links between the layers of a graph"
        )
        expand_inputs = _add_block_inputs(b, graph.plan)
    # Before any node: Blender updates the whole tree on each input added, and the tree is smallest now.
    if graph is not None and not graph.plan.graph.detailed:
        layer_inputs = add_layer_inputs(b, layers, graph.plan.item_layers)
    else:
        layer_inputs = add_layer_inputs(b, layers)
    skeleton = {key: tree.nodes[name] for key, name in SKELETON_NODES.items()}
    epoch_blend = _epoch_blend(skeleton["epoch position"])
    trained = skeleton["cells shown"].outputs[0]
    class_count = max(len(class_names), 1)
    placed_table = None
    # One part, so that the layers' fields stay in it: as two, each field crossed from one to the other.
    with b.part("Where each layer and its cells stand"):
        if graph is not None:
            table = b.object_geometry(table_source)
            item_of_cell = b.sample_index(table, b.attribute("item"), b.attribute("layer"))
            openings, opened = _openings(b, settings["Expansion Level"], layers, graph, item_of_cell)
            # The Expansion Level caps each block's own Expand.
            expand_inputs = {
                position: b.minimum(expand, openings[position]) for position, expand in expand_inputs.items()
            }
            placed_table = add_placed_table(b, table, graph.plan.items, expand_inputs, settings)
        else:
            _openings_by_layer, opened = _openings(b, settings["Expansion Level"], layers)
        if graph is not None and not graph.plan.graph.detailed:
            per_layer = layer_fields(b, layer_inputs, item_of_cell)
        else:
            per_layer = layer_fields(b, layer_inputs)
        # The Expansion Level caps each layer's openness as it caps a block's: its maps fold until its turn.
        per_layer["Fold"] = b.maximum(per_layer["Fold"], b.subtract(1.0, opened))
        per_layer["Line Direction"] = line_direction(b, per_layer["Line Direction"], settings["Line Direction"])
        stack = b.switch("FLOAT", _is_input(b, layers, graph), 0.0, settings["Collapse Input"])

        # One point per layer: its maps' shape and activation range, and in a graph its place.
        layer_table = {"Layer Table": placed_table} if placed_table is not None else {}
        layout = b.group(
            groups.ensure_cell_layout(),
            {
                "Geometry": trained,
                **_same_named(
                    settings,
                    "Layer Spacing",
                    "Map Gap",
                    "Cell Size",
                    "Fold to Max",
                    "Filter Spread",
                    "Reduced Depth",
                ),
                "Neuron Scale": _neuron_scale(b, settings, layers, class_names, output_heads),
                **per_layer,
                "Stack": stack,
                **layer_table,
            },
        )
        placed, maps = layout.outputs["Geometry"], layout.outputs["Maps"]
    placed, operation_parts = operations.add_operation_nodes(
        b, operation_inputs, placed, settings, material_inputs, layers, class_names, epoch_blend, output_heads
    )
    # The skeleton's cells and connections drawn, with the network's cells, layer table and class count.
    layer_table = {"Layer Table": placed_table} if placed_table is not None else {}
    cells = skeleton["feature maps"]
    for key, value in {"Cells": placed, **layer_table, "Class Count": class_count}.items():
        b.set_input(cells, key, value)
    for key, value in {"Cells": placed, "Class Count": class_count}.items():
        b.set_input(skeleton["connections"], key, value)
    # The cells join the other parts as one instance that holds them: joined as they are, all of them would be
    # copied and given every attribute the other parts' instances have (VGG16: 0.7 GB at the peak, about a
    # second). Readers see through it (scene/drawn.py's DrawnInstances).
    parts = [
        b.node("GeometryNodeGeometryToInstance", {0: cells.outputs[0]}).outputs[0] if nest_cells else cells.outputs[0],
        skeleton["connections shown"].outputs[0],
    ]
    activation_colors = {
        "Colormap": settings["Activation Colormap"],
        "Across Network": settings["Normalize Across Network"],
    }

    with b.part("Legend, labels and the links of a graph"):
        legend = b.group(
            groups.ensure_legend(),
            {
                "Cells": placed,
                **activation_colors,
                "Size": settings["Label Size"],
                # A unit's label under the input (its rescaling and normalization named) runs wider than a layer's.
                "Drop": 6.5 if graph is None or graph.plan.graph.detailed else 8.5,
                "Show Importance": settings["Show Importance"],
                "Importance Title": _importance_title(
                    b, importance_method, class_names[:stored_classes], settings["Importance Class"]
                ),
                "Cell Material": material_inputs["cell"],
                "Label Material": material_inputs["label"],
                **layer_table,
                "Maps": maps,
            },
        ).outputs[0]
        parts.append(b.switch("GEOMETRY", settings["Show Legend"], true=legend))

        label_margin = b.multiply(settings["Label Size"], 0.6)
        if graph is None or graph.plan.graph.detailed:
            for layer in layers:
                if not layer.count:
                    continue
                parts.append(
                    b.group(
                        groups.ensure_layer_label(),
                        {
                            "Maps": maps,
                            "Layer": layer.layer_index,
                            "Size": settings["Label Size"],
                            "Text": "\n".join(
                                [layer.label, *([label_notes[layer.name]] if layer.name in (label_notes or {}) else [])]
                            ),
                            "Margin": label_margin,
                            "Material": material_inputs["label"],
                        },
                    ).outputs[0]
                )
        else:
            parts.append(
                _unit_labels(
                    b,
                    graph.plan,
                    placed_table,
                    settings,
                    label_margin,
                    material_inputs["label"],
                    label_notes or {},
                    layers,
                    _output_layers(layers, class_names, output_heads),
                )
            )
        if graph is not None and len(graph.plan.links["source_layer"]):
            links = b.object_geometry(links_source)
            parts.append(
                b.group(
                    ensure_graph_links(),
                    {
                        "Curves": links,
                        "Table": placed_table,
                        "Cell Size": settings["Cell Size"],
                        "Radius": settings["Link Radius"],
                        "Material": material_inputs["edge"],
                    },
                ).outputs[0]
            )
        class_labels = [
            b.group(
                groups.ensure_neuron_label(),
                {
                    "Cells": placed,
                    "Cell": output_layer.start + unit,
                    "Text": str(names[unit]),
                    "Material": material_inputs["label"],
                },
            ).outputs[0]
            for output_layer, names, units in named_heads
            for unit in units
        ]
        if class_labels:
            # The top classes' readout (Top Classes) stands for the class names beside the neurons.
            readout = b.compare(operation_inputs["Top Classes"], ">", 0)
            parts.append(b.switch("GEOMETRY", readout, b.join(class_labels)))
        else:
            parts.extend(class_labels)

    parts.extend(operation_parts)
    parts.append(skeleton["overlay shown"].outputs[0])
    b.set_outputs(Geometry=_realized_in_render(b, b.join(parts), settings["Realize in Render"]))
    b.lay_out()
    return tree


def ensure_shared_groups():
    """Every group the network trees share, built (or reused) in this file: ``{name: node group}``.

    Also what the prebuilt asset holds (``nodes/prebuilt.py``): a group a network uses and this list misses is
    built from code in every new file."""
    made = [
        ensure_network_skeleton(),
        groups.ensure_cell_layout(),
        groups.ensure_feature_maps(),
        groups.ensure_legend(),
        groups.ensure_connections(),
        groups.ensure_layer_label(),
        groups.ensure_neuron_label(),
        groups.ensure_activation_colormap(),
        groups.ensure_weight_colormap(),
        operations.ensure_focus_cell(),
        operations.ensure_receptive_field(),
        operations.ensure_kernel_taps(),
        operations.ensure_pooling_links(),
        operations.ensure_flatten_links(),
        operations.ensure_probability(),
        operations.ensure_top_classes(),
        operations.ensure_probability_numbers(),
        annotations.ensure_annotation_lines(),
        annotations.ensure_window_numbers(),
        annotations.ensure_no_inspection(),
        annotations.ensure_number_lines(),
        timeline.ensure_epoch_position(),
        timeline.ensure_trained_cells(),
        timeline.ensure_training_overlay(),
        timeline.ensure_trained_weights("CURVE"),
        timeline.ensure_trained_weights("POINT"),
        timeline.ensure_importance(from_table=True),
        timeline.ensure_importance(from_table=False),
        ensure_graph_position(),
        ensure_graph_links(),
    ]
    return {tree.name: tree for tree in made}


def _add_block_inputs(b, plan):
    """An Expand input (0 collapsed .. 1 expanded, keyframable) per block, in a Blocks panel; by item position."""
    blocks = plan.block_items
    if not blocks:
        return {}
    panel = b.add_panel(BLOCKS_PANEL)
    start = 1.0 if plan.graph.expanded_by_default else 0.0
    return {
        position: b.add_input(
            name,
            "FLOAT",
            start,
            0.0,
            1.0,
            "0 = the block as one node (its output), 1 = every unit in it; keyframe to open it",
            panel=panel,
        )
        for position, name in blocks.items()
    }


def _openings(b, level, layers, graph=None, item_of_cell=None):
    """``({slot: socket}, field)``: how far each item is open at the Expansion Level, and each cell's item's.

    Slots are item positions of the graph (``item_of_cell`` each cell's), or
    without a graph the layers, each one item.
    """
    with_maps = {layer.name for layer in layers if has_controls(layer)}
    if graph is not None:
        order = opening_order(graph.plan.graph, with_maps.__contains__)
        cell_slot, slots = item_of_cell, range(len(graph.plan.items))
    else:
        ranked = [layer.layer_index for layer in layers if layer.name in with_maps]
        order = {index: rank for rank, index in enumerate(ranked)}
        cell_slot, slots = b.attribute("layer"), [layer.layer_index for layer in layers]
    openings = item_openings(b, level, order)
    return openings, b.index_switch(cell_slot, {slot: openings.get(slot, 1.0) for slot in slots})


def _output_layers(layers, class_names, output_heads):
    """Indices of the layers whose neurons carry class names and probabilities (``operations.labeled_heads``)."""
    return sorted(
        {cells.layer_index for cells, _names, _units in operations.labeled_heads(layers, class_names, output_heads)}
    )


def _neuron_scale(b, settings, layers, class_names, output_heads):
    """Neuron Scale, times Output Scale on the layers whose neurons carry class names and probabilities: those texts
    are sized in their neurons' pitch, so the output layer can grow to make them readable alone."""
    outputs = _output_layers(layers, class_names, output_heads)
    if not outputs:
        return settings["Neuron Scale"]
    layer = b.attribute("layer")
    is_output = b.any_of(*(b.compare(layer, "==", index) for index in outputs))
    return b.multiply(settings["Neuron Scale"], b.switch("FLOAT", is_output, 1.0, settings["Output Scale"]))


def _is_input(b, layers, graph):
    """A field true on the cells of the network's input layers (with a graph: of the units that take no input)."""
    if graph is not None:
        index_of = graph.plan.layer_indices
        inputs = {index_of[unit.output] for unit in graph.plan.graph.units if not unit.inputs}
    else:
        inputs = {layer.layer_index for layer in layers if layer.type == "InputLayer"}
    layer = b.attribute("layer")
    return b.any_of(*(b.compare(layer, "==", index) for index in sorted(inputs))) if inputs else False


def _unit_labels(b, plan, table, settings, margin, material, notes, layers, output_layers=()):
    """The labels of every shown unit, and of every block while collapsed, from one zone (``nodes/graph.py``).

    The ``output_layers`` (with class names) hang their labels under their walls as Output Scale grows them."""
    shown = {layer.layer_index: layer.name for layer in layers if layer.count}
    texts = {
        index: "\n".join([text, *([notes[shown[index]]] if shown[index] in notes else [])])
        for index, text in plan.unit_labels.items()
        if index in shown
    }
    blocks = {index: text for index, text in plan.block_labels.items() if index in shown}
    is_output = b.any_of(*(b.compare(b.index(), "==", index) for index in output_layers)) if output_layers else None
    wall_scale = b.switch("FLOAT", is_output, 1.0, settings["Output Scale"]) if is_output is not None else 1.0
    return add_graph_labels(
        b, table, texts, blocks, settings["Label Size"], settings["Cell Size"], margin, material, wall_scale
    )


def _same_named(settings, *names):
    """The network's inputs ``names`` for a group's inputs of the same names."""
    return {name: settings[name] for name in names}


def _only_when(b, condition, plain, extended):
    """``extended`` when ``condition`` holds, else ``plain``; a Switch evaluates only the side it passes on,
    so the importance lookup costs nothing while importance is not shown (15 million cells at VGG scale)."""
    return b.switch("GEOMETRY", condition, plain, extended)


def _importance_title(b, method, class_names, chosen):
    """The legend's words while importance is shown: how it was computed and for which class."""
    choices = ["all classes, each in its own color", *(f"class {name}" for name in class_names)]
    choice = b.index_switch(b.int_add(chosen, 1), choices, "STRING")
    return b.join_strings(f"importance ({method}), each layer from 0 to its maximum: ", choice)


def _realized_in_render(b, geometry, realize):
    """``geometry`` with its instances realized in final renders when ``realize`` is on.

    Cycles syncs every instance as an object of its own: at a million cells a
    realized mesh rendered three times faster (measured), while instances
    evaluate several times faster and in a quarter of the memory, which the
    viewport needs.
    """
    rendering = b.logical_not(b.node("GeometryNodeIsViewport").outputs[0])
    return b.switch("GEOMETRY", b.all_of(rendering, realize), geometry, b.realize(geometry))


def input_identifiers(tree):
    """``{input name: socket identifier}``, names as ``builder.input_items`` gives them; the identifier names the
    modifier input."""
    return {name: item.identifier for name, item in input_items(tree).items()}
