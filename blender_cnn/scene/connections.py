"""Change which dense weights a built network draws, and highlight one neuron's connections."""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
import numpy.typing as npt

from ..core import cells as cell_data
from ..core import connections as connection_data
from ..core.errors import BlenderCNNError
from ..nodes.builder import tree_nodes
from ..nodes.graph import UNIT_LABELS
from ..nodes.groups import LAYER_LABEL
from .focus import cell_centres
from .geometry_data import hair_curves
from .network import (
    CONNECTIONS_PROPERTY,
    EPOCH_PROPERTY,
    network_bundle,
    network_modifier,
    set_network_input,
    shown_channels,
)


def redraw_connections(
    network: bpy.types.Object, selection: connection_data.EdgeSelection
) -> list[connection_data.DrawnLayer]:
    """Replace the network's connection curves by those ``selection`` (an ``EdgeSelection``) keeps.

    The modifier's settings and keyframes stay; the layer labels' counts and
    the object's record of them follow. Returns the ``DrawnLayer`` list.
    """
    bundle = network_bundle(network)
    layers = cell_data.layer_cells(bundle, shown_channels(network))
    epoch = network.get(EPOCH_PROPERTY, -1)
    if epoch not in bundle.epochs:
        epoch = -1
    curve_arrays, point_arrays, points_per_edge, drawn_layers = connection_data.dense_connections(
        bundle, layers, epoch, selection
    )
    old = network.data
    assert isinstance(old, bpy.types.Curves)  # a network object's data are its connection curves
    network.data = hair_curves(old.name, len(curve_arrays["weight"]), points_per_edge, curve_arrays, point_arrays)
    for material in old.materials:
        network.data.materials.append(material)
    if old.users == 0:
        bpy.data.hair_curves.remove(old)
    notes = {drawn.name: drawn.label for drawn in drawn_layers}
    _set_label_notes(network, layers, notes)
    network[CONNECTIONS_PROPERTY] = [
        {"layer": drawn.name, "drawn": drawn.drawn, "total": drawn.total, "selection": drawn.selection}
        for drawn in drawn_layers
    ]
    network.update_tag()
    return drawn_layers


def _set_label_notes(network, layers, notes):
    """Rewrite the count line under each dense layer's label in the network's tree."""
    by_index = {layer.layer_index: layer for layer in layers}
    tree = network_modifier(network).node_group
    assert tree is not None  # network_modifier refuses a modifier without a node group
    node: Any  # of whichever node type its bl_idname names (group nodes, switches)
    for node in tree_nodes(tree):
        if node.bl_idname == "GeometryNodeIndexSwitch" and node.label == UNIT_LABELS:
            _set_unit_label_notes(node, by_index, notes)
        if (
            node.bl_idname != "GeometryNodeGroup"
            or node.node_tree is None
            or not node.node_tree.name.startswith(LAYER_LABEL)
        ):
            continue
        layer = by_index.get(node.inputs["Layer"].default_value)
        if layer is not None and layer.name in notes:
            node.inputs["Text"].default_value = "\n".join([layer.label, notes[layer.name]])


def _set_unit_label_notes(switch, by_index, notes):
    """A graph's labels sit in one string switch, item ``i`` for layer ``i``: their last line is the note."""
    for index, layer in by_index.items():
        if layer.name in notes and index + 1 < len(switch.inputs):
            socket = switch.inputs[index + 1]
            lines = socket.default_value.split("\n")
            if lines and " connections (" in lines[-1]:
                lines = lines[:-1]
            socket.default_value = "\n".join([*lines, notes[layer.name]])


def highlight_nearest_neuron(network: bpy.types.Object, location: npt.ArrayLike) -> tuple[str, int] | None:
    """Highlight the connections of the dense-layer neuron drawn nearest ``location`` (world space).

    Returns ``(layer name, unit)``, or None when the network draws no neurons of 1D layers.
    """
    bundle = network_bundle(network)
    layers = {layer.layer_index: layer for layer in cell_data.layer_cells(bundle, shown_channels(network))}
    centres, indices = cell_centres(network)
    one_dimensional = np.array([len(layers[int(layer)].output_shape) == 1 for layer in indices[:, 0]], dtype=bool)
    if not one_dimensional.any():
        return None
    centres, indices = centres[one_dimensional], indices[one_dimensional]
    nearest = int(np.argmin(np.sum((centres - np.asarray(location, dtype=np.float32)) ** 2, axis=1)))
    layer_index, _channel, row, col = (int(value) for value in indices[nearest])
    layer = layers[layer_index]
    unit = row * layer.map_cols + col
    set_network_input(network, "Highlight Neuron", layer.start + unit)
    return layer.name, unit


def clear_highlight(network: bpy.types.Object) -> None:
    set_network_input(network, "Highlight Neuron", -1)


def drawn_connection_counts(network: bpy.types.Object) -> list[tuple[str, int, int, str]]:
    """``[(layer, drawn, total, selection)]`` as recorded at the last build or redraw."""
    try:
        return [
            (entry["layer"], entry["drawn"], entry["total"], entry["selection"])
            for entry in network.get(CONNECTIONS_PROPERTY, [])
        ]
    except (KeyError, TypeError) as error:
        raise BlenderCNNError(network.name, f"has an unreadable record of its connections ({error})") from None
