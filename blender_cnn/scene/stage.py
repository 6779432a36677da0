"""Camera, world, light and render settings around a network, and rendering a still."""

from __future__ import annotations

import math
import os
import textwrap
from dataclasses import replace
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector

from ..nodes.operations import DEFAULT_TOP_CLASSES
from .composition import (
    Problem,
    View,
    check_drawing,
    frame_size,
    min_text_height,
    text_heights,
)
from .drawn import drawn_points
from .drawn_texts import label_sockets, read_drawing
from .looks import depth_of_field_blur, set_depth_of_field
from .network import (
    DETAILED_PROPERTY,
    fit_rows,
    get_network_input,
    set_network_input,
)

BACKGROUND = (0.008, 0.010, 0.016, 1.0)
# From the input side, slightly above: layers run left to right and their maps face the camera at 45 degrees.
VIEW_DIRECTION = Vector((1.0, 1.0, -0.3)).normalized()
# A long lens keeps the far layers nearly as large as the near ones.
LENS = 85.0
CAMERA_NAME = "BCNN Camera"
LIGHT_NAME = "BCNN Key Light"
# On a world the stage has set up: staging again keeps its background, so a look survives Fit Rows.
STAGED_PROPERTY = "blender_cnn_stage"
ENGINES = {"CYCLES": "CYCLES", "EEVEE": "BLENDER_EEVEE", "BLENDER_EEVEE": "BLENDER_EEVEE"}
DEFAULT_ENGINE, DEFAULT_SAMPLES = "CYCLES", 32
# Views the framing tries, in order, as (degrees turned from VIEW_DIRECTION's azimuth toward the network's side,
# degrees looking down): VIEW_DIRECTION's own first (12 down), then looking down more, which turns a long network's
# diagonal up the frame and fills more of its height; then turned 5 degrees, which stands neighbouring layers (and
# their labels) further apart across the frame and narrows the walls.
VIEWS = tuple((turn, elevation) for turn in (0.0, 5.0) for elevation in (12.0, 15.0, 18.0, 21.0))
# Texts too small are sized this much over the least height the checks ask for.
TEXT_HEADROOM = 1.08
# The output layers' class names and probabilities grow with their neurons (Output Scale), as long as no output
# layer stands taller than COLUMN_ROOM times the tallest other layer, up to this Output Scale.
OUTPUT_SCALE = "Output Scale"
MAX_OUTPUT_SCALE = 12.0
COLUMN_ROOM = 1.25
# The output's texts needing this many times more growth than the column has room for are not grown at all: the
# top classes' readout (Top Classes) stands for them at once. Nearer, they grow and the readout waits for the next
# pass (the framing after growing may let them pass, as CIFAR's do at the column's full room).
HOPELESS_GROWTH = 1.5
TOP_CLASSES = "Top Classes"
# Layer Spacing and Lane Spacing a graph's units gain per unit of Label Size their labels grow by.
GRAPH_ROOM = (3.0, 4.0)
# A graph's rows stand this many times further apart when their labels run over the row in front.
ROW_SPREAD = 1.4
# Labels grow up to this many times the Label Size the network had when first staged (kept on it).
MAX_LABEL_GROWTH = 2.5
BUILT_LABEL_SIZE_PROPERTY = "blender_cnn_built_label_size"
# Passes at most of measuring, then sizing, wrapping or spreading the texts and reading the network again (the last
# pass only frames). Each change moves the framing a little: the demo and CIFAR read the network twice, the residual
# graph five times.
STAGE_PASSES = 5
# On the camera: its pose as the stage framed it (location, quaternion), where camera moves start.
STAGED_POSE_PROPERTY = "blender_cnn_staged_pose"
# A network of more cells than this is framed from its drawn points, its texts left as built: reading a drawing's
# texts and cells takes ResNet50 at 224 (5.8 million cells) about 5 s a pass, and fitting its texts 108 s (Fix,
# which still leaves 6 problems), against 10-20 s framed from its points; CIFAR-10's 230,690 cells take 1.6 s.
# There the checks run when asked (Check Composition, Fix), not at every import.
MAX_CELLS_FITTED = 500_000


def set_up_stage(
    network: bpy.types.Object, scene: bpy.types.Scene | None = None, margin: float = 1.08
) -> bpy.types.Object:
    """Dark world, a soft key light and a camera that frames ``network``; returns the camera.

    The texts are sized and placed for the camera's view (``fit_texts``): what
    the stage cannot fix, ``scene.composition.check_composition`` reports.

    Staging a scene again (after Fit Rows, a rebuild) keeps the look a style
    gave it: the world's background, the light, and a depth of field, which is
    focused again on the layer the new framing looks at.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    _set_world(scene)
    _ensure_light(scene)
    camera = _ensure_camera(scene)
    if _cell_count(network) <= MAX_CELLS_FITTED:
        fit_texts(network, camera, scene, margin)
    else:
        frame_camera(camera, network, scene, margin)
    blur = depth_of_field_blur(camera)
    if blur > 0.0:
        set_depth_of_field(network, blur, camera)
    view = scene.view_settings
    assert view is not None  # a scene always has them; the stubs allow None
    # "Standard" shows the colormap's colors as they are; AgX would desaturate them.
    # The ignores: bpy's stubs type these enums, whose items come from the color configuration, as "NONE".
    view.view_transform = "Standard"  # type: ignore[assignment]
    view.look = "None"  # type: ignore[assignment]
    return camera


def frame_camera(
    camera: bpy.types.Object,
    network: bpy.types.Object,
    scene: bpy.types.Scene | None = None,
    margin: float = 1.08,
    points: np.ndarray | None = None,
) -> None:
    """Aim ``camera`` so the evaluated network (or ``points``, world) fills the frame, centred in it.

    ``margin`` 1.08 leaves 4% of the frame's height free at each edge. Framing
    the network, the camera tries the ``VIEWS`` in turn and keeps the first
    the composition checks (``scene/composition.py``) find no problem with but
    small texts (which ``fit_texts`` sizes), else the one with fewest.
    ``points`` are framed along ``VIEW_DIRECTION`` as they are.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    camera_data = camera.data
    assert isinstance(camera_data, bpy.types.Camera)  # ``camera`` is a camera object
    camera_data.lens = LENS
    edge = max(0.0, (margin - 1.0) / 2.0)
    if points is None and _cell_count(network) > MAX_CELLS_FITTED:
        points = drawn_points(network)
    if points is not None:
        framed = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        _place(camera, *fit_view(framed, VIEW_DIRECTION, camera, scene, edge), framed)
    else:
        _frame_drawing(camera, read_drawing(network), scene, edge)
    _update_matrices()
    camera[STAGED_POSE_PROPERTY] = [*camera.location[:], *camera.rotation_quaternion[:]]


def _cell_count(network: bpy.types.Object) -> int:
    """How many cells the network's Cells object holds (one point each): what reading its drawing costs."""
    cells = get_network_input(network, "Cells")
    return len(cells.data.vertices) if cells is not None and isinstance(cells.data, bpy.types.Mesh) else 0


def _frame_drawing(camera, drawing, scene, edge=0.04, views=VIEWS):
    """Frame ``drawing`` (see ``frame_camera``); returns the view, its problems and which of ``views`` it is (None
    when nothing is drawn).

    The ``views`` are tried in turn, and the first with no problem but small
    texts is taken; else the one with fewest problems.
    """
    framed = _framed_points(drawing)
    if not len(framed):
        return None
    # The training overlay stands in front of the camera, wherever it is: it moves with the view being tried.
    drawing = replace(drawing, texts=[text for text in drawing.texts if text.kind != "overlay"])
    best = None
    for turn, elevation in views:
        location, rotation = fit_view(framed, view_direction(elevation, turn), camera, scene, edge)
        view = View(camera, scene, Matrix.LocRotScale(location, rotation, None))  # type: ignore[arg-type]  # stubs: a Vector is a sequence
        problems = check_drawing(drawing, view)
        # Fewest problems but small texts (which the stage sizes next), then fewest problems.
        score = (sum(problem.kind != "small" for problem in problems), len(problems))
        if best is None or score < best[0]:
            best = (score, location, rotation, view, problems, (turn, elevation))
        if score[0] == 0:
            break
    assert best is not None
    _place(camera, best[1], best[2], framed)
    return best[3], best[4], best[5]


def view_direction(elevation: float, turn: float = 0.0) -> Vector:
    """The stage's view from the input side, ``turn`` degrees more from the side than ``VIEW_DIRECTION``, looking
    ``elevation`` degrees down."""
    azimuth = math.atan2(VIEW_DIRECTION.y, VIEW_DIRECTION.x) + math.radians(turn)
    down = math.radians(elevation)
    return Vector((math.cos(down) * math.cos(azimuth), math.cos(down) * math.sin(azimuth), -math.sin(down)))


def fit_view(
    points: np.ndarray, direction: Vector, camera: bpy.types.Object, scene: bpy.types.Scene, edge: float = 0.04
) -> tuple[Vector, Quaternion]:
    """Where ``camera`` (its lens and sensor, at the scene's frame size) stands looking along ``direction`` so that
    ``points`` (n, 3) just fill the frame, ``edge`` of its height free at every side, and are centred in it.

    Each point bounds the camera's distance and sideways shift linearly, so the
    tightest distance has a closed form per axis; the other axis is then
    centred by bisection. Returns the location and the rotation.
    """
    rotation = Vector(direction).to_track_quat("-Z", "Y")  # type: ignore[arg-type]  # bpy stubs: a Vector is a sequence
    axes = rotation.to_matrix()
    right, up = np.array(axes.col[0]), np.array(axes.col[1])  # type: ignore[index]  # bpy stubs: col indexes
    forward = -np.array(axes.col[2])  # type: ignore[index]
    width, height = frame_size(scene)
    tangent_x, tangent_y = _camera_tangents(camera, width, height)
    free = 2.0 * edge * height
    tangent_x *= max(0.05, 1.0 - free / width)
    tangent_y *= max(0.05, 1.0 - free / height)
    origin = points.mean(axis=0)
    relative = np.asarray(points, dtype=np.float64) - origin
    x, y, depth = relative @ right, relative @ up, relative @ forward
    distance = max(
        (np.max(x - tangent_x * depth) + np.max(-x - tangent_x * depth)) / (2.0 * tangent_x),
        (np.max(y - tangent_y * depth) + np.max(-y - tangent_y * depth)) / (2.0 * tangent_y),
    )
    reach = depth + distance
    shift_x, shift_y = _centred(x, reach), _centred(y, reach)
    location = origin + shift_x * right + shift_y * up - distance * forward
    return Vector(location.tolist()), rotation


def _centred(across: np.ndarray, reach: np.ndarray) -> float:
    """The sideways shift that centres points ``across`` the view at distances ``reach`` from the camera."""
    reach = np.maximum(reach, 1e-6)
    low, high = float(across.min()), float(across.max())
    for _step in range(50):
        shift = (low + high) / 2.0
        if np.max((across - shift) / reach) > np.max((shift - across) / reach):
            low = shift
        else:
            high = shift
    return (low + high) / 2.0


def half_view_tangents(
    lens: float, width: float, height: float, sensor: float = 36.0, fit: str = "AUTO"
) -> tuple[float, float]:
    """Tangents of half the horizontal and vertical angle of view of a ``lens`` (mm) and ``sensor`` (mm) in a frame
    ``width`` by ``height``: the sensor spans the frame's width, its height (``fit`` "VERTICAL"), or, "AUTO", its
    wider side."""
    wide = sensor / (2.0 * lens)
    if fit == "VERTICAL" or (fit == "AUTO" and height > width):
        return wide * width / height, wide
    return wide, wide * height / width


def _camera_tangents(camera, width, height):
    data = camera.data
    sensor = data.sensor_height if data.sensor_fit == "VERTICAL" else data.sensor_width
    return half_view_tangents(data.lens, width, height, sensor, data.sensor_fit)


def _place(camera, location, rotation, points):
    """Put the camera at ``location`` turned by ``rotation``, its clip range covering ``points``."""
    camera.rotation_mode = "QUATERNION"
    camera.rotation_quaternion = rotation
    camera.location = location
    forward = -np.array(rotation.to_matrix().col[2])
    depths = (points - np.array(location)) @ forward
    camera_data = camera.data
    camera_data.clip_start = max(0.01, min(1.0, 0.5 * float(depths.min())))
    camera_data.clip_end = max(1000.0, 1.5 * float(depths.max()))


def _framed_points(drawing):
    """Everything the frame must hold: the drawn points and the corners of every text's lines."""
    corners = [text.lines.reshape(-1, 3) for text in drawing.texts if text.kind != "overlay"]
    return np.concatenate([drawing.points, *corners]) if corners else drawing.points


# ---------------------------------------------------------------- texts


def fit_texts(
    network: bpy.types.Object,
    camera: bpy.types.Object | None = None,
    scene: bpy.types.Scene | None = None,
    margin: float = 1.08,
) -> list[Problem]:
    """Frame ``camera`` and size and place the network's texts for it; returns what is still wrong.

    Texts smaller than the checks ask for grow, each kind in one step to the
    size it needs (a text's pixels are in proportion to its size): the labels
    and the legend by Label Size, the output neurons' class names and
    probabilities with their neurons (Output Scale), or, where the output column
    cannot grow enough, the top classes' readout shows instead (Top Classes,
    in the labels' size). A label that runs over
    another or over cells gets its long lines wrapped. The network is read and
    the views are tried again after each change: ``STAGE_PASSES`` at most.
    ``margin`` is ``frame_camera``'s. The pose taken is kept on the camera
    (``staged_pose``), where camera moves start.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    camera = camera or scene.camera
    assert camera is not None  # set_up_stage makes one
    camera_data = camera.data
    assert isinstance(camera_data, bpy.types.Camera)  # ``camera`` is a camera object
    camera_data.lens = LENS
    edge = max(0.0, (margin - 1.0) / 2.0)
    drawing = read_drawing(network)
    problems: list[Problem] = []
    # Each pass measures through the view taken last (the stage's own at first) and sizes, wraps and spreads the
    # texts for it; the other views are tried only when that changes nothing and problems remain (a label that runs
    # over cells in every view until it is wrapped would make each of them be tried). Every change is read again.
    views = list(VIEWS)
    for sizing in range(STAGE_PASSES):
        framed = _frame_drawing(camera, drawing, scene, edge, views[:1])
        if framed is None:
            return problems
        view, problems, _taken = framed
        changed = sizing < STAGE_PASSES - 1 and _fit(network, drawing, view, problems)
        if not changed and any(problem.kind != "small" for problem in problems):
            view, problems, taken = _frame_drawing(camera, drawing, scene, edge, views)
            views.remove(taken)
            views.insert(0, taken)
            changed = sizing < STAGE_PASSES - 1 and _fit(network, drawing, view, problems)
        if not changed:
            break
        drawing = read_drawing(network)
    _update_matrices()
    camera[STAGED_POSE_PROPERTY] = [*camera.location[:], *camera.rotation_quaternion[:]]
    return problems


def staged_pose(camera: bpy.types.Object) -> tuple[Vector, Quaternion] | None:
    """The camera's location and rotation as the stage last framed it (``fit_texts``), or None."""
    pose = camera.get(STAGED_POSE_PROPERTY)
    if pose is None or len(pose) != 7:
        return None
    return Vector(pose[:3]), Quaternion(pose[3:])


def _fit(network, drawing, view, problems):
    """Size, wrap and spread the texts for ``view``; whether anything changed.

    Labels that will run into each other or over cells once grown are wrapped
    now: the layer labels of the drawing as read, grown about the top middle
    they hang from, are checked through the same view (computed, not read
    again from the network).
    """
    size = float(get_network_input(network, "Label Size"))
    grown = _grow_texts(network, drawing, view)
    growth = float(get_network_input(network, "Label Size")) / max(size, 1e-6)
    if growth > 1.01 and network.get(DETAILED_PROPERTY, True):
        problems = problems + check_drawing(_grown_labels(drawing, growth), view)
    wrapped = _wrap_labels(network, drawing, problems)
    # Labels that wrapping leaves crowded: a graph's rows stand further apart.
    spread = not wrapped and _spread_rows(network, problems)
    return grown or wrapped or spread


def _update_matrices():
    """Apply a new pose to the camera's matrix, for what reads it next (the depth of field, a render)."""
    view_layer = bpy.context.view_layer
    assert view_layer is not None  # the stubs allow a context without one
    view_layer.update()


def _grow_texts(network, drawing, view):
    """Grow the texts the view shows too small, in one step each: a text's height in pixels is in proportion to its
    size, so the size it needs is its size times the shortfall. Whether anything changed."""
    least = min_text_height(view.height)
    need = least * TEXT_HEADROOM
    shortfall: dict[str, float] = {}
    least_growth = 1.0  # how many times taller the output's texts must grow at least
    for text, height in zip(drawing.texts, text_heights(drawing, view)):
        # Only texts too small grow (staging again changes nothing that passes), to the least height and a margin.
        if height is None or height >= least or text.kind in ("number", "overlay"):
            continue
        # The output neurons' class names and probabilities are sized in their pitch (Output Scale), the rest by
        # Label Size.
        kind = "output" if text.kind == "probability" or text.group.startswith("the class names") else "labels"
        shortfall[kind] = max(shortfall.get(kind, 1.0), need / max(height, 1e-3))
        if kind == "output":
            least_growth = max(least_growth, least / max(height, 1e-3))
    changed = False
    if "labels" in shortfall:
        size = float(get_network_input(network, "Label Size"))
        grown = min(size * shortfall["labels"], _built_label_size(network) * MAX_LABEL_GROWTH)
        if grown > size * 1.01:
            set_network_input(network, "Label Size", round(grown, 2))
            _make_room(network, grown - size)
            changed = True
    if "output" in shortfall and _has_input(network, OUTPUT_SCALE):
        scale = float(get_network_input(network, OUTPUT_SCALE))
        room = min(scale * _column_room(drawing), MAX_OUTPUT_SCALE)
        grown = min(scale * shortfall["output"], room)
        if scale * least_growth > room * HOPELESS_GROWTH or grown <= scale * 1.01:
            changed = _show_top_classes(network) or changed
        elif grown > scale * 1.01:
            set_network_input(network, OUTPUT_SCALE, round(grown, 2))
            changed = True
    return changed


def _show_top_classes(network):
    """Show the top classes' readout instead of the class names and probabilities beside the output neurons, which
    the output column cannot grow tall enough to make readable; the column stands at its own size again. Whether
    anything changed (a network built before the readout existed has no Top Classes)."""
    if not _has_input(network, TOP_CLASSES) or int(get_network_input(network, TOP_CLASSES)) > 0:
        return False
    set_network_input(network, TOP_CLASSES, DEFAULT_TOP_CLASSES)
    set_network_input(network, OUTPUT_SCALE, 1.0)
    return True


def _grown_labels(drawing, factor):
    """``drawing`` with the labels under its layers ``factor`` times as large, about the top middle of each."""
    texts = []
    for text in drawing.texts:
        if text.group == "the labels under the layers":
            anchor = (text.lines[0, 2] + text.lines[0, 3]) / 2
            text = replace(text, lines=anchor + factor * (text.lines - anchor), heights=factor * text.heights)
        texts.append(text)
    return replace(drawing, texts=texts)


def _has_input(network, name):
    """Whether the network's tree has the input ``name`` (a network built by an older add-on may not)."""
    try:
        get_network_input(network, name)
    except KeyError:
        return False
    return True


def _make_room(network, growth):
    """Stand the units of a graph in rows further apart as their labels grow by ``growth`` (Label Size), and wrap
    the rows again to fit 16:9: a unit's label is a few lines of about a dozen letters, its block's too."""
    if network.get(DETAILED_PROPERTY, True):
        return  # a layer per column in one row: its labels are wrapped instead
    for name, per_size in (("Layer Spacing", GRAPH_ROOM[0]), ("Lane Spacing", GRAPH_ROOM[1])):
        set_network_input(network, name, round(float(get_network_input(network, name)) + per_size * growth, 2))
    fit_rows(network)


def _spread_rows(network, problems):
    """Stand the rows of a graph's units further apart (Lane Spacing) when labels run over other texts or cells; whether
    it did. A label hangs under its unit, over the row in front of it."""
    if network.get(DETAILED_PROPERTY, True):
        return False  # a layer per column in one row: nothing in front of its labels
    if not any(
        problem.kind in ("overlap", "over cells") and problem.subject.startswith("the label") for problem in problems
    ):
        return False
    set_network_input(network, "Lane Spacing", round(float(get_network_input(network, "Lane Spacing")) * ROW_SPREAD, 2))
    fit_rows(network)
    return True


def _column_room(drawing):
    """How many times taller the output layers (those with class names) may grow: until the tallest of them stands
    ``COLUMN_ROOM`` times as tall as the tallest other layer (beyond, the output would tower over the network)."""
    outputs = {text.layer for text in drawing.texts if text.kind == "probability" and text.layer is not None}
    outputs |= {
        text.layer for text in drawing.texts if text.group.startswith("the class names") and text.layer is not None
    }
    heights: dict[bool, float] = {}
    for layer in np.unique(drawing.cell_layers):
        if layer < 0:
            continue
        extent = float(np.ptp(drawing.cells[drawing.cell_layers == layer][:, :, 2]))
        output = int(layer) in outputs
        heights[output] = max(heights.get(output, 0.0), extent)
    if not heights.get(True) or not heights.get(False):
        return 1.0
    return max(1.0, COLUMN_ROOM * heights[False] / heights[True])


def _built_label_size(network):
    """The Label Size the network had when it was first staged (kept on it: staging again grows from there)."""
    if BUILT_LABEL_SIZE_PROPERTY not in network:
        network[BUILT_LABEL_SIZE_PROPERTY] = float(get_network_input(network, "Label Size"))
    return float(network[BUILT_LABEL_SIZE_PROPERTY])


def _wrap_labels(network, drawing, problems):
    """Wrap the long lines of labels that run over other texts or cells; whether any changed."""
    crowded = {
        name
        for problem in problems
        if problem.kind in ("overlap", "over cells", "outside")
        for name in (problem.subject, problem.other)
    }
    sockets = label_sockets(network)
    changed = False
    for text in drawing.texts:
        if text.name not in crowded or text.source not in sockets:
            continue
        socket: Any = sockets[text.source]  # Any: the stubs give NodeSocket no default_value
        wrapped = wrap_label(socket.default_value)
        if wrapped != socket.default_value:
            socket.default_value = wrapped
            changed = True
    if changed:
        network.update_tag()
    return changed


def wrap_label(text: str, least: int = 20) -> str:
    """``text`` with its long lines wrapped at spaces, a step further each time it is wrapped again.

    A label is a layer's name, its type and shape, then notes (its
    connections, "synthetic input"). The notes are wrapped first, to the width
    of the name and type or ``least`` characters; then the type and shape too,
    to the width of the name or 12 characters. Further it is not wrapped.
    """
    lines = text.split("\n")
    head = max(len(line) for line in lines[:2])
    keep = 2 if any(len(line) > max(least, head) for line in lines[2:]) else 1
    width = max(least, head) if keep == 2 else max(12, len(lines[0]))
    wrapped = lines[:keep]
    for line in lines[keep:]:
        wrapped += textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(wrapped)


def camera_projection(camera: bpy.types.Object, scene: bpy.types.Scene | None = None) -> Matrix:
    """4x4 world -> clip matrix of ``camera`` at the scene's resolution, with clip y scaled to square pixels.

    Clip x spans the frame's width as -1..1 and clip y its height as -h/w..h/w,
    so a raster of those bounds has the render's pixels.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    width, height = scene.render.resolution_x, scene.render.resolution_y
    projection = camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=width, y=height)
    square = Matrix.Diagonal((1.0, height / width, 1.0, 1.0))
    return square @ projection @ camera.matrix_world.inverted()


def configure_render(scene: bpy.types.Scene | None, engine: str, width: int, height: int, samples: int) -> None:
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    render = scene.render
    render.engine = ENGINES[engine.upper()]  # type: ignore[assignment]  # bpy stubs: engines register at run time
    render.resolution_x, render.resolution_y = width, height
    render.resolution_percentage = 100
    if render.engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        scene.cycles.use_denoising = False
        scene.cycles.max_bounces = 4
        scene.cycles.transparent_max_bounces = 8
    else:
        assert scene.eevee is not None  # a scene always has them; the stubs allow None
        scene.eevee.taa_render_samples = samples


def render_still(
    path: str | os.PathLike[str],
    scene: bpy.types.Scene | None = None,
    engine: str = "CYCLES",
    width: int = 1280,
    height: int = 720,
    samples: int = 32,
) -> str:
    """Render the scene's camera view to a PNG at ``path``; returns the path."""
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    configure_render(scene, engine, width, height, samples)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = os.path.abspath(path)
    bpy.ops.render.render(write_still=True, scene=scene.name)
    return scene.render.filepath


def _set_world(scene):
    world = scene.world or bpy.data.worlds.new("BCNN World")
    scene.world = world
    assert world.node_tree is not None  # a world has a node tree in Blender 5; the stubs allow None
    background: Any = world.node_tree.nodes.get("Background")  # Any: the stubs give sockets no default_value
    if background is not None and world.get(STAGED_PROPERTY):
        return
    if background is None:
        background = world.node_tree.nodes.new("ShaderNodeBackground")
        output = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
        world.node_tree.links.new(background.outputs[0], output.inputs["Surface"])
    background.inputs["Color"].default_value = BACKGROUND
    background.inputs["Strength"].default_value = 1.0
    world[STAGED_PROPERTY] = True
    # The first staging also sets the render to the add-on's defaults (those of Render Still), so F12 renders
    # what the default look ("dark") means; staging again keeps a look's engine and samples.
    configure_render(scene, DEFAULT_ENGINE, scene.render.resolution_x, scene.render.resolution_y, DEFAULT_SAMPLES)


def _ensure_light(scene):
    light = bpy.data.objects.get(LIGHT_NAME)
    if light is None:
        data = bpy.data.lights.new(LIGHT_NAME, "SUN")
        assert isinstance(data, bpy.types.SunLight)  # what a "SUN" light is; the stubs say Light
        data.energy = 2.0
        data.angle = 0.3
        light = bpy.data.objects.new(LIGHT_NAME, data)
        light.rotation_euler = (0.9, 0.2, -0.6)
    if light.name not in scene.collection.objects:
        scene.collection.objects.link(light)
    return light


def _ensure_camera(scene):
    camera = bpy.data.objects.get(CAMERA_NAME)
    if camera is None:
        camera = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
    if camera.name not in scene.collection.objects:
        scene.collection.objects.link(camera)
    scene.camera = camera
    return camera
