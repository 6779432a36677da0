"""Scene style presets: the built-in styles apply, user styles round-trip, bad files change nothing."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parent.parent
BUILTIN_STYLES = ("dark", "glow", "light", "print")


def _scene_values(bpy, network):
    """What a style sets, read straight from the modifier, world, light, materials, render settings, compositor
    and camera."""
    from blender_cnn.scene.network import get_network_input

    scene = bpy.context.scene
    materials = bpy.data.materials
    principled = {
        name: next(n for n in materials[name].node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
        for name in ("BCNN Cell", "BCNN Edge", "BCNN Highlight")
    }
    label = next(n for n in materials["BCNN Label"].node_tree.nodes if n.bl_idname == "ShaderNodeEmission")
    bar = next(
        s for s in materials["BCNN Highlight"].node_tree.nodes["BCNN Bar Color"].inputs if s.identifier == "B_Color"
    )
    links = next(
        s for s in materials["BCNN Edge"].node_tree.nodes["BCNN Link Brightness"].inputs if s.identifier == "B_Color"
    )
    world = scene.world.node_tree.nodes
    background = next(n for n in world if n.bl_idname == "ShaderNodeBackground")
    # Camera rays see the background; every other ray sees it times the world lighting.
    lighting = world.get("BCNN World Lighting")
    render = scene.render
    dpi = round(render.ppm_factor / render.ppm_base * 0.0254, 3)
    glare = None
    if scene.compositing_node_group is not None:
        glare = next(n for n in scene.compositing_node_group.nodes if n.bl_idname == "CompositorNodeGlare")
        assert glare.inputs["Type"].default_value == "Bloom"
    dof = scene.camera.data.dof
    return {
        "activation_colormap": get_network_input(network, "Activation Colormap"),
        "weight_colormap": get_network_input(network, "Weight Colormap"),
        "normalize_across_network": bool(get_network_input(network, "Normalize Across Network")),
        "cell_gap": get_network_input(network, "Cell Gap"),
        "link_radius": get_network_input(network, "Link Radius"),
        "background": list(background.inputs["Color"].default_value),
        "world_lighting": lighting.inputs[2].default_value if lighting else background.inputs["Strength"].default_value,
        "light_energy": bpy.data.objects["BCNN Key Light"].data.energy,
        "label_color": list(label.inputs["Color"].default_value),
        "bar_color": list(bar.default_value),
        "link_brightness": links.default_value[0],
        "cell_emission": principled["BCNN Cell"].inputs["Emission Strength"].default_value,
        "edge_emission": principled["BCNN Edge"].inputs["Emission Strength"].default_value,
        "highlight_emission": principled["BCNN Highlight"].inputs["Emission Strength"].default_value,
        "engine": {"BLENDER_EEVEE": "EEVEE"}.get(render.engine, render.engine),
        "samples": scene.eevee.taa_render_samples if render.engine == "BLENDER_EEVEE" else scene.cycles.samples,
        "resolution": [render.resolution_x, render.resolution_y],
        "print_size": [render.resolution_x / dpi, render.resolution_y / dpi],
        "dpi": dpi,
        "dither": render.dither_intensity,
        "bloom_strength": glare.inputs["Strength"].default_value if glare else 0.0,
        "bloom_threshold": glare.inputs["Threshold"].default_value if glare else 1.0,
        "bloom_size": glare.inputs["Size"].default_value if glare else 0.5,
        # Depth of field as the blur it was asked for; its focus and f-stop are checked in test_looks.py.
        "depth_of_field": scene.camera.data.get("blender_cnn_dof_blur", 0.0) if dof.use_dof else 0.0,
    }


def _assert_matches(values, style):
    for key, expected in style.items():
        if key in ("name", "description"):
            continue
        if isinstance(expected, (list, float, int)) and not isinstance(expected, bool):
            assert values[key] == pytest.approx(expected, abs=1e-6), key
        else:
            assert values[key] == expected, key


def test_the_built_in_styles_are_listed_before_the_users(user_styles):
    from blender_cnn.scene.style import save_style, style_presets

    save_style({"activation_colormap": "plasma"}, "mine")
    presets = style_presets()
    identifiers = [identifier for identifier, _label, _path in presets]
    assert identifiers[: len(BUILTIN_STYLES)] == [f"builtin:{name}" for name in sorted(BUILTIN_STYLES)]
    assert identifiers[-1] == "user:mine"
    assert presets[-1][1] == "mine (user)"


def test_the_dark_style_is_the_defaults(staged_designed_network, blender):
    from blender_cnn.scene.style import current_style, load_style

    dark = load_style(REPO / "presets" / "styles" / "dark.json")
    _assert_matches(current_style(staged_designed_network), dark)


@pytest.mark.parametrize("name", BUILTIN_STYLES)
def test_each_built_in_style_applies_to_a_network(staged_designed_network, blender, name):
    from blender_cnn.scene.style import apply_style, current_style

    path = REPO / "presets" / "styles" / f"{name}.json"
    style = json.loads(path.read_text())
    if name != "dark":  # start from another look, so every key has to change
        apply_style(staged_designed_network, REPO / "presets" / "styles" / "dark.json")
    apply_style(staged_designed_network, str(path), blender.context.scene)
    values = _scene_values(blender, staged_designed_network)
    _assert_matches(values, style)
    current = current_style(staged_designed_network, blender.context.scene)
    # A print size is pixels at a dpi: the current style says the pixels and the dpi.
    current["print_size"] = [side / current["dpi"] for side in current["resolution"]]
    _assert_matches(current, style)


def test_every_built_in_style_holds_every_key(blender):
    """Applying a look after any other then gives the same scene, whatever came before."""
    from blender_cnn.scene.style import KEYS, load_style

    for name in BUILTIN_STYLES:
        style = load_style(REPO / "presets" / "styles" / f"{name}.json")
        # One size or the other: pixels for screens, inches at a dpi for print.
        expected = set(KEYS) - {"print_size" if "resolution" in style else "resolution"}
        assert set(style) - {"name", "description"} == expected, name


def test_a_partial_style_changes_only_its_keys(staged_designed_network, blender):
    from blender_cnn.scene.style import apply_style

    before = _scene_values(blender, staged_designed_network)
    apply_style(staged_designed_network, {"activation_colormap": "plasma", "background": [1, 1, 1]})
    after = _scene_values(blender, staged_designed_network)
    assert after.pop("activation_colormap") == "plasma" and after.pop("background") == [1.0, 1.0, 1.0, 1.0]
    before.pop("activation_colormap"), before.pop("background")
    assert after == before


def test_a_saved_user_style_loads_back_the_same(staged_designed_network, blender, user_styles):
    from blender_cnn.scene.style import apply_style, current_style, load_style, save_style

    apply_style(staged_designed_network, REPO / "presets" / "styles" / "print.json")
    apply_style(staged_designed_network, {"cell_emission": 0.33, "label_color": [0.1, 0.2, 0.3, 1.0]})
    saved = current_style(staged_designed_network)
    path = save_style(saved, "my print/style")
    assert Path(path).parent == user_styles and Path(path).name == "my_print_style.json"
    assert not Path(path).is_relative_to(REPO)
    loaded = load_style(path)
    assert loaded.pop("name") == "my print/style"
    _assert_matches(loaded, saved)
    assert set(loaded) == set(saved)

    apply_style(staged_designed_network, REPO / "presets" / "styles" / "dark.json")
    apply_style(staged_designed_network, path)
    _assert_matches(_scene_values(blender, staged_designed_network), saved)


@pytest.mark.parametrize(
    "key, value",
    [
        ("activation_colormap", "jet"),
        ("weight_colormap", "viridis"),  # a sequential map is no diverging one
        ("background", [1.0, 0.5]),
        ("label_color", [0.1, 2.0, 0.1, 1.0]),
        ("label_color", "black"),
        ("light_energy", -1.0),
        ("cell_emission", True),
        ("normalize_across_network", "yes"),
        ("background_colour", [1, 1, 1, 1]),  # unknown key
        ("cell_gap", 1.5),
        ("link_radius", -1),
        ("bar_color", [0.5, 0.5]),
        ("link_brightness", 1.5),
        ("engine", "octane"),
        ("samples", 0),
        ("samples", 16.5),
        ("resolution", [1920]),
        ("resolution", [1920, 2]),
        ("print_size", [7, 0]),
        ("dpi", 0),
        ("dither", 3),
        ("world_lighting", -0.5),
        ("bloom_strength", 2.0),
        ("bloom_size", "big"),
        ("depth_of_field", 0.5),
    ],
)
def test_a_bad_preset_names_its_file_and_key_and_changes_nothing(
    staged_designed_network, blender, tmp_path, key, value
):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.style import apply_style, load_style

    # Valid keys before the bad one: none of them may be applied either.
    style = {
        "activation_colormap": "magma",
        "background": [1, 1, 1, 1],
        "light_energy": 7.0,
        "label_color": [0, 0, 0, 1],
        "edge_emission": 0.2,
        "world_lighting": 0.0,
        "dpi": 300,
        "bloom_strength": 0.5,
        "depth_of_field": 0.01,
        key: value,
    }
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(style))
    before = _scene_values(blender, staged_designed_network)
    for attempt in (lambda: apply_style(staged_designed_network, str(path)), lambda: load_style(path)):
        with pytest.raises(BlenderCNNError) as raised:
            attempt()
        assert raised.value.where == str(path)
        assert repr(key) in raised.value.message
    assert _scene_values(blender, staged_designed_network) == before


@pytest.mark.parametrize(
    "style, message",
    [
        ({"print_size": [7, 4]}, "without 'dpi'"),
        ({"print_size": [7, 4], "dpi": 300, "resolution": [1920, 1080]}, "both 'resolution' and 'print_size'"),
        ({"print_size": [70, 40], "dpi": 300}, "21000 x 12000 pixels"),
    ],
)
def test_a_print_size_needs_its_dpi_and_a_size_blender_can_render(staged_designed_network, style, message):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.style import apply_style

    with pytest.raises(BlenderCNNError, match=message):
        apply_style(staged_designed_network, style)


def test_a_file_that_is_no_json_object_is_refused(staged_designed_network, tmp_path):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.style import apply_style

    for text in ("{not json", "[1, 2]"):
        path = tmp_path / "broken.json"
        path.write_text(text)
        with pytest.raises(BlenderCNNError, match="broken.json"):
            apply_style(staged_designed_network, path)


def test_saving_refuses_a_bad_style_and_writes_nothing(user_styles):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.style import save_style

    with pytest.raises(BlenderCNNError, match="activation_colormap"):
        save_style({"activation_colormap": "jet"}, "bad")
    assert not (user_styles / "bad.json").exists()


def test_the_operators_apply_and_save_styles(staged_designed_network, blender, user_styles):
    bpy = blender
    assert bpy.ops.bcnn.apply_style.poll()
    assert bpy.ops.bcnn.apply_style(style="builtin:print") == {"FINISHED"}
    _assert_matches(
        _scene_values(bpy, staged_designed_network), json.loads((REPO / "presets/styles/print.json").read_text())
    )

    assert bpy.ops.bcnn.save_style(name="from operator") == {"FINISHED"}
    saved = user_styles / "from_operator.json"
    assert saved.is_file()
    assert bpy.ops.bcnn.apply_style(style="builtin:dark") == {"FINISHED"}
    assert bpy.ops.bcnn.apply_style(style="user:from_operator") == {"FINISHED"}
    assert _scene_values(bpy, staged_designed_network)["dpi"] == 300


def test_the_operator_reports_a_bad_preset_and_changes_nothing(staged_designed_network, blender, user_styles):
    bpy = blender
    user_styles.mkdir(parents=True, exist_ok=True)
    (user_styles / "broken.json").write_text(json.dumps({"background": [1, 1, 1, 1], "weight_colormap": "jet"}))
    before = _scene_values(bpy, staged_designed_network)
    with pytest.raises(RuntimeError, match="weight_colormap"):
        bpy.ops.bcnn.apply_style(style="user:broken")
    assert _scene_values(bpy, staged_designed_network) == before


def test_the_operators_need_an_active_network(blender):
    assert not blender.ops.bcnn.apply_style.poll()
    assert not blender.ops.bcnn.save_style.poll()
