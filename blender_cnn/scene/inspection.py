"""Inspect one cell of a built network: its numbers as 3D annotations beside the cells, and as text.

The inspection is a snapshot of the epoch and sample the network shows when
it is made (``core.inspection`` recomputes it from the bundle). The
annotations are one mesh object, a child of the network, that the next
inspection replaces: the input values (and kernel weights) on the window's
cells, a Dense neuron's strongest contributions on their source neurons, and
the equation beside the inspected cell. The receptive-field view (the focus
inputs) or the neuron's connections (Highlight Neuron) are switched to the
same cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np
import numpy.typing as npt

from ..core import cells as cell_data
from ..core.bundle import Bundle
from ..core.errors import BlenderCNNError
from ..core.forward import forward, inputs_from_flat
from ..core.inspection import CONVOLUTION, DENSE, inspect_cell
from ..core.inspection_record import Inspection
from .annotations import Annotation, annotation_mesh
from .drawn import drawn_quads
from .focus import FOCUS_INPUTS
from .materials import CELL_MATERIAL, ensure_annotation_materials
from .network import (
    CUSTOM_INPUT_PROPERTY,
    SAMPLE_PROPERTY,
    get_network_input,
    network_bundle,
    network_modifier,
    set_network_input,
    shown_channels,
)

INSPECTION_TEXT_PROPERTY = "blender_cnn_inspection"  # on the network: the last inspection as text
ANNOTATIONS_PROPERTY = "blender_cnn_inspection_object"  # on the network: its annotation object
TEXT_BLOCK = "BCNN Inspection"  # the same text in the Text Editor, for copying
NUMBER_SIZE = 0.2  # numbers on cells, in cell edges
LABEL_SIZE = 0.9  # the equation, in cell edges


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
    ``core.inspection.Inspection``.
    """
    network_modifier(network)
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
        for name, value in zip(FOCUS_INPUTS, (cells.layer_index, channel, row, col)):
            set_network_input(network, name, value)
    else:
        set_network_input(network, "Highlight Neuron", cells.start + inspection.position[0])
    _draw_annotations(network, inspection, layers)
    text = inspection.text()
    network[INSPECTION_TEXT_PROPERTY] = text
    block = bpy.data.texts.get(TEXT_BLOCK) or bpy.data.texts.new(TEXT_BLOCK)
    block.from_string(text + "\n")
    return inspection


def inspect_nearest_cell(network: bpy.types.Object, location: npt.ArrayLike) -> Inspection | None:
    """Inspect the drawn cell nearest ``location`` (world space); None when the network draws no cells."""
    quads = _CellQuads(network)
    if not len(quads.keys):
        return None
    nearest = int(np.argmin(np.sum((quads.centres - np.asarray(location, dtype=np.float32)) ** 2, axis=1)))
    layer_index, channel, row, col = (int(value) for value in quads.indices[nearest])
    bundle = network_bundle(network)
    cells = cell_data.layer_cells(bundle, shown_channels(network))[layer_index]
    position = (row, col, channel) if len(cells.output_shape) == 3 else row * cells.map_cols + col
    return inspect_network_cell(network, cells.name, position)


def clear_inspection(network: bpy.types.Object) -> None:
    """Remove the annotations and the stored text (the focus and highlight stay as they are)."""
    old = network.get(ANNOTATIONS_PROPERTY)
    if old is not None:
        mesh = old.data
        bpy.data.objects.remove(old)
        if mesh is not None and mesh.users == 0:
            bpy.data.meshes.remove(mesh)
        del network[ANNOTATIONS_PROPERTY]
    network.pop(INSPECTION_TEXT_PROPERTY, None)


def annotation_object(network: bpy.types.Object) -> bpy.types.Object | None:
    return network.get(ANNOTATIONS_PROPERTY)


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


class _CellQuads:
    """The network's drawn cells (summaries left out), found by (layer, channel, row, column)."""

    def __init__(self, network, viewpoint=None):
        quads, self._geometry = drawn_quads(network, CELL_MATERIAL)
        if not len(quads):
            self.keys = np.zeros(0, dtype=np.int64)
            return
        indices = np.stack([quads.attribute(name) for name in ("layer", "channel", "row", "col")], axis=1)
        keep = indices[:, 0] >= 0
        if quads.has("is_summary"):
            keep &= quads.attribute("is_summary") == 0
        corners = quads.corners()[keep]
        self.indices = indices[keep].astype(np.int64)
        self.centres = corners.mean(axis=1)
        self.edges = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)
        # The quad's corners run (0, 0), (1, 0), (0, 1), (1, 1).
        self.rights = _unit(corners[:, 1] - corners[:, 0])
        self.ups = _unit(corners[:, 2] - corners[:, 0])
        if viewpoint is not None:
            # Text reads correctly only from the side its normal points to: turn it to the camera.
            facing = np.einsum("ij,ij->i", np.cross(self.rights, self.ups), np.asarray(viewpoint) - self.centres)
            self.rights[facing < 0] *= -1
        keys = _keys(self.indices)
        self._order = np.argsort(keys, kind="stable")
        self.keys = keys[self._order]

    def find(self, indices):
        """Positions in this set of the cells ``indices`` (n, 4); -1 for cells not drawn."""
        if not len(indices) or not len(self.keys):
            return np.full(len(indices), -1, dtype=np.int64)
        wanted = _keys(np.asarray(indices, dtype=np.int64).reshape(-1, 4))
        spot = np.clip(np.searchsorted(self.keys, wanted), 0, len(self.keys) - 1)
        return np.where(self.keys[spot] == wanted, self._order[spot], -1)


def _keys(indices):
    # 16 bits each for channel, row and column; the layer above them.
    return (indices[:, 0] << 48) | (indices[:, 1] << 32) | (indices[:, 2] << 16) | indices[:, 3]


def _unit(vectors):
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _cell_index(cells, position):
    """(layer, channel, row, column) of a layer's cell at a (row, column, channel) or (unit,) position."""
    if len(position) == 3:
        row, col, channel = position
        return cells.layer_index, channel, row, col
    unit = position[0]
    return cells.layer_index, 0, unit // cells.map_cols, unit % cells.map_cols


def _draw_annotations(network, inspection, layers):
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    camera = scene.camera
    quads = _CellQuads(network, camera.matrix_world.translation if camera is not None else None)
    target = layers[inspection.layer]
    annotations = []
    found = quads.find([_cell_index(target, inspection.position)])[0]
    # A merge's terms each name the input they are in; other layers' terms are all in one source.
    shown = [
        term for term in inspection.terms if not term.padding and (term.layer or inspection.source_layer) in layers
    ]
    if shown:
        spots = quads.find([_cell_index(layers[term.layer or inspection.source_layer], term.source) for term in shown])
        for term, spot in zip(shown, spots):
            if spot < 0:
                continue
            if inspection.kind == DENSE:
                text = f"{term.product:+.3g}"
            elif inspection.kind == CONVOLUTION:
                text = f"{term.value:.2g}\n×{term.weight:.2g}"
            else:
                text = f"{term.value:.2g}"
            annotations.append(
                Annotation(
                    text, quads.centres[spot], quads.rights[spot], quads.ups[spot], NUMBER_SIZE * quads.edges[spot]
                )
            )
    if found >= 0:
        annotations.append(_equation_annotation(quads, found, inspection))
    mesh = annotation_mesh(f"{network.name} Inspection", annotations)
    for material in ensure_annotation_materials():
        mesh.materials.append(material)
    clear_inspection(network)
    holder = bpy.data.objects.new(f"{network.name} Inspection", mesh)
    for collection in network.users_collection:
        collection.objects.link(holder)
    holder.parent = network
    # Mesh coordinates are world positions: undo the network's transform, which the child inherits.
    inverse = np.linalg.inv(np.array(network.matrix_world, dtype=np.float64))
    coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    world = np.c_[coordinates.reshape(-1, 3), np.ones(len(mesh.vertices))]
    mesh.vertices.foreach_set("co", (world @ inverse.T)[:, :3].astype(np.float32).ravel())
    mesh.update()
    holder.hide_select = True
    network[ANNOTATIONS_PROPERTY] = holder


def _equation_annotation(quads, found, inspection):
    """The equation beside the inspected cell: above its map, or right of a column of neurons."""
    centre, edge = quads.centres[found], quads.edges[found]
    right, up = quads.rights[found], quads.ups[found]
    text = f"{inspection.where()}, epoch {inspection.epoch}, sample {inspection.sample}\n{inspection.equation()}"
    layer, channel = quads.indices[found, 0], quads.indices[found, 1]
    if len(inspection.position) == 1:
        return Annotation(text, centre + right * edge * 9.0, right, up, LABEL_SIZE * edge, left=True)
    same_map = (quads.indices[:, 0] == layer) & (quads.indices[:, 1] == channel)
    above = np.max((quads.centres[same_map] - centre) @ up)
    return Annotation(text, centre + up * (above + edge * 2.2), right, up, LABEL_SIZE * edge)
