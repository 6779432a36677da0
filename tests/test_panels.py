"""The sidebar panel draws in every state a user meets, with a stand-in layout that records what it shows."""

import pytest
from ui_recorder import draw_network_panel as draw_panel

pytestmark = pytest.mark.bpy


def test_without_a_network_the_panel_offers_the_importers(blender):
    record = draw_panel(blender)
    assert "bcnn.import_bundle" in record["operators"] and "bcnn.import_checkpoint" in record["operators"]
    assert "Select a network to change its layout" in record["labels"]


def test_with_a_network_the_panel_shows_its_settings_and_actions(blender, digits_design_bundle):
    from blender_cnn.scene.network import build_network

    network = build_network(digits_design_bundle)
    blender.context.view_layer.objects.active = network
    record = draw_panel(blender)
    for name in ("Epoch", "Sample", "Bundling Strength", "Layer Spacing", "Activation Colormap", "Focus Layer"):
        assert name in record["props"], name
    for operator in (
        "bcnn.animate_training",
        "bcnn.draw_connections",
        "bcnn.focus_selected_cell",
        "bcnn.show_image",
        "bcnn.camera_move",
        "bcnn.render_still",
        "bcnn.render_animation",
        "bcnn.apply_style",
        "bcnn.save_style",
    ):
        assert operator in record["operators"], operator
    assert any(label.startswith("dense1: 8,192 of 8,192 drawn") for label in record["labels"])


@pytest.mark.parametrize("broken", ["not a list", [{"layer": "dense1"}]])
def test_an_unreadable_connection_record_is_reported_in_the_panel_not_raised(blender, digits_design_bundle, broken):
    from blender_cnn.scene.network import build_network

    network = build_network(digits_design_bundle)
    network["blender_cnn_connections"] = broken
    blender.context.view_layer.objects.active = network
    record = draw_panel(blender)
    assert any("unreadable record of its connections" in label for label in record["labels"])
