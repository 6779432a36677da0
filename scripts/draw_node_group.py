"""Draw one node group as the node editor would lay it out: node boxes, frames and links, to a PNG.

    .venv/bin/python scripts/draw_node_group.py ["BCNN Graph Position"] [--output docs/node_group_layout.png]
    .venv/bin/python scripts/draw_node_group.py --list
    .venv/bin/python scripts/draw_node_group.py "BCNN Network digits_cnn" \
        --bundle runs/digits_cnn/digits_cnn.bcnn.npz --output /tmp/network.png

Builds the add-on's shared groups in a fresh file (no network needed; with
--bundle, the network's scene and its own tree too) and draws the named one
from the locations ``nodes/layout.py`` gave its nodes, with the sizes it
estimated for them (Blender computes the real ones only when it draws the
editor). A check on the layout by eye; the tests check it
by numbers (``tests/test_node_layout.py``).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRAME_COLORS = ("#3b5b8c", "#5b8c3b", "#8c5b3b", "#6b3b8c", "#3b8c86", "#8c3b5e", "#7c7c3b")


def boxes(tree):
    """``{node name: (left, top, width, height)}`` of every node but frames, and the same for the frames."""
    from blender_cnn.nodes.layout import node_size

    nodes, frames = {}, {}
    for node in tree.nodes:
        x, y = node.location_absolute
        if node.bl_idname == "NodeFrame":
            frames[node.name] = (x, y, node.width, node.height)
        else:
            nodes[node.name] = (x, y, *node_size(node))
    return nodes, frames


def _socket_y(node, sockets, socket, top, height):
    """Where a socket sits on its box: outputs from the top, inputs below them, evenly."""
    shown = [s for s in sockets if s.enabled and not s.hide]
    position = shown.index(socket) if socket in shown else 0
    outputs = [s for s in node.outputs if s.enabled and not s.hide]
    first = top - 36.0 - (0 if sockets is node.outputs else 22.0 * len(outputs))
    return max(first - 22.0 * position - 11.0, top - height + 8.0)


def draw(tree, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, PathPatch
    from matplotlib.path import Path as CurvePath

    nodes, frames = boxes(tree)
    everything = list(nodes.values()) + list(frames.values())
    left = min(x for x, _y, _w, _h in everything) - 40
    right = max(x + w for x, _y, w, _h in everything) + 40
    top = max(y for _x, y, _w, _h in everything) + 40
    bottom = min(y - h for _x, y, _w, h in everything) - 40
    scale = 1 / 110
    figure, axes = plt.subplots(figsize=((right - left) * scale, (top - bottom) * scale))
    axes.set_xlim(left, right)
    axes.set_ylim(bottom, top)
    axes.set_aspect("equal")
    axes.axis("off")
    figure.patch.set_facecolor("#1d1d1d")
    for number, (name, (x, y, w, h)) in enumerate(frames.items()):
        color = FRAME_COLORS[number % len(FRAME_COLORS)]
        axes.add_patch(
            FancyBboxPatch(
                (x, y - h),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=8",
                facecolor=color,
                edgecolor="none",
                alpha=0.35,
                zorder=0,
            )
        )
        axes.text(x + 12, y - 12, tree.nodes[name].label, color="white", fontsize=11, va="top", zorder=1)
    for link in tree.links:
        (fx, fy, fw, fh), (tx, ty, _tw, th) = nodes[link.from_node.name], nodes[link.to_node.name]
        start = (fx + fw, _socket_y(link.from_node, link.from_node.outputs, link.from_socket, fy, fh))
        end = (tx, _socket_y(link.to_node, link.to_node.inputs, link.to_socket, ty, th))
        bend = max(40.0, (end[0] - start[0]) * 0.4)
        curve = CurvePath(
            [start, (start[0] + bend, start[1]), (end[0] - bend, end[1]), end],
            [CurvePath.MOVETO, CurvePath.CURVE4, CurvePath.CURVE4, CurvePath.CURVE4],
        )
        axes.add_patch(PathPatch(curve, facecolor="none", edgecolor="#b0b0b0", linewidth=0.8, alpha=0.8, zorder=2))
    for name, (x, y, w, h) in nodes.items():
        node = tree.nodes[name]
        header = (
            "#7a3b3b"
            if node.bl_idname.startswith("NodeGroup")
            else "#3b6a7a"
            if node.bl_idname == "GeometryNodeGroup"
            else "#4a4a4a"
        )
        axes.add_patch(
            FancyBboxPatch(
                (x, y - h),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor="#303030",
                edgecolor="#111111",
                linewidth=0.8,
                zorder=3,
            )
        )
        axes.add_patch(
            FancyBboxPatch(
                (x, y - 26), w, 26, boxstyle="round,pad=0,rounding_size=6", facecolor=header, edgecolor="none", zorder=4
            )
        )
        axes.text(x + 8, y - 13, _title(node), color="white", fontsize=7.5, va="center", zorder=5, clip_on=True)
    figure.savefig(path, dpi=110, facecolor=figure.get_facecolor(), bbox_inches="tight")
    plt.close(figure)
    return path


def _title(node):
    if node.label:
        return node.label
    if node.bl_idname == "GeometryNodeGroup" and node.node_tree is not None:
        return node.node_tree.name
    for attribute in ("operation", "data_type"):
        value = getattr(node, attribute, None)
        if isinstance(value, str) and node.bl_idname in {
            "ShaderNodeMath",
            "FunctionNodeIntegerMath",
            "ShaderNodeVectorMath",
            "FunctionNodeCompare",
            "FunctionNodeBooleanMath",
        }:
            return f"{node.bl_label}: {value.replace('_', ' ').title()}"
    if node.bl_idname == "GeometryNodeInputNamedAttribute":
        name = node.inputs["Name"]
        return f"Attribute {name.default_value}" if not name.is_linked else "Named Attribute"
    if node.bl_idname == "GeometryNodeStoreNamedAttribute":
        name = node.inputs["Name"]
        return f"Store {name.default_value}" if not name.is_linked else "Store Named Attribute"
    return node.bl_label


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("group", nargs="?", default="BCNN Graph Position")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "node_group_layout.png")
    parser.add_argument("--bundle", type=Path, help="build this bundle's scene first: its network tree can be drawn")
    parser.add_argument("--list", action="store_true", help="list the groups' names and stop")
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    import bpy

    bpy.ops.wm.read_homefile(app_template="")
    if args.bundle:
        from blender_cnn.scene.network import build_network

        build_network(args.bundle)
    from blender_cnn.nodes.network import ensure_shared_groups

    ensure_shared_groups()
    trees = {tree.name: tree for tree in bpy.data.node_groups}
    if args.list:
        for name, tree in sorted(trees.items()):
            print(f"{name}: {len(tree.nodes)} nodes")
        return 0
    if args.group not in trees:
        print(f"draw_node_group.py: no group {args.group!r}; --list shows them", file=sys.stderr)
        return 2
    print(draw(trees[args.group], args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
