"""The sidebar's panels draw in every state a user meets, with a stand-in layout that records what they show: which
panels show (each polls for what it needs), what each holds, and that the README says where things are."""

import functools
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from ui_recorder import RecordingLayout, draw_sidebar_panels, shown_sidebar_panels
from ui_recorder import draw_network_panel as draw_panel

pytestmark = pytest.mark.bpy
README = Path(__file__).resolve().parent.parent / "README.md"
SUB_PANELS = ("Timeline", "Layout", "Layers", "Connections", "Importance", "Operations", "Style", "Render")


def active(blender, bundle, **options):
    from blender_cnn.scene.network import build_network

    network = build_network(bundle, **options)
    blender.context.view_layer.objects.active = network
    return network


def select_layer(blender, name):
    draw_sidebar_panels(blender)
    state = blender.context.window_manager.bcnn_layer_list
    state.active_index = [row.name for row in state.rows].index(name)


def shown_texts(record):
    """Everything a panel shows by name: its properties' and buttons' texts."""
    return set(record["props"]) | set(record["operator_texts"])


# ---------------------------------------------------------------- which panels show


def test_every_panel_is_in_the_cnn_tab_of_the_3d_viewport_s_sidebar_and_folds_away():
    from blender_cnn.ui.panels import classes

    for panel in classes:
        assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "CNN")
        assert "HIDE_HEADER" not in getattr(panel, "bl_options", set()), f"{panel.bl_label} folds by its header"
        assert panel.icon != "NONE", f"{panel.bl_label} has an icon in its header"
    labels = [panel.bl_label for panel in classes]
    assert labels == ["CNN Network", "Timeline", "Layout", "Layers", "Blocks", *SUB_PANELS[3:]]
    parents = {panel.bl_label: getattr(panel, "bl_parent_id", "") for panel in classes}
    assert parents["CNN Network"] == "" and parents["Blocks"] == "BCNN_PT_layers"
    assert {parents[label] for label in SUB_PANELS} == {"BCNN_PT_network"}


def test_an_empty_scene_shows_only_the_importers(blender):
    from blender_cnn.ui.panels import BCNN_PT_network

    assert shown_sidebar_panels(blender) == [BCNN_PT_network]
    record = draw_panel(blender)
    assert record["operators"] == ["bcnn.import_bundle", "bcnn.import_checkpoint", "bcnn.watch_run"]
    assert "Select a network to change its layout" in record["labels"]


def test_a_sequential_network_shows_every_panel_but_blocks(blender, digits_design_bundle):
    active(blender, digits_design_bundle)
    assert list(draw_sidebar_panels(blender)) == ["CNN Network", *SUB_PANELS]


def test_a_network_of_blocks_shows_the_blocks_panel_under_layers(blender, residual_design_bundle):
    active(blender, residual_design_bundle)
    records = draw_sidebar_panels(blender)
    assert list(records) == ["CNN Network", "Timeline", "Layout", "Layers", "Blocks", *SUB_PANELS[3:]]
    assert "Blocks (2): expand to show their layers" in records["Blocks"]["labels"]
    assert records["Blocks"]["props"] == ["block1", "block2"]


def test_a_network_that_is_not_active_leaves_the_render_panel_only(blender, digits_design_bundle):
    network = active(blender, digits_design_bundle)
    blender.context.view_layer.objects.active = None
    assert [panel.bl_label for panel in shown_sidebar_panels(blender)] == ["CNN Network", "Render"]
    blender.context.view_layer.objects.active = network
    assert len(shown_sidebar_panels(blender)) == 1 + len(SUB_PANELS)


def test_a_network_without_dense_connections_has_no_connections_panel(blender, tmp_path):
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle

    design = {
        "name": "maps_only",
        "input_shape": [8, 8, 1],
        "class_names": ["a", "b"],
        "layers": [
            {"type": "Conv2D", "name": "conv", "filters": 2, "kernel_size": 3, "padding": "same"},
            {"type": "GlobalAveragePooling2D", "name": "pool"},
        ],
    }
    active(blender, load_bundle(design_bundle(design, tmp_path / "maps.bcnn.npz")))
    assert "Connections" not in draw_sidebar_panels(blender)


# ---------------------------------------------------------------- what each panel holds


def test_each_panel_holds_its_own_settings_and_actions(blender, digits_design_bundle):
    active(blender, digits_design_bundle)
    records = draw_sidebar_panels(blender)
    expected = {
        "CNN Network": {"Import Bundle", "Import Checkpoint", "Watch Run", "Show Image"},
        "Timeline": {"Epoch", "Sample", "Show Training Overlay", "Animate Training", "Animate Samples"},
        "Layout": {
            *("Layer Spacing", "Map Gap", "Cell Size", "Cell Gap", "Neuron Scale", "Edge Radius", "Label Size"),
            *("Expansion Level", "Row Length", "Fit Rows"),
        },
        "Layers": {"Map Layout", "Fold", "Channels Shown", "Map Fold", "Frame Layer", "Layer at Cursor"},
        "Connections": {"Bundling Strength", "Highlight Neuron", "Draw Connections", "Highlight"},
        "Importance": {"Show Importance", "Importance Class"},
        "Operations": {"Focus Layer", "Sweep", "Focus Cell at Cursor", "Inspect", "Animate Sweep"},
        "Style": {"Activation Colormap", "Weight Colormap", "Show Legend", "Apply Style", "Save Style"},
        "Render": {"Camera Move", "Render Still", "Render Animation", "Export for Web"},
    }
    for panel, names in expected.items():
        assert names <= shown_texts(records[panel]), (panel, names - shown_texts(records[panel]))
    network_panel = records["CNN Network"]["labels"]
    assert network_panel[:2] == ["digits_cnn: epoch 0, sample 0", "digits_cnn.bcnn.npz"]
    assert any(label.startswith("Scene about") and label.endswith("GB") for label in network_panel)
    assert any(label.startswith("dense1: 8,192 of 8,192 drawn") for label in records["Connections"]["labels"])


def test_every_setting_of_the_network_is_in_some_panel_as_the_modifier_s_own_input(
    blender, digits_design_bundle, residual_design_bundle
):
    """The README's promise: every modifier input a user may change or key is in the CNN tab too (a layer's own
    inputs while it is selected in the Layers list), and every network setting there is the modifier's input, which
    I keys as anywhere in Blender (the Layers list's filter box is the window's, not the network's)."""
    from blender_cnn.scene.network import network_modifier

    for bundle in (digits_design_bundle, residual_design_bundle):
        network = active(blender, bundle)
        modifier = network_modifier(network)
        draw_sidebar_panels(blender)
        drawn = set()
        for row in [row.name for row in blender.context.window_manager.bcnn_layer_list.rows]:
            select_layer(blender, row)
            for record in draw_sidebar_panels(blender).values():
                for data, attribute, text in record["prop_data"]:
                    if data.id_data == network:
                        drawn.add(data.path_from_id(attribute))
                    else:
                        assert (data.id_data, text) == (blender.context.window_manager, "filter_text")
        settings = {
            f'modifiers["{modifier.name}"].properties.inputs.{item.identifier}.value'
            for item in modifier.node_group.interface.items_tree
            if item.item_type == "SOCKET"
            and item.in_out == "INPUT"
            and item.socket_type not in {"NodeSocketGeometry", "NodeSocketObject", "NodeSocketMaterial"}
        }
        assert drawn == settings


def test_the_budget_line_says_which_layers_show_their_first_maps(blender, digits_design_bundle):
    active(blender, digits_design_bundle, memory_budget_gb=1e-5)
    labels = draw_sidebar_panels(blender)["CNN Network"]["labels"]
    assert any(re.fullmatch(r"\d+ wide layers show their first \d+ maps \(memory budget in the preferences\)", label)
               for label in labels), labels  # fmt: skip


def test_the_operations_panel_shows_an_inspection_s_text_to_copy(blender, digits_design_bundle):
    from scene_readers import cell_centre
    from ui_recorder import inspect_at

    network = active(blender, digits_design_bundle, sample=2)
    record = draw_sidebar_panels(blender)["Operations"]
    assert "bcnn.copy_inspection" not in record["operators"]
    assert inspect_at(blender, cell_centre(network, digits_design_bundle.layer("conv1").index, 0, 3, 3)) == {"FINISHED"}
    record = draw_sidebar_panels(blender)["Operations"]
    assert any(label.startswith("sum of 9 products") for label in record["labels"])
    assert {"Copy", "Clear"} <= set(record["operator_texts"])


def test_the_render_dialogs_share_one_settings_block(blender):
    from blender_cnn.ui.render import RENDER_SETTINGS, BCNN_OT_render_animation, BCNN_OT_render_still

    settings = {"engine": "CYCLES", "width": 64, "height": 36, "samples": 4, "filepath": "//render.png"}
    drawn = {}
    for operator in (BCNN_OT_render_still, BCNN_OT_render_animation):
        layout = RecordingLayout()
        stand_in = SimpleNamespace(layout=layout, video=False, use_scene_range=True, frame_start=1, frame_end=10)
        vars(stand_in).update(settings, draw_more=functools.partial(operator.draw_more, stand_in))
        operator.draw(stand_in, blender.context)
        drawn[operator.bl_idname] = layout.record["props"]
    assert drawn["bcnn.render_still"] == ["filepath", *RENDER_SETTINGS]
    assert drawn["bcnn.render_animation"] == [
        "filepath", *RENDER_SETTINGS, "video", "use_scene_range", "frame_start", "frame_end"
    ]  # fmt: skip


@pytest.mark.parametrize("broken", ["not a list", [{"layer": "dense1"}]])
def test_an_unreadable_connection_record_is_reported_in_the_panel_not_raised(blender, digits_design_bundle, broken):
    network = active(blender, digits_design_bundle)
    network["blender_cnn_connections"] = broken
    record = draw_panel(blender)
    assert any("unreadable record of its connections" in label for label in record["labels"])


# ---------------------------------------------------------------- the README


def readme_sidebar_list():
    """{panel: the names in *italics* and **bold** its bullet gives} of README's "Where things are in the sidebar"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Where things are in the sidebar", 1)[1].split("\n## ", 1)[0]
    bullets = section.split("\n- ")[1:]
    listed = {}
    for bullet in bullets:
        head, _colon, rest = bullet.partition(":")
        names = re.findall(r"\*\*([^*]+)\*\*|\*([^*]+)\*", rest)
        listed[re.match(r"\*\*([^*]+)\*\*", head).group(1)] = {bold or italic for bold, italic in names}
    return listed


def test_the_readme_says_where_things_are_in_the_sidebar(blender, digits_design_bundle, residual_design_bundle):
    listed = readme_sidebar_list()
    assert list(listed) == ["CNN Network", *SUB_PANELS[:3], "Blocks", *SUB_PANELS[3:]]
    shown = {}
    for bundle, layer in ((digits_design_bundle, "conv1"), (residual_design_bundle, "block1")):
        active(blender, bundle)
        select_layer(blender, layer)
        for panel, record in draw_sidebar_panels(blender).items():
            shown.setdefault(panel, set()).update(shown_texts(record))
    for panel, names in listed.items():
        assert names <= shown[panel], (panel, names - shown[panel])
