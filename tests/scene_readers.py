"""Read what a user would see: the evaluated geometry of a network, as numpy arrays."""

import numpy as np

from blender_cnn.scene.drawn import drawn_quads, evaluated_geometry, read_attribute  # noqa: F401 (re-exported)
from blender_cnn.scene.materials import CELL_MATERIAL, LABEL_MATERIAL


def drawn_cells(network, legend=False):
    """Per cell quad as drawn: its centre and its attributes.

    Cells are the quads with the cell material that belong to a layer; the
    legend's color bar has layer -1 (``legend=True`` returns only those).
    Returns ``(centres, {attribute: values})``.
    """
    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    layer = quads.attribute("layer")
    chosen = (layer < 0) if legend else (layer >= 0)
    names = ("layer", "channel", "row", "col", "activation", "cell_color", "is_summary")
    return quads.centres()[chosen], {name: quads.attribute(name)[chosen] for name in names}


def label_face_count(network):
    geometry = evaluated_geometry(network)
    mesh = geometry.mesh
    material_index = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", material_index)
    label_slots = [i for i, material in enumerate(mesh.materials) if material and material.name.startswith(LABEL_MATERIAL)]
    return int(np.isin(material_index, label_slots).sum())
