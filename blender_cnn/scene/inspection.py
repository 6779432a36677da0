"""Inspect one cell of a built network: its numbers beside the cells, following the Epoch and Sample, and as text.

``core.inspection`` takes the cell apart at the epoch and sample the network
shows (the panel's text), and ``core.inspection_annotations`` at every stored
epoch and sample slot. Those numbers go onto a hidden point mesh beside the
network (one point per text: the input values and kernel weights on the
window's cells, a Dense neuron's strongest contributions on their source
neurons, the equation beside the inspected cell), and a node group made for
this inspection (``nodes/annotations.py``'s ``build_inspection_tree``) takes
the place of the network tree's "BCNN Inspection" node: it blends the numbers
for the Epoch and Sample shown, as the cells blend, and writes them where the
cells are drawn. So the annotations follow an animated epoch, a cross-fade of
samples and any change of layout, and render without Python. The next
inspection replaces them. The receptive-field view (the focus inputs) or the
neuron's connections (Highlight Neuron) are switched to the same cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import bpy
import numpy as np
import numpy.typing as npt

from ..core import cells as cell_data
from ..core.bundle import Bundle
from ..core.errors import BlenderCNNError
from ..core.forward import forward, inputs_from_flat
from ..core.inspection import inspect_cell
from ..core.inspection_annotations import Annotation, SampleSource, annotation_timeline
from ..core.inspection_record import Inspection
from ..nodes.annotations import (
    INSPECTION_NODE,
    INSPECTION_TREE_PREFIX,
    build_inspection_tree,
    cell_lines_of,
    ensure_no_inspection,
)
from ..nodes.builder import TreeBuilder, tree_nodes
from .focus import FOCUS_INPUTS, cell_centres
from .geometry_data import points_mesh
from .network import (
    CUSTOM_INPUT_PROPERTY,
    SAMPLE_PROPERTY,
    STORED_SAMPLES_PROPERTY,
    get_network_input,
    network_bundle,
    network_modifier,
    set_network_input,
    shown_channels,
)

INSPECTION_TEXT_PROPERTY = "blender_cnn_inspection"  # on the network: the last inspection as text
DATA_PROPERTY = "blender_cnn_inspection_data"  # on the network: the point mesh object of its numbers
TEXT_BLOCK = "BCNN Inspection"  # the same text in the Text Editor, for copying


def shown_epoch_and_sample(network: bpy.types.Object, bundle: Bundle) -> tuple[int, int]:
    """The bundle epoch nearest the Epoch input, and the sample shown (an index, or the custom input's label)."""
    epoch_input = float(get_network_input(network, "Epoch"))
    epoch = min(bundle.epochs, key=lambda number: abs(number - epoch_input))
    sample = int(round(float(get_network_input(network, "Sample"))))
    return epoch, min(max(sample, 0), bundle.sample_count)


def inspect_network_cell(network: bpy.types.Object, layer_name: str, position: Sequence[int] | int) -> Inspection:
    """Inspect ``layer_name``'s cell at ``position`` ((row, column, channel) or a unit) as the network shows it.

    Sets the receptive-field focus (feature maps) or the highlighted neuron
    (1-D layers) to that cell, draws the annotations, and stores the text on
    the network and in the Text Editor's "BCNN Inspection". Returns the
    ``core.inspection.Inspection`` of the epoch and sample shown.
    """
    node = _inspection_node(network)
    bundle = network_bundle(network)
    epoch, sample = shown_epoch_and_sample(network, bundle)
    activations = None
    if sample == bundle.sample_count:
        activations, sample = _custom_input_activations(network, bundle, epoch), network.get(SAMPLE_PROPERTY, sample)
    inspection = inspect_cell(bundle, layer_name, position, epoch=epoch, sample=sample, activations=activations)
    layers = {cells.name: cells for cells in cell_data.layer_cells(bundle, shown_channels(network))}
    cells = layers[layer_name]
    if len(inspection.position) == 3:
        row, col, channel = inspection.position
        set_network_input(network, "Show Sweep", False)
        for name, value in zip(FOCUS_INPUTS, (cells.layer_index, channel, row, col)):
            set_network_input(network, name, value)
    else:
        set_network_input(network, "Highlight Neuron", cells.start + inspection.position[0])
    _draw_annotations(network, node, bundle, inspection, layers)
    text = inspection.text()
    network[INSPECTION_TEXT_PROPERTY] = text
    block = bpy.data.texts.get(TEXT_BLOCK) or bpy.data.texts.new(TEXT_BLOCK)
    block.from_string(text + "\n")
    return inspection


def inspect_nearest_cell(network: bpy.types.Object, location: npt.ArrayLike) -> Inspection | None:
    """Inspect the drawn cell nearest ``location`` (world space); None when the network draws no cells."""
    centres, indices = cell_centres(network)
    if not len(centres):
        return None
    nearest = int(np.argmin(np.sum((centres - np.asarray(location, dtype=np.float32)) ** 2, axis=1)))
    layer_index, channel, row, col = (int(value) for value in indices[nearest])
    bundle = network_bundle(network)
    cells = cell_data.layer_cells(bundle, shown_channels(network))[layer_index]
    position = (row, col, channel) if len(cells.output_shape) == 3 else row * cells.map_cols + col
    return inspect_network_cell(network, cells.name, position)


def clear_inspection(network: bpy.types.Object) -> None:
    """Remove the annotations and the stored text (the focus and highlight stay as they are)."""
    node = _inspection_node(network, required=False)
    if node is not None and node.node_tree is not None and node.node_tree.name.startswith(INSPECTION_TREE_PREFIX):
        old_tree = node.node_tree
        node.node_tree = ensure_no_inspection()
        if old_tree.users == 0:
            bpy.data.node_groups.remove(old_tree)
    data = network.get(DATA_PROPERTY)
    if data is not None:
        mesh = data.data
        bpy.data.objects.remove(data)
        if mesh is not None and mesh.users == 0:
            bpy.data.meshes.remove(mesh)
    network.pop(DATA_PROPERTY, None)
    network.pop(INSPECTION_TEXT_PROPERTY, None)
    network.update_tag()


def inspection_data(network: bpy.types.Object) -> bpy.types.Object | None:
    """The hidden point mesh that holds the last inspection's numbers (one point per text), or None."""
    return network.get(DATA_PROPERTY)


def _inspection_node(network: bpy.types.Object, required: bool = True) -> bpy.types.GeometryNodeGroup | None:
    tree = network_modifier(network).node_group
    found = (node for node in tree_nodes(tree) if node.name == INSPECTION_NODE) if tree is not None else iter(())
    node = cast(bpy.types.GeometryNodeGroup | None, next(found, None))  # a group node: the build names one so
    if node is None and required:
        raise BlenderCNNError(network.name, "was built by an older version without inspection numbers; import it again")
    return node


def _custom_input_activations(network, bundle, epoch):
    flat = network.get(CUSTOM_INPUT_PROPERTY)
    if flat is None:
        raise BlenderCNNError(
            network.name,
            "shows a custom input that was not kept (it is too large, or was "
            "shown by an older version); show the image again to inspect it",
        )
    inputs = inputs_from_flat(bundle, np.asarray(flat, dtype=np.float32))  # every input of the network
    return {name: values[0] for name, values in forward(bundle, inputs, epoch).items()}


def _sources(network: bpy.types.Object, bundle: Bundle) -> dict[int, SampleSource]:
    """The sample slots the cells hold, each with what the inspection recomputes it from."""
    sources: dict[int, SampleSource] = {int(slot): int(slot) for slot in network.get(STORED_SAMPLES_PROPERTY, [0])}
    if network.get(CUSTOM_INPUT_PROPERTY) is not None:
        sources[bundle.sample_count] = lambda epoch: _custom_input_activations(network, bundle, epoch)
    return sources


def _cell_index(cells: cell_data.LayerCells, position: tuple[int, ...]) -> int | None:
    """The cell index of ``position`` in a layer's cells, or None when that cell is not drawn."""
    if len(position) == 3:
        row, col, channel = position
        if channel >= cells.channels:
            return None
        return cells.start + (channel * cells.map_rows + row) * cells.map_cols + col
    return cells.start + position[0] if position[0] < cells.count else None


def _draw_annotations(network, node, bundle, inspection, layers):
    timeline = annotation_timeline(bundle, inspection, _sources(network, bundle))
    *on_cells, equation = timeline.annotations
    target = layers[inspection.layer]
    if _cell_index(target, equation.position) is None:
        raise BlenderCNNError(network.name, f"does not draw {inspection.where()} (its channel is not shown)")
    placed: list[tuple[int, Annotation, int]] = []
    for index, text in enumerate(timeline.annotations):
        cells = layers.get(text.layer)
        cell = _cell_index(cells, text.position) if cells is not None and cells.count else None
        if cell is not None:
            placed.append((index, text, cell))
    chosen = [index for index, _text, _cell in placed]
    arrays = {
        "annotation_cell": np.array([cell for _index, _text, cell in placed], dtype=np.int32),
        "annotation_place": np.array([text.place for _index, text, _cell in placed], dtype=np.int32),
    }
    for epoch_index in range(timeline.numbers.shape[0]):
        for slot_index, slot in enumerate(timeline.slots):
            for k in range(timeline.width):
                arrays[f"inspection_n{k}_e{epoch_index}_s{slot}"] = timeline.numbers[epoch_index, slot_index, chosen, k]
    clear_inspection(network)
    name = f"{network.name} inspection"
    data = bpy.data.objects.new(name, points_mesh(name, len(placed), arrays))
    data.hide_render = data.hide_viewport = data.hide_select = True
    for collection in network.users_collection:
        collection.objects.link(data)
    network[DATA_PROPERTY] = data

    label = network.get(SAMPLE_PROPERTY)
    custom = (bundle.sample_count, label) if bundle.sample_count in timeline.slots and isinstance(label, str) else None
    tree = bpy.data.node_groups.new(f"{INSPECTION_TREE_PREFIX}{network.name}", "GeometryNodeTree")
    assert tree is not None  # new() makes one; the stubs allow None
    builder = TreeBuilder(tree)
    channel = inspection.position[2] if len(inspection.position) == 3 else 0
    build_inspection_tree(
        builder,
        data,
        cell_lines_of(inspection.kind),
        (equation.template, equation.lines, (target.layer_index, channel)),
        custom,
    )
    builder.lay_out()
    node.node_tree = tree
    network.update_tag()
