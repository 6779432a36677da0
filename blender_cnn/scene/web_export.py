"""Export for Web: the network as shown, as a .glb and one HTML page that anyone can open and turn around.

What the network's nodes draw is read back from its evaluated geometry and written, realized, onto
temporary meshes: the instanced cells and marks as quads, the label and bar faces and the numbers' glyphs as
they are, the connection curves as lines (glTF ``LINES``: tubes would multiply the connections' share of the file,
most of it, by the sides of a tube). Every vertex carries the color its material shows (the summed
color attributes the materials read, or the material's constant color for labels) as ``COLOR_0``,
under one unlit material, so any glTF viewer shows the colors as the scene does. Blender's own glTF
exporter writes the .glb; the temporaries are removed afterwards.

Epochs: colors are all that changes between epochs for the cells and connections, so each epoch's
color per cell and per connection goes into the .glb as one small table (sRGB bytes, epochs x
elements x RGB) named in the file's ``extras``, and each vertex carries the element it belongs to
(``_BCNN_ELEMENT``, -1 where the epoch changes nothing). The page's epoch slider blends between the
table's rows. Morph targets or a frame per epoch would store colors (or whole meshes) per vertex and
epoch instead of per element, several times larger (``docs/rendering.md`` has the figures). Labels,
probability bars and pooling marks keep the epoch the scene shows.

The page (``blender_cnn/web/page.html``) carries the .glb (base64) and the viewer bundled with
three.js (``blender_cnn/web/viewer.js``, built by ``scripts/build_web_viewer.py`` from the pinned
npm packages), so it opens from disk in any browser with no network.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import bpy
import numpy as np
from bpy_extras import anim_utils

from ..core.errors import BlenderCNNError
from ..nodes.timeline import SCREEN_OVERLAY
from .drawn import DrawnInstances, evaluated_geometry, read_attribute
from .network import (
    SAMPLE_PROPERTY,
    get_network_input,
    network_bundle,
    network_input_path,
    network_modifier,
    set_network_input,
)
from .stage import BACKGROUND, VIEW_DIRECTION

WEB_FOLDER = Path(__file__).resolve().parent.parent / "web"
VIEWER_SCRIPT = WEB_FOLDER / "viewer.js"
PAGE_TEMPLATE = WEB_FOLDER / "page.html"
# On the temporary meshes: the color each vertex shows, and the element (cell or connection) it belongs to.
COLOR_ATTRIBUTE = "bcnn_web_color"
# The exporter writes attributes whose names start with "_" as custom glTF attributes.
ELEMENT_ATTRIBUTE = "_BCNN_ELEMENT"
EXTRAS_KEY = "blender_cnn"
WEB_MATERIAL = "BCNN Web Color"
FALLBACK_COLOR = (0.8, 0.8, 0.8, 1.0)
# glTF is Y up: Blender's (x, y, z) is glTF's (x, z, -y).
_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_GLB_MAGIC, _JSON_CHUNK, _BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
_UNSIGNED_BYTE = 5121


@dataclass(frozen=True)
class WebExport:
    """What ``export_for_web`` wrote."""

    html: str
    glb: str
    glb_bytes: int
    html_bytes: int
    vertices: int
    epochs: tuple[int, ...]  # the slider's epochs; empty without a slider
    epoch_table_bytes: int
    note: str  # why there is no slider, or what it leaves at the shown epoch


@dataclass
class _Part:
    """Realized geometry of one kind: faces (``face_starts`` into ``corners``) or lines (``edges``)."""

    name: str
    positions: np.ndarray
    colors: np.ndarray
    elements: np.ndarray
    face_starts: np.ndarray | None = None
    corners: np.ndarray | None = None
    edges: np.ndarray | None = None


def web_paths(path: str | os.PathLike[str], name: str) -> tuple[str, str]:
    """``(html, glb)``: an .html path and a .glb of the same name beside it, or a folder's ``index.html`` and
    ``<name>.glb``."""
    path = os.path.abspath(os.fspath(path))
    if path.lower().endswith((".html", ".htm")):
        return path, os.path.splitext(path)[0] + ".glb"
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._") or "network"
    return os.path.join(path, "index.html"), os.path.join(path, stem + ".glb")


def viewer_available() -> bool:
    return VIEWER_SCRIPT.is_file()


def export_for_web(
    network: bpy.types.Object,
    path: str | os.PathLike[str],
    title: str | None = None,
    epochs: bool = True,
) -> WebExport:
    """Write the network as the scene shows it now to a .glb and an HTML page that shows it (see ``web_paths``).

    ``epochs`` adds every epoch of the network's bundle as colors of the cells and connections, and a
    slider to the page. The scene is left as it was.
    """
    network_modifier(network)  # refuses objects that are not networks
    if not viewer_available():
        raise BlenderCNNError(
            str(VIEWER_SCRIPT),
            "is missing: run scripts/setup.sh (or scripts/build_web_viewer.py) in the add-on's checkout",
        )
    html_path, glb_path = web_paths(path, network.name)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated_geometry(network, depsgraph)
    matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    # Read once for the cells, marks and glyphs: at VGG scale reading the instances takes seconds.
    drawn = DrawnInstances(geometry, matrix)
    colors = _colors_of(drawn)
    instance_count, curve_count = len(drawn), len(geometry.curves.curves) if geometry.curves is not None else 0
    parts = [
        part
        for part in (
            _instance_part(network.name, drawn, colors),
            _label_part(network.name, geometry, matrix, drawn, colors),
            _curve_part(network.name, geometry, matrix, instance_count),
        )
        if part is not None and len(part.positions)
    ]
    if not parts:
        raise BlenderCNNError(network.name, "draws nothing to export")
    del drawn, geometry  # before the epochs re-evaluate the network

    table: np.ndarray | None = None
    epoch_numbers: tuple[int, ...] = ()
    note = ""
    if epochs:
        found = _epoch_colors(network, instance_count, curve_count)
        note = found.note
        if found.colors is not None and found.centres is not None:
            table, epoch_numbers = found.colors, found.epochs
            dynamic = _unmoved(found.centres)
            for part in parts:
                static = (part.elements >= 0) & ~dynamic[np.maximum(part.elements, 0).astype(np.int64)]
                part.elements[static] = -1.0
    if table is None:
        for part in parts:
            part.elements[:] = -1.0
    os.makedirs(os.path.dirname(html_path), exist_ok=True)
    _export_glb(parts, glb_path)
    table_bytes = 0
    if table is not None:
        table_bytes = _append_epoch_table(glb_path, table, epoch_numbers, _slider_position(network, epoch_numbers))
    glb = Path(glb_path).read_bytes()
    page = _page(network, glb, title or network.name, epoch_numbers, note)
    Path(html_path).write_text(page, encoding="utf-8")
    return WebExport(
        html=html_path,
        glb=glb_path,
        glb_bytes=len(glb),
        html_bytes=len(page.encode("utf-8")),
        vertices=sum(len(part.positions) for part in parts),
        epochs=tuple(epoch_numbers),
        epoch_table_bytes=table_bytes,
        note=note,
    )


# ---------------------------------------------------------------- what the network draws, realized


class _Look(NamedTuple):
    """How a material colors what it is on: the color attributes it reads (summed, brightened by its emission
    strength above 1, as the glowing edges are in a render), or one constant color."""

    attributes: tuple[str, ...]
    constant: tuple[float, ...]
    gain: float = 1.0


def _material_look(material: bpy.types.Material | None) -> _Look:
    """The materials of ``scene/materials.py`` read an attribute from the geometry and from the instancer and add
    them (the one that is missing reads black); a label's material emits one color."""
    if material is None:
        return _Look((), FALLBACK_COLOR)
    tree = material.node_tree
    nodes: list[Any] = list(tree.nodes) if tree is not None else []
    names = [node.attribute_name for node in nodes if node.type == "ATTRIBUTE" and node.attribute_name]
    names += [node.layer_name for node in nodes if node.type == "VERTEX_COLOR" and node.layer_name]
    if names:
        strengths = [
            float(node.inputs["Emission Strength"].default_value) for node in nodes if node.type == "BSDF_PRINCIPLED"
        ]
        return _Look(tuple(dict.fromkeys(names)), (0.0, 0.0, 0.0, 1.0), max([1.0, *strengths]))
    for kind, socket in (("EMISSION", "Color"), ("BSDF_PRINCIPLED", "Base Color")):
        for node in nodes:
            if node.type == kind and not node.inputs[socket].is_linked:
                return _Look((), tuple(node.inputs[socket].default_value))
    diffuse: Any = material.diffuse_color  # Any: the stubs' bpy_prop_array is not iterable
    return _Look((), tuple(diffuse))


_COLOR_TYPES = frozenset({"FLOAT_COLOR", "BYTE_COLOR"})


def _look_colors(look: _Look, data: Any, domain: str, count: int) -> np.ndarray:
    """Rows of RGBA: the look's attributes on ``domain`` of ``data`` summed and brightened, or its constant."""

    def read(name: str) -> np.ndarray | None:
        attribute = data.attributes.get(name)
        usable = attribute is not None and attribute.domain == domain and attribute.data_type in _COLOR_TYPES
        return read_attribute(data, name) if usable else None

    return _summed_look(look, read, count)


def _summed_look(look: _Look, read: Callable[[str], np.ndarray | None], count: int) -> np.ndarray:
    """``_look_colors`` with the attributes got from ``read`` (None: not there, so it adds nothing)."""
    if not look.attributes:
        return np.tile(np.array(look.constant, dtype=np.float32), (count, 1))
    total = np.zeros((count, 4), dtype=np.float32)
    for name in look.attributes:
        values = read(name)
        if values is not None:
            total += values
    total[:, :3] *= look.gain
    total[:, 3] = 1.0
    return total


def _mesh_arrays(mesh: bpy.types.Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(positions, face starts, corner vertices, face material indices)`` of a mesh."""
    positions = read_attribute(mesh, "position").astype(np.float64)
    starts = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    corners = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    materials = (
        read_attribute(mesh, "material_index")
        if "material_index" in mesh.attributes
        else np.zeros(len(starts), dtype=np.int32)
    )
    return positions, starts, corners, materials


def _corner_faces(starts: np.ndarray, corner_count: int) -> np.ndarray:
    """The face of every corner."""
    sizes = np.diff(np.append(starts, corner_count))
    return np.repeat(np.arange(len(starts)), sizes)


def _vertex_materials(starts: np.ndarray, corners: np.ndarray, materials: np.ndarray, vertex_count: int) -> np.ndarray:
    """A material slot per vertex: the slot of a face that uses it (-1 for loose vertices)."""
    slots = np.full(vertex_count, -1, dtype=np.int32)
    slots[corners] = materials[_corner_faces(starts, len(corners))]
    return slots


def _instance_colors(geometry: bpy.types.GeometrySet, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(colors, world centres)`` of every instance."""
    drawn = DrawnInstances(geometry, matrix)
    return _colors_of(drawn), drawn.centres(np.arange(len(drawn)))


def _colors_of(drawn: DrawnInstances) -> np.ndarray:
    """Each instance's color: the summed attributes its quad's material reads."""
    colors = np.zeros((len(drawn), 4), dtype=np.float32)
    for index, reference in enumerate(drawn.references):
        mesh = getattr(reference, "mesh", None)
        chosen = np.flatnonzero(drawn.reference_index == index)
        if mesh is None or not len(chosen):
            continue
        used = [material for material in mesh.materials if material is not None]
        look = _material_look(used[0] if used else None)

        def read(name: str, chosen: np.ndarray = chosen) -> np.ndarray | None:
            return drawn.attribute(name, chosen) if drawn.data_type(name) in _COLOR_TYPES else None

        colors[chosen] = _summed_look(look, read, len(chosen))
    return colors


def _is_quad(mesh: bpy.types.Mesh) -> bool:
    """The cells, legend squares and marks are instances of one quad; the numbers' glyphs are not."""
    return len(mesh.vertices) == 4 and len(mesh.polygons) == 1


def _instance_part(name: str, drawn: DrawnInstances, colors: np.ndarray, quads: bool = True) -> _Part | None:
    """Every instanced quad (``quads``: the cells, legend squares and marks), or every other instanced mesh (the
    numbers' glyphs), realized with their ``colors`` (``_colors_of``); each vertex's element is its instance."""
    if not len(drawn):
        return None
    positions, face_starts, corners, elements, vertex_colors = [], [], [], [], []
    vertex_offset = corner_offset = 0
    for index, reference in enumerate(drawn.references):
        mesh = getattr(reference, "mesh", None)
        chosen = np.flatnonzero(drawn.reference_index == index)
        if mesh is None or not len(chosen) or not len(mesh.polygons) or _is_quad(mesh) != quads:
            continue
        local, starts, corner_vertices, _materials = _mesh_arrays(mesh)
        homogeneous = np.c_[local, np.ones(len(local))]
        placed = np.einsum("nij,vj->nvi", drawn.transforms(chosen).astype(np.float64), homogeneous)[:, :, :3]
        count, size = len(chosen), len(local)
        positions.append(placed.reshape(-1, 3))
        vertex_colors.append(np.repeat(colors[chosen], size, axis=0))
        elements.append(np.repeat(chosen, size).astype(np.float32))
        per_instance = np.arange(count)[:, None]
        corners.append((corner_vertices[None, :] + vertex_offset + per_instance * size).ravel())
        face_starts.append((starts[None, :] + corner_offset + per_instance * len(corner_vertices)).ravel())
        vertex_offset += count * size
        corner_offset += count * len(corner_vertices)
    if not positions:
        return None
    return _Part(
        f"{name}: cells",
        np.concatenate(positions),
        np.concatenate(vertex_colors),
        np.concatenate(elements),
        face_starts=np.concatenate(face_starts).astype(np.int32),
        corners=np.concatenate(corners).astype(np.int32),
    )


def _label_part(
    name: str, geometry: bpy.types.GeometrySet, matrix: np.ndarray, drawn: DrawnInstances, colors: np.ndarray
) -> _Part | None:
    """The labels, bars and link tubes the network draws as faces, and the numbers' glyphs it instances (of
    ``drawn``, colored ``colors``)."""
    found = [
        part
        for part in (_mesh_part(geometry, matrix), _instance_part(name, drawn, colors, quads=False))
        if part is not None
    ]
    if not found:
        return None
    face_starts, corners = [], []
    vertex_offset = corner_offset = 0
    for part in found:
        assert part.face_starts is not None and part.corners is not None  # both parts are faces
        face_starts.append(part.face_starts + corner_offset)
        corners.append(part.corners + vertex_offset)
        vertex_offset += len(part.positions)
        corner_offset += len(part.corners)
    return _Part(
        f"{name}: labels",
        np.concatenate([part.positions for part in found]),
        np.concatenate([part.colors for part in found]),
        np.full(vertex_offset, -1.0, dtype=np.float32),
        face_starts=np.concatenate(face_starts).astype(np.int32),
        corners=np.concatenate(corners).astype(np.int32),
    )


def _mesh_part(geometry: bpy.types.GeometrySet, matrix: np.ndarray) -> _Part | None:
    """The faces the network draws itself (labels, bars, link tubes), without the overlay held before the camera."""
    mesh = geometry.mesh
    if mesh is None or not len(mesh.polygons):
        return None
    positions, starts, corners, materials = _mesh_arrays(mesh)
    faces = _corner_faces(starts, len(corners))
    keep = np.ones(len(starts), dtype=bool)
    if SCREEN_OVERLAY in mesh.attributes:
        on_screen = read_attribute(mesh, SCREEN_OVERLAY) != 0
        keep[np.unique(faces[on_screen[corners]])] = False
    if not keep.any():
        return None
    slots = _vertex_materials(starts, corners, materials, len(positions))
    colors = np.tile(np.array(FALLBACK_COLOR, dtype=np.float32), (len(positions), 1))
    for slot, material in enumerate(mesh.materials):
        chosen = slots == slot
        if not chosen.any():
            continue
        colors[chosen] = _look_colors(_material_look(material), mesh, "POINT", len(positions))[chosen]
    kept_corners = np.flatnonzero(keep[faces])
    sizes = np.diff(np.append(starts, len(corners)))[keep]
    new_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    used, remapped = np.unique(corners[kept_corners], return_inverse=True)
    world = positions[used] @ matrix[:3, :3].T + matrix[:3, 3]
    return _Part(
        "faces",
        world,
        colors[used],
        np.full(len(used), -1.0, dtype=np.float32),
        face_starts=new_starts,
        corners=remapped.astype(np.int32),
    )


def _curve_colors(curves: bpy.types.Curves) -> np.ndarray:
    """One color per curve, the summed attributes its material reads (its first point's, for point colors)."""
    count = len(curves.curves)
    offsets = np.empty(count + 1, dtype=np.int32)
    curves.curve_offset_data.foreach_get("value", offsets)
    slots = (
        read_attribute(curves, "material_index")
        if "material_index" in curves.attributes
        else np.zeros(count, dtype=np.int32)
    )
    colors = np.tile(np.array(FALLBACK_COLOR, dtype=np.float32), (count, 1))
    for slot, material in enumerate(curves.materials):
        chosen = slots == slot
        if not chosen.any():
            continue
        look = _material_look(material)
        summed = _look_colors(look, curves, "CURVE", count)
        if look.attributes:
            summed[:, :3] += _look_colors(look, curves, "POINT", len(curves.points))[offsets[:-1], :3]
        colors[chosen] = summed[chosen]
    return colors


def _curve_part(name: str, geometry: bpy.types.GeometrySet, matrix: np.ndarray, first_element: int) -> _Part | None:
    """The connection curves as lines between their points; a curve of zero radius is not drawn."""
    curves = geometry.curves
    if curves is None or not len(curves.curves):
        return None
    count = len(curves.curves)
    offsets = np.empty(count + 1, dtype=np.int32)
    curves.curve_offset_data.foreach_get("value", offsets)
    sizes = np.diff(offsets)
    visible = sizes > 1
    if "radius" in curves.attributes:
        radius = read_attribute(curves, "radius")
        visible &= np.maximum.reduceat(radius, offsets[:-1]) > 0 if len(radius) else visible
    point_curve = np.repeat(np.arange(count), sizes)
    kept_points = np.flatnonzero(visible[point_curve])
    if not len(kept_points):
        return None
    positions = read_attribute(curves, "position").astype(np.float64)[kept_points]
    curve_of = point_curve[kept_points]
    # A segment joins each point to the next one of the same curve.
    follows = np.flatnonzero(curve_of[1:] == curve_of[:-1])
    colors = _curve_colors(curves)
    return _Part(
        f"{name}: connections",
        positions @ matrix[:3, :3].T + matrix[:3, 3],
        colors[curve_of],
        (curve_of + first_element).astype(np.float32),
        edges=np.stack([follows, follows + 1], axis=1).astype(np.int32),
    )


# ---------------------------------------------------------------- epochs


@dataclass(frozen=True)
class _EpochColors:
    """Each epoch's color (epochs x elements x RGBA) and centre (epochs x elements x 3) of every instance and curve,
    or None and the reason in ``note``."""

    colors: np.ndarray | None
    centres: np.ndarray | None
    epochs: tuple[int, ...]
    note: str


def _epoch_colors(network: bpy.types.Object, instance_count: int, curve_count: int) -> _EpochColors:
    try:
        epoch_numbers = tuple(int(epoch) for epoch in network_bundle(network).epochs)
    except (BlenderCNNError, OSError) as error:
        return _EpochColors(None, None, (), f"no epoch slider: the bundle cannot be read ({error})")
    if len(epoch_numbers) < 2:
        return _EpochColors(None, None, (), "no epoch slider: the network's bundle holds one epoch")
    shown = float(get_network_input(network, "Epoch"))
    muted = _mute_input_animation(network, "Epoch")
    colors, centres = [], []
    try:
        for epoch in epoch_numbers:
            set_network_input(network, "Epoch", float(epoch))
            depsgraph = bpy.context.evaluated_depsgraph_get()
            evaluated = network.evaluated_get(depsgraph)
            geometry = evaluated_geometry(network, depsgraph)
            matrix = np.array(evaluated.matrix_world, dtype=np.float64)
            instance_colors, instance_centres = _instance_colors(geometry, matrix)
            curve_colors, curve_centres = _curve_colors_and_centres(geometry.curves)
            del geometry
            if (len(instance_colors), len(curve_colors)) != (instance_count, curve_count):
                note = f"no epoch slider: epoch {epoch} draws a different number of cells or connections"
                return _EpochColors(None, None, (), note)
            colors.append(np.concatenate([instance_colors, curve_colors]))
            centres.append(np.concatenate([instance_centres, curve_centres]))
    finally:
        set_network_input(network, "Epoch", shown)
        for fcurve in muted:
            fcurve.mute = False
        bpy.context.evaluated_depsgraph_get()
    note = f"Labels and marks show epoch {_number(shown)}"
    return _EpochColors(np.stack(colors), np.stack(centres), epoch_numbers, note)


def _curve_colors_and_centres(curves: bpy.types.Curves | None) -> tuple[np.ndarray, np.ndarray]:
    if curves is None or not len(curves.curves):
        return np.zeros((0, 4), dtype=np.float32), np.zeros((0, 3))
    positions = read_attribute(curves, "position")
    offsets = np.empty(len(curves.curves) + 1, dtype=np.int32)
    curves.curve_offset_data.foreach_get("value", offsets)
    centres = np.add.reduceat(positions, offsets[:-1]) / np.maximum(np.diff(offsets), 1)[:, None]
    return _curve_colors(curves), centres


def _unmoved(centres: np.ndarray) -> np.ndarray:
    """Elements that stay in place at every epoch. A pooling mark that moves to another winner is another element,
    whose color cannot be blended; the others keep the shown epoch's color."""
    return np.all(np.abs(centres - centres[:1]).max(axis=2) < 1e-5, axis=0)


def _mute_input_animation(network: bpy.types.Object, name: str) -> list[Any]:
    """Mute the keyframes of a modifier input, so the value set from Python is the one evaluated."""
    animation = network.animation_data
    if animation is None or animation.action is None:
        return []
    channels = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    fcurve = None if channels is None else channels.fcurves.find(network_input_path(network, name))
    if fcurve is None or fcurve.mute:
        return []
    fcurve.mute = True
    return [fcurve]


# ---------------------------------------------------------------- writing the .glb


def _export_glb(parts: list[_Part], glb_path: str) -> None:
    """Temporary objects in a temporary collection, written by Blender's glTF exporter, then removed."""
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    material = bpy.data.materials.new(WEB_MATERIAL)
    collection = bpy.data.collections.new("BCNN Web Export")
    made: list[Any] = []
    try:
        _unlit_vertex_color(material)
        scene.collection.children.link(collection)
        for part in parts:
            mesh = _part_mesh(part)
            made.append(mesh)
            mesh.materials.append(material)
            obj = bpy.data.objects.new(part.name, mesh)
            made.append(obj)
            collection.objects.link(obj)
        result = bpy.ops.export_scene.gltf(
            filepath=glb_path,
            export_format="GLB",
            collection=collection.name,
            export_current_frame=True,
            use_mesh_edges=True,
            export_vertex_color="MATERIAL",
            export_attributes=True,
            export_normals=False,
            export_texcoords=False,
            export_cameras=False,
            export_lights=False,
            export_animations=False,
            export_extras=False,
            will_save_settings=False,
        )
        if "FINISHED" not in result:
            raise BlenderCNNError(glb_path, "Blender's glTF exporter did not finish")
    finally:
        for obj in [item for item in made if isinstance(item, bpy.types.Object)]:
            bpy.data.objects.remove(obj)
        for mesh in [item for item in made if isinstance(item, bpy.types.Mesh)]:
            bpy.data.meshes.remove(mesh)
        bpy.data.collections.remove(collection)
        bpy.data.materials.remove(material)


def _unlit_vertex_color(material: bpy.types.Material) -> None:
    """A color attribute straight into the output: the exporter writes it as KHR_materials_unlit with COLOR_0."""
    tree = material.node_tree
    assert tree is not None  # every material has a node tree in Blender 5; the stubs allow None
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    color: Any = tree.nodes.new("ShaderNodeVertexColor")
    color.layer_name = COLOR_ATTRIBUTE
    tree.links.new(color.outputs["Color"], output.inputs["Surface"])


def _part_mesh(part: _Part) -> bpy.types.Mesh:
    mesh = bpy.data.meshes.new(part.name)
    mesh.vertices.add(len(part.positions))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(part.positions, dtype=np.float32).ravel())
    if part.edges is not None:
        mesh.edges.add(len(part.edges))
        mesh.edges.foreach_set("vertices", np.ascontiguousarray(part.edges, dtype=np.int32).ravel())
    if part.face_starts is not None and part.corners is not None:
        mesh.loops.add(len(part.corners))
        mesh.loops.foreach_set("vertex_index", part.corners)
        mesh.polygons.add(len(part.face_starts))
        mesh.polygons.foreach_set("loop_start", part.face_starts)
    mesh.update(calc_edges=part.face_starts is not None)
    colors: Any = mesh.color_attributes.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT")  # Any: stubs lack its data
    # The exporter stores some colors as 16-bit fractions, which cannot hold a glow above 1.
    colors.data.foreach_set("color", np.clip(part.colors, 0.0, 1.0).astype(np.float32).ravel())
    if (part.elements >= 0).any():
        elements: Any = mesh.attributes.new(ELEMENT_ATTRIBUTE, "FLOAT", "POINT")
        elements.data.foreach_set("value", np.ascontiguousarray(part.elements, dtype=np.float32))
    return mesh


def _srgb_bytes(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    encoded = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    return np.round(encoded * 255).astype(np.uint8)


def read_glb(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """``(json, binary chunk)`` of a .glb."""
    data = Path(path).read_bytes()
    magic, _version, _length = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC:
        raise BlenderCNNError(os.fspath(path), "is not a binary glTF (.glb) file")
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if json_type != _JSON_CHUNK:
        raise BlenderCNNError(os.fspath(path), "has no JSON chunk first")
    document = json.loads(data[20 : 20 + json_length])
    binary = b""
    offset = 20 + json_length
    if offset + 8 <= len(data):
        binary_length, binary_type = struct.unpack_from("<II", data, offset)
        if binary_type == _BIN_CHUNK:
            binary = data[offset + 8 : offset + 8 + binary_length]
    return document, binary


def _write_glb(path: str, document: dict[str, Any], binary: bytes) -> None:
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    length = 12 + 8 + len(text) + 8 + len(binary)
    with open(path, "wb") as stream:
        stream.write(struct.pack("<III", _GLB_MAGIC, 2, length))
        stream.write(struct.pack("<II", len(text), _JSON_CHUNK) + text)
        stream.write(struct.pack("<II", len(binary), _BIN_CHUNK) + binary)


def _append_epoch_table(glb_path: str, colors: np.ndarray, epochs: tuple[int, ...], position: float) -> int:
    """Add each epoch's element colors (sRGB bytes, epochs x elements x RGB) to the .glb; returns their size."""
    document, binary = read_glb(glb_path)
    table = _srgb_bytes(colors[:, :, :3]).tobytes()
    offset = len(binary) + (-len(binary) % 4)
    binary = binary + b"\0" * (offset - len(binary)) + table
    document.setdefault("bufferViews", []).append({"buffer": 0, "byteOffset": offset, "byteLength": len(table)})
    document.setdefault("accessors", []).append(
        {
            "bufferView": len(document["bufferViews"]) - 1,
            "componentType": _UNSIGNED_BYTE,
            "count": int(colors.shape[0] * colors.shape[1]),
            "type": "VEC3",
        }
    )
    document["buffers"][0]["byteLength"] = len(binary) + (-len(binary) % 4)
    document.setdefault("extras", {})[EXTRAS_KEY] = {
        "epochs": list(epochs),
        "shown_position": position,
        "epoch_colors": {
            "accessor": len(document["accessors"]) - 1,
            "elements": int(colors.shape[1]),
            "layout": "epoch, element, RGB; sRGB-encoded bytes; a vertex's _BCNN_ELEMENT is its element (-1: none)",
        },
    }
    _write_glb(glb_path, document, binary)
    return len(table)


# ---------------------------------------------------------------- the page


def _background(scene: bpy.types.Scene) -> tuple[float, float, float]:
    world = scene.world
    tree = world.node_tree if world is not None else None
    node: Any = tree.nodes.get("Background") if tree is not None else None
    if node is not None and not node.inputs["Color"].is_linked:
        return tuple(float(value) for value in node.inputs["Color"].default_value[:3])  # type: ignore[return-value]
    return BACKGROUND[0], BACKGROUND[1], BACKGROUND[2]


def _number(value: float) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _slider_position(network: bpy.types.Object, epochs: tuple[int, ...]) -> float:
    """Where the slider starts: the Epoch the network shows now, between the stored epochs' places."""
    if not epochs:
        return 0.0
    return float(np.interp(float(get_network_input(network, "Epoch")), epochs, np.arange(len(epochs))))


def _css_color(linear: tuple[float, float, float]) -> str:
    red, green, blue = _srgb_bytes(np.array(linear, dtype=np.float64))
    return f"#{red:02x}{green:02x}{blue:02x}"


def _page(network: bpy.types.Object, glb: bytes, title: str, epochs: tuple[int, ...], note: str) -> str:
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    background = _background(scene)
    luminance = 0.2126 * background[0] + 0.7152 * background[1] + 0.0722 * background[2]
    # What the network shows now, keyframed or not; a custom input is named by its label.
    sample = network.get(SAMPLE_PROPERTY)
    sample = sample if isinstance(sample, str) else f"sample {_number(get_network_input(network, 'Sample'))}"
    subtitle = f"Epoch {_number(get_network_input(network, 'Epoch'))}, {sample}"
    config = {
        "title": title,
        "background": background,
        "view_direction": (_TO_GLTF @ np.array(VIEW_DIRECTION)).tolist(),
        "epochs": list(epochs),
        "shown_position": _slider_position(network, epochs),
    }
    values = {
        "title": html.escape(title),
        "subtitle": html.escape(f"{subtitle}. Exported from Blender by blender_cnn."),
        "background": _css_color(background),
        "text": "#1b1f27" if luminance > 0.25 else "#e6e8ec",
        "epoch_note": html.escape(note),
        # "<" never reaches the HTML parser inside the script block.
        "config": json.dumps(config).replace("<", "\\u003c"),
        "model": base64.b64encode(glb).decode("ascii"),
        "viewer": VIEWER_SCRIPT.read_text(encoding="utf-8"),
    }
    template = PAGE_TEMPLATE.read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], template)
