"""Node groups read left to right in the node editor: links run rightward, nodes do not overlap, frames hold their parts.

Checked on the locations ``nodes/layout.py`` gives every shared group and a
network's own tree, with the node sizes it estimates (Blender computes the
real ones only when it draws the editor, which a background process never does).
"""

from pathlib import Path

import numpy as np
import pytest

from blender_cnn.nodes.layout import FRAME_MARGIN

REPO = Path(__file__).resolve().parent.parent

SHARED_GROUPS = (
    "BCNN Cell Layout",
    "BCNN Feature Maps",
    "BCNN Legend",
    "BCNN Connections",
    "BCNN Layer Label",
    "BCNN Neuron Label",
    "BCNN Activation Colormap",
    "BCNN Weight Colormap",
    "BCNN Focus Cell",
    "BCNN Receptive Field",
    "BCNN Kernel Taps",
    "BCNN Pooling Links",
    "BCNN Flatten Links",
    "BCNN Probability",
    "BCNN Annotation Lines",
    "BCNN Window Numbers",
    "BCNN No Inspection",
    "BCNN Epoch Position",
    "BCNN Trained Cells",
    "BCNN Training Overlay",
    "BCNN Trained Weights (Curve)",
    "BCNN Trained Weights (Point)",
    "BCNN Importance (Table)",
    "BCNN Importance (Own)",
    "BCNN Graph Position",
    "BCNN Graph Links",
)


@pytest.fixture(scope="module")
def trees(registered_addon, tmp_path_factory):
    """Every shared group and a designed network's own tree, built in one fresh file: {name: tree}."""
    import bpy

    from blender_cnn.core.design import design_bundle, synthetic_inputs
    from blender_cnn.core.presets import load_design
    from blender_cnn.nodes.network import ensure_shared_groups
    from blender_cnn.scene.network import build_network

    bpy.ops.wm.read_homefile(app_template="")
    design = load_design(REPO / "presets" / "lenet5.json")
    bundle = design_bundle(
        design,
        tmp_path_factory.mktemp("layout") / "lenet5.bcnn.npz",
        seed=0,
        inputs=synthetic_inputs(design["input_shape"])[:1],
    )
    network = build_network(bundle)
    made = ensure_shared_groups()
    made["network"] = network.modifiers[0].node_group
    return made


def _boxes(tree):
    """(nodes, left, top, right, bottom) of every node but frames, in the editor's coordinates (y up)."""
    from blender_cnn.nodes.layout import node_size

    nodes = [node for node in tree.nodes if node.bl_idname != "NodeFrame"]
    boxes = np.array([(*node.location_absolute, *node_size(node)) for node in nodes], dtype=np.float64)
    left, top = boxes[:, 0], boxes[:, 1]
    return nodes, left, top, left + boxes[:, 2], top - boxes[:, 3]


def _frames(tree):
    return [
        (
            frame,
            frame.location_absolute.x,
            frame.location_absolute.y,
            frame.location_absolute.x + frame.width,
            frame.location_absolute.y - frame.height,
        )
        for frame in tree.nodes
        if frame.bl_idname == "NodeFrame"
    ]


def test_every_shared_group_is_built_and_framed(trees):
    assert set(SHARED_GROUPS) <= set(trees)
    big = [name for name in SHARED_GROUPS if len(trees[name].nodes) > 25]
    assert all(_frames(trees[name]) for name in big), "a group of more than 25 nodes shows its parts in frames"


@pytest.mark.parametrize("name", [*SHARED_GROUPS, "network"])
def test_every_link_runs_left_to_right(trees, name):
    tree = trees[name]
    backwards = [
        (link.from_node.name, link.to_node.name)
        for link in tree.links
        if not link.from_node.location_absolute.x < link.to_node.location_absolute.x
    ]
    assert not backwards
    inputs = [node for node in tree.nodes if node.bl_idname == "NodeGroupInput"]
    outputs = [node for node in tree.nodes if node.bl_idname == "NodeGroupOutput"]
    xs = [node.location_absolute.x for node in tree.nodes if node.bl_idname != "NodeFrame"]
    assert all(node.location_absolute.x == min(xs) for node in inputs)
    assert all(node.location_absolute.x == max(xs) for node in outputs)


@pytest.mark.parametrize("name", [*SHARED_GROUPS, "network"])
def test_no_two_nodes_overlap(trees, name):
    nodes, left, top, right, bottom = _boxes(trees[name])
    apart_x = (right[:, None] <= left[None, :]) | (right[None, :] <= left[:, None])
    apart_y = (bottom[:, None] >= top[None, :]) | (bottom[None, :] >= top[:, None])
    overlapping = ~(apart_x | apart_y)
    np.fill_diagonal(overlapping, False)
    pairs = [(nodes[i].name, nodes[j].name) for i, j in zip(*np.nonzero(overlapping)) if i < j]
    assert not pairs


@pytest.mark.parametrize("name", [*SHARED_GROUPS, "network"])
def test_each_frame_holds_its_nodes_and_only_them(trees, name):
    tree = trees[name]
    nodes, left, top, right, bottom = _boxes(tree)
    frames = _frames(tree)
    for frame, frame_left, frame_top, frame_right, frame_bottom in frames:
        members = np.array([node.parent == frame for node in nodes])
        assert members.any(), f"frame {frame.label!r} holds no node"
        inside = (
            (left >= frame_left + FRAME_MARGIN - 1e-3)
            & (right <= frame_right - FRAME_MARGIN + 1e-3)
            & (top <= frame_top)
            & (bottom >= frame_bottom + FRAME_MARGIN - 1e-3)
        )
        assert inside[members].all(), f"frame {frame.label!r} does not contain all of its nodes"
        touching = (left < frame_right) & (right > frame_left) & (bottom < frame_top) & (top > frame_bottom)
        strangers = [nodes[i].name for i in np.flatnonzero(touching & ~members)]
        assert not strangers, f"frame {frame.label!r} covers nodes that are not in it"
    for first in range(len(frames)):
        for second in range(first + 1, len(frames)):
            (_a, a_left, a_top, a_right, a_bottom), (_b, b_left, b_top, b_right, b_bottom) = (
                frames[first],
                frames[second],
            )
            assert a_right <= b_left or b_right <= a_left or a_bottom >= b_top or b_bottom >= a_top, (
                f"frames {frames[first][0].label!r} and {frames[second][0].label!r} overlap"
            )


def test_the_layout_puts_a_chain_in_one_row_and_a_fork_in_two():
    """The arithmetic alone: nodes 0 -> 1 -> 2 -> 3 and 1 -> 4 -> 3, no frames."""
    from blender_cnn.nodes.layout import positions

    location, frames, _frame_of = positions(
        5, [(0, 1), (1, 2), (2, 3), (1, 4), (4, 3)], [100.0] * 5, [50.0] * 5, [None] * 5, first=[0], last=[3]
    )
    x, y = location[:, 0], location[:, 1]
    assert x[0] < x[1] < x[2] < x[3] and x[2] == x[4]
    assert y[2] != y[4] and abs(y[2] - y[4]) >= 50.0
    assert not frames
