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
    label_slots = [
        i for i, material in enumerate(mesh.materials) if material and material.name.startswith(LABEL_MATERIAL)
    ]
    return int(np.isin(material_index, label_slots).sum())


def cell_centre(network, layer_index, channel, row, col):
    """World centre of one drawn cell."""
    from blender_cnn.scene.focus import cell_centres

    centres, indices = cell_centres(network)
    return centres[np.flatnonzero((indices == (layer_index, channel, row, col)).all(axis=1))[0]]


def annotations(network):
    """Per text of an inspected cell, in order: its plates' centre (world space) and its glyph face count."""
    from blender_cnn.nodes.annotations import ANNOTATION_INSPECT_CELL, ANNOTATION_INSPECT_EQUATION
    from blender_cnn.scene.annotations import drawn_texts

    texts = sorted(
        (text for text in drawn_texts(network) if text.kind in (ANNOTATION_INSPECT_CELL, ANNOTATION_INSPECT_EQUATION)),
        key=lambda text: text.item,
    )
    return np.array([text.centre for text in texts]), [text.glyphs for text in texts]


def label_texts(network):
    """Every label text the network's tree draws: a layer's own (detailed scenes), the units' (graphs) and the
    output neurons'."""
    texts = []
    from blender_cnn.nodes.builder import tree_nodes

    for node in tree_nodes(network.modifiers["BlenderCNN"].node_group):
        if node.bl_idname == "GeometryNodeIndexSwitch" and node.data_type == "STRING":
            texts += [socket.default_value for socket in node.inputs[1:] if hasattr(socket, "default_value")]
        elif node.bl_idname == "GeometryNodeGroup" and "Text" in node.inputs:
            texts.append(node.inputs["Text"].default_value)
    return texts


# ---------------------------------------------------------------- rendered images


def built_staged_and_rendered(blender, bundle, path, size=(160, 90), samples=4, realized=True):
    """A new file with ``bundle``'s network built and staged, rendered by Cycles to ``path``: ``(network, its
    mesh's vertex positions as evaluated, the picture's pixels)``. ``realized`` False renders the cells as
    instances (Realize in Render off), as the viewport draws them."""
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import render_still, set_up_stage

    blender.ops.wm.read_homefile(app_template="")
    for obj in list(blender.data.objects):
        blender.data.objects.remove(obj)
    network = build_network(bundle)
    set_network_input(network, "Realize in Render", realized)
    set_up_stage(network)
    geometry = evaluated_geometry(network)  # kept while its mesh is read
    positions = np.empty(len(geometry.mesh.vertices) * 3, np.float32)
    geometry.mesh.vertices.foreach_get("co", positions)
    png = render_still(path, engine="CYCLES", width=size[0], height=size[1], samples=samples)
    return network, positions, read_png(png)


def read_png(path):
    """RGB of a PNG as float32 in [0, 1] (the stored, display-encoded values), top row first."""
    import bpy

    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1, :, :3]


def _srgb(linear):
    linear = np.asarray(linear, dtype=np.float64)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def background_color():
    """The world color as it appears in the PNG (view transform "Standard" is plain sRGB)."""
    from blender_cnn.scene.stage import BACKGROUND

    return _srgb(BACKGROUND[:3])


def content_mask(rgb, threshold=0.1):
    """Pixels that differ clearly from the background."""
    return np.abs(rgb - background_color()).max(axis=-1) > threshold


def map_range(values, low, high):
    """[low, high] to [0, 1], clamped: what the cell groups' Map Range is expected to do to activations."""
    span = high - low if high > low else 1.0
    return np.clip((np.asarray(values, dtype=np.float64) - low) / span, 0.0, 1.0)
