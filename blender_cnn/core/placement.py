"""Where each layer of a graph stands, as arrays the scene writes: the layer table and the links.

Pure numpy. One row per bundle layer (row ``i`` is layer ``i``), read by the
node groups at each cell's ``layer``:

- ``item``: the item (block, or unit outside blocks) the layer's unit belongs to;
- ``column`` / ``lane``: where its unit stands inside its block when expanded;
- ``is_output``: 1 for a block's output unit and units outside blocks (shown
  collapsed or not), 0 for the units a collapsed block hides;
- ``in_block``: 1 for the layers of a block's units (its label follows Expand);
- ``half_height``: half the height of the layer's wall of maps in a grid at
  Cell Size 1, where links attach; ``block_half_height`` that of its block's
  output, where they attach while the block is collapsed.

The node groups turn columns and lanes into positions from the modifier's
Layer Spacing, Lane Spacing, Row Length and each block's Expand, so all of it
can be changed and keyframed. Links are one curve per edge between units, from
the source unit's output to the unit it feeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .cells import display_shape

if TYPE_CHECKING:
    from .bundle import LayerInfo
    from .graph import GraphPlan

LINK_POINTS = 12
# Links are colored by what the merge they feed does (linear RGB).
MERGE_COLORS = {"Add": (0.25, 0.55, 1.0), "Concatenate": (0.3, 0.95, 0.45), "Multiply": (1.0, 0.6, 0.15)}
PLAIN_LINK_COLOR = (0.55, 0.55, 0.62)
# Long rows read best when the whole network, wrapped, is about as wide as a 16:9 frame.
FRAME_ASPECT = 16 / 9
# The camera looks along (1, 1, -0.3): a column's step shows foreshortened by about this much.
VIEW_FORESHORTENING = math.sqrt(0.5)


def layer_table(
    bundle_layers: Sequence[LayerInfo], plan: GraphPlan, channels_shown: Mapping[str, int] | None = None
) -> dict[str, np.ndarray]:
    """``{column: array}`` with one row per layer (see the module's docstring)."""
    count = len(bundle_layers)
    table: dict[str, np.ndarray] = {
        "item": np.zeros(count, np.int32),
        "column": np.zeros(count, np.float32),
        "lane": np.zeros(count, np.float32),
        "is_output": np.ones(count, np.float32),
        "in_block": np.zeros(count, np.float32),
        "block_half_height": np.zeros(count, np.float32),
        "half_height": np.zeros(count, np.float32),
    }
    index_of = {layer.name: layer.index for layer in bundle_layers}
    for unit in plan.units:
        item = plan.item_of_unit(unit.index)
        block = plan.blocks[unit.block] if unit.block >= 0 else None
        for name in unit.layers:
            row = index_of[name]
            table["item"][row] = item
            table["column"][row] = unit.column
            table["lane"][row] = unit.lane
            table["is_output"][row] = 1.0 if block is None or block.output == unit.index else 0.0
            table["in_block"][row] = 0.0 if block is None else 1.0
    for layer in bundle_layers:
        table["half_height"][layer.index] = 0.5 * wall_height(
            layer.output_shape, (channels_shown or {}).get(layer.name, 0)
        )
    # Where links attach while a block is collapsed: on its output's wall, which stands for all its units.
    output_of_item = {
        plan.item_of_unit(unit.index): index_of[unit.output]
        for unit in plan.units
        if unit.block < 0 or plan.blocks[unit.block].output == unit.index
    }
    table["block_half_height"] = table["half_height"][[output_of_item[item] for item in table["item"]]]
    return table


def wall_height(
    output_shape: Sequence[int], channels_shown: int = 0, map_gap: float = 2.0, neuron_scale: float = 2.5
) -> float:
    """Height of a layer's wall in the grid layout at Cell Size 1 (a column of neurons for small 1-D layers)."""
    rows, cols, channels = display_shape(output_shape)
    if channels_shown:
        channels = min(channels, channels_shown)
    if len(output_shape) != 3:
        return rows * (neuron_scale if cols == 1 else 1.0)
    grid_cols = math.ceil(math.sqrt(channels))
    return math.ceil(channels / grid_cols) * (rows + map_gap)


def link_curves(bundle_layers: Sequence[LayerInfo], plan: GraphPlan) -> tuple[dict[str, np.ndarray], int]:
    """``(curve arrays, points per curve)``: ``source_layer``, ``target_layer`` and ``link_color`` per link."""
    index_of = {layer.name: layer.index for layer in bundle_layers}
    type_of = {layer.name: layer.type for layer in bundle_layers}
    sources: list[int] = []
    targets: list[int] = []
    colors: list[tuple[float, float, float]] = []
    for source, target in plan.links:
        sources.append(index_of[plan.units[source].output])
        targets.append(index_of[plan.units[target].output])
        colors.append(MERGE_COLORS.get(type_of[plan.units[target].head], PLAIN_LINK_COLOR))
    return {
        "source_layer": np.asarray(sources, np.int32),
        "target_layer": np.asarray(targets, np.int32),
        "link_color": np.asarray(colors, np.float32).reshape(-1, 3),
    }, LINK_POINTS


def lane_spacing(
    bundle_layers: Sequence[LayerInfo], channels_shown: Mapping[str, int] | None = None, label_room: float = 1.35
) -> float:
    """Distance between lanes: the tallest wall plus room for its label."""
    heights = [wall_height(layer.output_shape, (channels_shown or {}).get(layer.name, 0)) for layer in bundle_layers]
    return float(max(20.0, round(label_room * max(heights, default=0.0))))


def row_length(
    plan: GraphPlan,
    layer_spacing: float,
    row_spacing: float,
    aspect: float = FRAME_ASPECT,
    expanded: Mapping[int, float] | None = None,
) -> int:
    """Columns per row so that the network is closest to ``aspect`` with its blocks as ``expanded`` says.

    ``expanded`` maps item positions to their Expand (0..1); by default blocks
    start collapsed, or open when the graph is small. Columns step
    ``layer_spacing`` along the network, seen foreshortened from the stage's
    camera; rows stand ``row_spacing`` apart times the lanes of the most open
    block. Rows are balanced (21 columns in three rows of 7, not 10, 10 and 1).
    A sequential network stays one row.
    """
    if expanded is None:
        start = 1.0 if plan.expanded_by_default else 0.0
        expanded = {position: start for position, (kind, _index) in enumerate(plan.items) if kind == "block"}
    widths: list[float] = []
    lanes = 1.0
    for position, (kind, index) in enumerate(plan.items):
        opened = expanded.get(position, 0.0) if kind == "block" else 0.0
        block = plan.blocks[index] if kind == "block" else None
        widths.append(1.0 + opened * ((block.columns if block else 1) - 1))
        lanes = max(lanes, 1.0 + opened * ((block.lanes if block else 1) - 1))
    columns = math.ceil(sum(widths) - 1e-6)
    if not plan.links:
        return columns
    best, best_error = columns, math.inf
    for rows in range(1, columns + 1):
        length = math.ceil(columns / rows)
        width = length * layer_spacing * VIEW_FORESHORTENING
        error = abs(math.log(width / (rows * lanes * row_spacing) / aspect))
        if error < best_error:
            best, best_error = length, error
    return best


def opening_order(plan: GraphPlan, has_maps: Callable[[str], bool]) -> dict[int, int]:
    """``{item position: rank}`` of the items the Expansion Level opens, in their order along the network.

    Blocks open and units whose output has feature maps (``has_maps`` of its
    name) unfold; flat units have nothing to open and get no rank, so the
    opening never idles over the dense head.
    """
    order: dict[int, int] = {}
    for position, (kind, index) in enumerate(plan.items):
        if kind == "block" or has_maps(plan.units[index].output):
            order[position] = len(order)
    return order


def opened(level: float, rank: int, count: int) -> float:
    """How far the item of ``rank`` among ``count`` is open at Expansion Level ``level``, as the node tree has it.

    It opens while the level crosses ``[rank / count, (rank + 1) / count]``,
    eased at both ends (smoothstep): 0 before, 1 after.
    """
    t = min(max(level * count - rank, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)
