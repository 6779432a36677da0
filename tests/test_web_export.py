"""Export for Web: the .glb holds what the scene draws, in its colors; each epoch's colors go into the file for the
page's slider; the page opens in headless Chromium from disk, shows the network, turns when dragged and moves
through the epochs; and the add-on carries the viewer built from the pinned three.js."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scene_readers import background_color, drawn_quads, evaluated_geometry, read_png
from ui_recorder import draw_network_panel

from blender_cnn.scene.drawn import DrawnInstances

REPO = Path(__file__).resolve().parent.parent
EPOCHS = [0, 1, 2]
_COMPONENTS = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


# ---------------------------------------------------------------- fixtures and readers


@pytest.fixture(scope="module")
def three_epoch_bundle(digits_design_bundle, tmp_path_factory):
    """The digits design at three epochs: its random weights scaled and nudged, activations from numpy."""
    from blender_cnn.core.bundle import load_bundle, write_bundle
    from blender_cnn.core.forward import forward

    folder = tmp_path_factory.mktemp("web_epochs")
    rng = np.random.default_rng(3)
    first = digits_design_bundle
    arrays = {key: first.array(key) for key in np.load(first.path).files if key != "manifest.json"}
    for key in [key for key in arrays if key.startswith("weights/")]:
        start = arrays[key][0]
        spread = float(np.std(start)) or 0.1
        arrays[key] = np.stack(
            [start * scale + 0.3 * spread * rng.normal(size=start.shape) for scale in (0.3, 0.8, 1.3)]
        ).astype(np.float32)
    for key in [key for key in arrays if key.startswith("activations/") or key == "samples/predictions"]:
        arrays[key] = np.concatenate([arrays[key]] * len(EPOCHS))
    manifest = {key: value for key, value in first.manifest.items() if key not in ("format", "version")}
    manifest["epochs"] = EPOCHS
    draft = load_bundle(write_bundle(folder / "draft.bcnn.npz", manifest, arrays))
    for epoch in EPOCHS:
        for name, values in forward(draft, arrays["samples/inputs"], epoch).items():
            arrays[f"activations/{name}"][epoch] = values
        arrays["samples/predictions"][epoch] = arrays["activations/output"][epoch]
    return load_bundle(write_bundle(folder / "epochs.bcnn.npz", manifest, arrays))


@pytest.fixture
def staged_epoch_network(blender, three_epoch_bundle):
    """The three-epoch network on the stage (dark world, camera), showing sample 3 at its last epoch."""
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    network = build_network(three_epoch_bundle, sample=3)
    set_up_stage(network, blender.context.scene)
    return network


@pytest.fixture(scope="module")
def web_browser():
    """scripts/web_browser.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("web_browser", REPO / "scripts" / "web_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def glb_accessor(document, binary, index):
    """An accessor's values as rows (normalized integers as floats in [0, 1])."""
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    dtype, width = np.dtype(_COMPONENTS[accessor["componentType"]]), _WIDTHS[accessor["type"]]
    assert view.get("byteStride", width * dtype.itemsize) == width * dtype.itemsize
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    values = np.frombuffer(binary, dtype, accessor["count"] * width, start).reshape(-1, width)
    return values / np.iinfo(dtype).max if accessor.get("normalized") else values


def glb_meshes(document, binary):
    """``{mesh name: {"mode", "material", attribute: rows}}`` of a .glb's (single-primitive) meshes."""
    meshes = {}
    for mesh in document["meshes"]:
        (primitive,) = mesh["primitives"]
        read = {name: glb_accessor(document, binary, index) for name, index in primitive["attributes"].items()}
        meshes[mesh["name"]] = dict(read, mode=primitive.get("mode", 4), material=primitive.get("material"))
    return meshes


def srgb_bytes(linear):
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0, 1)
    return np.round(255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055))


def scene_state(bpy):
    """What a user could notice changed in the file: its datablocks, the scene's properties, frame and selection."""
    kinds = ("objects", "meshes", "materials", "collections", "node_groups", "images", "hair_curves", "actions")
    scene = bpy.context.scene
    return {
        **{kind: sorted(item.name for item in getattr(bpy.data, kind)) for kind in kinds},
        "scene_properties": sorted(scene.keys()),
        "children": sorted(child.name for child in scene.collection.children),
        "frame": scene.frame_current,
        "selected": sorted(obj.name for obj in bpy.context.selected_objects),
        "active": getattr(bpy.context.view_layer.objects.active, "name", None),
    }


# ---------------------------------------------------------------- the .glb


@pytest.mark.bpy
def test_the_glb_holds_every_drawn_cell_connection_and_label_in_the_scene_s_colors(blender, designed_network, tmp_path):
    from blender_cnn.scene.drawn import drawn_curves
    from blender_cnn.scene.materials import CELL_MATERIAL, LABEL_MATERIAL
    from blender_cnn.scene.web_export import export_for_web, read_glb

    before = scene_state(blender)
    written = export_for_web(designed_network, tmp_path / "web")
    assert scene_state(blender) == before, "the export left something behind or changed the scene"

    document, binary = read_glb(written.glb)
    assert document["scenes"][document["scene"]]["nodes"], "the .glb's scene has no nodes"
    meshes = glb_meshes(document, binary)
    name = designed_network.name
    cells, labels, lines = meshes[f"{name}: cells"], meshes[f"{name}: labels"], meshes[f"{name}: connections"]
    for mesh in (cells, labels, lines):
        assert "COLOR_0" in mesh, "a part has no vertex colors"
        assert "KHR_materials_unlit" in document["materials"][mesh["material"]]["extensions"]

    # Every instanced square of the scene is four corners in the file; the cells are most of them. The
    # probabilities' digits, instanced glyphs, are written with the labels.
    quads, _quad_geometry = drawn_quads(designed_network, CELL_MATERIAL)
    geometry = evaluated_geometry(designed_network)
    drawn = DrawnInstances(geometry, designed_network.matrix_world)
    # Meshes only: the instance that carries the nested cells references a geometry of instances.
    instanced = [reference.mesh for reference in drawn.references]
    square = [mesh is not None and len(mesh.vertices) == 4 and len(mesh.polygons) == 1 for mesh in instanced]
    glyphs = [mesh for mesh, is_square in zip(instanced, square) if mesh is not None and not is_square]
    reference_index = drawn.reference_index
    assert len(cells["POSITION"]) == 4 * np.take(square, reference_index).sum() and len(quads) > 4000
    assert glyphs and len(labels["POSITION"]) > sum(len(glyph.vertices) for glyph in glyphs)
    exported = {tuple(row) for row in np.round(cells["COLOR_0"][:, :3], 3)}
    drawn = {tuple(row) for row in np.round(quads.attribute("cell_color")[:, :3], 3)}
    assert drawn <= exported and len(exported) > 100

    # The connections are lines through every point of every drawn curve, where the scene draws them (glTF is Y up).
    curves = drawn_curves(designed_network)
    assert lines["mode"] == 1 and len(lines["POSITION"]) == curves.shape[0] * curves.shape[1]
    x, y, z = lines["POSITION"].T
    blender_positions = np.c_[x, -z, y]
    flat = curves.reshape(-1, 3)
    np.testing.assert_allclose(blender_positions.min(axis=0), flat.min(axis=0), atol=1e-3)
    np.testing.assert_allclose(blender_positions.max(axis=0), flat.max(axis=0), atol=1e-3)
    assert len({tuple(row) for row in np.round(lines["COLOR_0"][:, :3], 2)}) > 20, "the connections lost their colors"

    # The labels show in the label material's color.
    emission = next(node for node in blender.data.materials[LABEL_MATERIAL].node_tree.nodes if node.type == "EMISSION")
    label_color = np.array(emission.inputs["Color"].default_value[:3])
    assert np.isclose(labels["COLOR_0"][:, :3], label_color, atol=1e-3).all(axis=1).mean() > 0.5

    # One epoch: no slider and no epoch table.
    assert written.epochs == () and "extras" not in document
    assert not any("_BCNN_ELEMENT" in mesh for mesh in meshes.values())
    assert written.glb_bytes == Path(written.glb).stat().st_size


@pytest.mark.bpy
def test_each_epoch_s_colors_go_into_the_glb_and_the_scene_keeps_its_epoch_and_keys(
    blender, staged_epoch_network, tmp_path
):
    from blender_cnn.scene.animation import animate_training
    from blender_cnn.scene.materials import CELL_MATERIAL
    from blender_cnn.scene.network import get_network_input, set_network_input
    from blender_cnn.scene.web_export import export_for_web, read_glb

    network = staged_epoch_network
    animate_training(network, frames_per_epoch=10, hold_frames=2)
    blender.context.scene.frame_set(14)  # between epochs 1 and 2
    shown = get_network_input(network, "Epoch")
    written = export_for_web(network, tmp_path / "epochs.html")
    assert written.html == str(tmp_path / "epochs.html") and written.glb == str(tmp_path / "epochs.glb")
    assert get_network_input(network, "Epoch") == pytest.approx(shown)
    blender.context.scene.frame_set(1)
    assert get_network_input(network, "Epoch") == pytest.approx(0.0), "the Epoch keyframes stopped driving it"

    assert written.epochs == tuple(EPOCHS)
    document, binary = read_glb(written.glb)
    extras = document["extras"]["blender_cnn"]
    assert extras["epochs"] == EPOCHS
    table = glb_accessor(document, binary, extras["epoch_colors"]["accessor"])
    table = table.reshape(len(EPOCHS), extras["epoch_colors"]["elements"], 3)
    assert written.epoch_table_bytes == table.size
    assert (table[0] != table[-1]).any(axis=1).mean() > 0.3, "the epochs' colors hardly differ"

    # The table's row of an epoch holds what the scene draws at that epoch, cell by cell.
    set_network_input(network, "Epoch", 0.0)
    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    difference = np.abs(table[0][quads.chosen] - srgb_bytes(quads.attribute("cell_color")[:, :3]))
    assert difference.max() <= 1

    # Each animated vertex names its element: the cells' and connections' vertices do, the labels' do not.
    meshes = glb_meshes(document, binary)
    name = network.name
    for part in ("cells", "connections"):
        elements = meshes[f"{name}: {part}"]["_BCNN_ELEMENT"][:, 0]
        assert (elements >= 0).mean() > 0.9, part
    assert "_BCNN_ELEMENT" not in meshes[f"{name}: labels"]


@pytest.mark.bpy
def test_the_operator_writes_the_page_beside_its_glb_and_the_panel_offers_it(blender, designed_network, tmp_path):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.web_export import export_for_web

    blender.context.view_layer.objects.active = designed_network
    assert "bcnn.export_web" in draw_network_panel(blender)["operators"]
    path = tmp_path / "my network.html"
    assert blender.ops.bcnn.export_web(filepath=str(path), title="Digits <CNN>") == {"FINISHED"}
    page = path.read_text(encoding="utf-8")
    assert (tmp_path / "my network.glb").is_file()
    assert "<title>Digits &lt;CNN&gt;</title>" in page

    camera = blender.data.objects.new("not a network", None)
    with pytest.raises(BlenderCNNError, match="not a blender_cnn network"):
        export_for_web(camera, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


# ---------------------------------------------------------------- the page, in a browser


def _differs(first, second, threshold=0.1):
    return np.abs(first - second).max(axis=-1) > threshold


@pytest.mark.bpy
@pytest.mark.slow
def test_the_page_shows_the_network_in_headless_chromium_turns_when_dragged_and_plays_epochs(
    blender, staged_epoch_network, tmp_path, web_browser
):
    from blender_cnn.scene.web_export import export_for_web

    if web_browser.find_chromium() is None:
        pytest.skip("no Chromium to open the page in: scripts/setup.sh installs Debian's chromium (apt-get, as root)")
    written = export_for_web(staged_epoch_network, tmp_path / "web")
    with web_browser.Chromium(width=800, height=450) as browser:
        browser.open(written.html)
        state = browser.wait_for_viewer()  # raises when the page reports an error, such as no WebGL
        assert state["epochs"], "the page has no epoch slider"
        browser.screenshot(tmp_path / "first.png")
        first = read_png(tmp_path / "first.png")
        box = browser.evaluate("bcnnViewer.footprint()")

        # The page's background is the scene's world; the network covers its footprint with colored cells.
        colors, counts = np.unique(np.round(first.reshape(-1, 3) * 255), axis=0, return_counts=True)
        np.testing.assert_allclose(colors[counts.argmax()] / 255, background_color(), atol=2 / 255)
        drawn = np.abs(first - background_color()).max(axis=-1) > 0.1
        left, right, top, bottom = (int(round(box[side])) for side in ("left", "right", "top", "bottom"))
        assert 0 <= left < right <= 800 and 0 <= top < bottom <= 450 and right - left > 400
        inside = drawn[top:bottom, left:right]
        assert inside.mean() > 0.05, f"only {inside.mean():.1%} of the network's footprint is drawn"
        outside = drawn.copy()
        outside[top:bottom, left:right] = False
        header, footer = browser.evaluate(
            "[document.querySelector('header').getBoundingClientRect().bottom,"
            " document.querySelector('footer').getBoundingClientRect().top]"
        )
        outside[: int(header) + 1], outside[int(footer) :] = False, False  # the title and the controls
        assert outside.mean() < 0.01, "something is drawn away from the network"
        assert len(np.unique(np.round(first[top:bottom, left:right][inside] * 32), axis=0)) > 30

        # The slider moves the cells to the first epoch's colors.
        frames = browser.evaluate("bcnnViewer.frames")
        browser.evaluate("bcnnViewer.setEpoch(0)")
        browser.wait_for(f"bcnnViewer.frames > {frames}")
        browser.screenshot(tmp_path / "first_epoch.png")
        first_epoch = read_png(tmp_path / "first_epoch.png")
        assert _differs(first, first_epoch, 0.05)[top:bottom, left:right].mean() > 0.005, "the slider changed nothing"
        assert browser.evaluate("document.getElementById('bcnn-epoch-label').textContent") == "Epoch 0"

        # A drag turns the view: the next screenshot differs, and still shows the network.
        frames = browser.evaluate("bcnnViewer.frames")
        browser.drag(60)
        browser.wait_for(f"bcnnViewer.frames > {frames + 1}")
        browser.screenshot(tmp_path / "turned.png")
        turned = read_png(tmp_path / "turned.png")
        assert _differs(first_epoch, turned).mean() > 0.02, "dragging did not turn the view"
        assert (np.abs(turned - background_color()).max(axis=-1) > 0.1)[int(header) : int(footer)].mean() > 0.02

        # Everything came from the page itself: no request left it.
        assert browser.requests and all(url.startswith(("file:", "data:", "blob:")) for url in browser.requests)


# ---------------------------------------------------------------- what the add-on carries


def test_the_viewer_is_built_from_the_exactly_pinned_and_integrity_locked_three_js():
    spec = importlib.util.spec_from_file_location("build_web_viewer", REPO / "scripts" / "build_web_viewer.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    versions = build.pinned_versions()  # refuses a range or a version the lock does not hold with sha512
    assert set(versions) == {"three", "esbuild"}
    assert build.is_up_to_date(), "blender_cnn/web/viewer.js is stale: run scripts/build_web_viewer.py"
    first_line = build.OUTPUT.read_text(encoding="utf-8").splitlines()[0]
    assert f"three {versions['three']}" in first_line
    lock = json.loads(build.LOCK.read_text())["packages"]["node_modules/three"]
    assert lock["integrity"].startswith("sha512-") and lock["license"] == "MIT"


@pytest.mark.bpy
def test_the_extension_zip_carries_the_page_and_its_viewer(extension_zip):
    import zipfile

    names = set(zipfile.ZipFile(extension_zip).namelist())
    assert {"web/page.html", "web/viewer.js", "scene/web_export.py", "ui/web.py"} <= names
    assert not [name for name in names if "node_modules" in name]
