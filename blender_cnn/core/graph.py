"""A network's graph as the scene shows it: units, blocks, where each one stands, and the links drawn.

Plain Python, no numpy, no bpy. Real networks are graphs of 150 to 450
layers, most of them plumbing. The scene reads them at three levels:

- a **unit** is a layer with the plumbing that finishes it (Conv + BN + ReLU):
  it shows the output of its last layer and its label names every layer in it;
- a **block** is a run of units that belong together: a residual or Inception
  module (the region between two layers every path passes through), the layers
  of a nested model, or units sharing one of the name prefixes Keras' architectures use
  (``conv2_block1_``, ``block_3_``, ``block2a_``, ``mixed5``). A block can be
  collapsed to one node (its output) or expanded;
- an **item** is what stands in one place along the network's path when
  everything is collapsed: a block, or a unit outside any block.

Placement is in abstract columns and lanes: an item occupies one column when
collapsed and ``columns`` when expanded; inside a block each unit has a column
(its depth from the block's entry) and a lane (0 on the block's main path,
1, 2, ... for the branches beside it). The node groups turn these into
positions from the modifier's spacing, row length and Expand inputs.

A sequential network of a few dozen layers keeps one unit per layer and no
blocks, so it looks as it always did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .layer_specs import FOLDS_INTO_READER, NESTED_MODEL_SEPARATOR, WINDOWED_OPERATIONS, folds_into_source, types_where

if TYPE_CHECKING:
    from .bundle import LayerInfo

# Padding belongs to the windowed layer that reads it: it folds into the layer after it.
PADDING_TYPES = types_where(folds=FOLDS_INTO_READER)
WINDOWED_TYPES = frozenset().union(*(types_where(operation=kind) for kind in WINDOWED_OPERATIONS))
# Graphs up to this many layers that are one chain keep a unit per layer, as they always looked.
SEQUENTIAL_DETAIL_LIMIT = 40
# The block a layer belongs to by name, in Keras' architectures (ResNet, DenseNet, MobileNet V2/V3,
# EfficientNet, Xception, ConvNeXt, NASNet, Inception's mixed modules and DenseNet's transitions).
BLOCK_NAME_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"^(conv\d+_block\d+)_",
        r"^(.*?(?:block|stage|cell)_?\d+[a-z]?(?:_block_?\d+)?)_",
        r"^(expanded_conv(?:_\d+)?)_",
        r"^(mixed_?\d+)(?:_|$)",
        r"^(pool\d+)_",
    )
)


@dataclass
class Unit:
    """Layers shown as one: ``layers`` in order, the last one's output is what the scene shows."""

    index: int
    layers: list[str]
    inputs: list[int] = field(default_factory=list)  # unit indices feeding it
    block: int = -1  # its block, -1 outside blocks
    column: int = 0  # within its block (0 outside blocks)
    lane: int = 0
    head_position: int = 0  # where ``head`` is in ``layers``

    @property
    def output(self) -> str:
        return self.layers[-1]

    @property
    def head(self) -> str:
        """The layer that computes the unit (its padding and plumbing aside)."""
        return self.layers[self.head_position]


@dataclass
class Block:
    index: int
    name: str
    units: list[int]  # unit indices, in topological order
    columns: int = 1
    lanes: int = 1

    @property
    def output(self) -> int:
        return self.units[-1]


@dataclass
class GraphPlan:
    """Units, blocks, items and the links of one network (see the module's docstring)."""

    units: list[Unit]
    blocks: list[Block]
    items: list[tuple[str, int]]  # ("unit", index) or ("block", index), in order
    links: list[tuple[int, int]]  # (source unit, target unit) drawn as curves
    detailed: bool  # True: a unit per layer, as sequential networks show

    def item_of_unit(self, unit: int) -> int:
        """The position among ``items`` of the item unit ``unit`` stands in."""
        block = self.units[unit].block
        return self.items.index(("block", block) if block >= 0 else ("unit", unit))

    @property
    def block_items(self) -> dict[int, str]:
        """{item position: block name} of the items that are blocks."""
        return {
            position: self.blocks[index].name for position, (kind, index) in enumerate(self.items) if kind == "block"
        }

    @property
    def shown_layers(self) -> list[str]:
        """The layers that get cells: each unit's output."""
        return [unit.output for unit in self.units]

    @property
    def expanded_by_default(self) -> bool:
        """Small graphs start with their blocks open; deep ones collapsed, so they read at a glance."""
        return len(self.units) <= SEQUENTIAL_DETAIL_LIMIT

    @property
    def lanes(self) -> int:
        """The most lanes any item needs when expanded."""
        return max([1, *(block.lanes for block in self.blocks)])


def plan_graph(layers: Iterable[LayerInfo], detailed: bool | None = None) -> GraphPlan:
    """The ``GraphPlan`` of ``layers`` (``core.bundle.LayerInfo``-like: name, type, inputs, in topological order).

    ``detailed`` None chooses: a unit per layer for chains of up to
    ``SEQUENTIAL_DETAIL_LIMIT`` layers, units and blocks otherwise.
    """
    layers = list(layers)
    consumers = _consumers(layers)
    if detailed is None:
        detailed = len(layers) <= SEQUENTIAL_DETAIL_LIMIT and is_chain(layers, consumers)
    groups = [[layer.name] for layer in layers] if detailed else _fold_plumbing(layers, consumers)
    units = _units(layers, groups)
    blocks = [] if detailed else _blocks(units, layers)
    for block in blocks:
        _place_in_block(block, units)
    items: list[tuple[str, int]] = []
    for unit in units:
        key = ("block", unit.block) if unit.block >= 0 else ("unit", unit.index)
        if key not in items:
            items.append(key)
    links = [] if is_chain(layers, consumers) else [(source, unit.index) for unit in units for source in unit.inputs]
    return GraphPlan(units, blocks, items, links, detailed)


def is_chain(layers: Sequence[LayerInfo], consumers: Mapping[str, Sequence[str]] | None = None) -> bool:
    """Whether every layer has at most one input and one consumer: a sequential network."""
    consumers = consumers or _consumers(layers)
    return all(len(layer.inputs) <= 1 and len(consumers[layer.name]) <= 1 for layer in layers)


def _consumers(layers: Iterable[LayerInfo]) -> dict[str, list[str]]:
    consumers: dict[str, list[str]] = {layer.name: [] for layer in layers}
    for layer in layers:
        for source in layer.inputs:
            consumers[source].append(layer.name)
    return consumers


def _fold_plumbing(layers: Sequence[LayerInfo], consumers: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Groups of layer names, each a unit: plumbing joins the layer before it, padding the layer after it."""
    by_name = {layer.name: layer for layer in layers}
    group_of: dict[str, int] = {}
    groups: list[list[str]] = []
    for layer in layers:
        source = layer.inputs[0] if len(layer.inputs) == 1 else None
        # Arithmetic in a model's code (MobileNetV3's hard-swish "x + 3") finishes a layer like an activation.
        finishes = folds_into_source(layer.type) or (
            layer.type in PADDING_TYPES and not _pads_a_window(layer, consumers, by_name)
        )
        folds_back = finishes and source is not None and len(consumers[source]) == 1
        pending_padding = (
            source is not None
            and by_name[source].type in PADDING_TYPES
            and source in group_of
            and _pads_a_window(by_name[source], consumers, by_name)
        )
        if source is not None and (folds_back or pending_padding):  # both need a source; said again for mypy
            group_of[layer.name] = group_of[source]
            groups[group_of[layer.name]].append(layer.name)
        else:
            group_of[layer.name] = len(groups)
            groups.append([layer.name])
    return groups


def _pads_a_window(
    padding: LayerInfo, consumers: Mapping[str, Sequence[str]], by_name: Mapping[str, LayerInfo]
) -> bool:
    """Padding read by exactly one windowed layer, which takes it into its own unit."""
    readers = consumers[padding.name]
    return len(readers) == 1 and by_name[readers[0]].type in WINDOWED_TYPES


def _units(layers: Sequence[LayerInfo], groups: Sequence[Sequence[str]]) -> list[Unit]:
    by_name = {layer.name: layer for layer in layers}
    unit_of = {name: index for index, group in enumerate(groups) for name in group}
    units = []
    for index, group in enumerate(groups):
        sources: list[int] = []
        for name in group:
            for source in by_name[name].inputs:
                if unit_of[source] != index and unit_of[source] not in sources:
                    sources.append(unit_of[source])
        head = next((position for position, name in enumerate(group) if by_name[name].type not in PADDING_TYPES), 0)
        units.append(Unit(index, list(group), sources, head_position=head))
    return units


def block_key(name: str) -> str | None:
    """The block a layer's name puts it in, or None: the nested model it came from (the extractor names its
    layers ``model/layer``), else by Keras' naming (``conv2_block1_1_conv`` -> ``conv2_block1``)."""
    if NESTED_MODEL_SEPARATOR in name:
        return name.rsplit(NESTED_MODEL_SEPARATOR, 1)[0]
    for pattern in BLOCK_NAME_PATTERNS:
        match = pattern.match(name)
        if match:
            return match.group(1)
    return None


def _blocks(units: Sequence[Unit], layers: Sequence[LayerInfo]) -> list[Block]:
    """Blocks from the graph's structure (regions between cut units) joined by their name prefixes."""
    segments = _segments(units)
    keyed = []
    for segment in segments:
        keys = [block_key(units[index].head) for index in segment]
        key = keys[-1] if keys[-1] is not None else next((k for k in keys if k is not None), None)
        if key is None and len(segment) > 1:
            key = units[segment[-1]].output  # an unnamed module (Inception's) takes its output's name
        keyed.append((key, segment))
    blocks: list[Block | None] = []
    for key, segment in keyed:
        if key is not None and blocks and blocks[-1] is not None and blocks[-1].name == key:
            blocks[-1].units.extend(segment)
        elif key is not None:
            blocks.append(Block(len(blocks), key, list(segment)))
        else:
            blocks.append(None)  # a unit outside blocks keeps runs of the same key apart
    kept = [block for block in blocks if block is not None and len(block.units) > 1]
    for index, block in enumerate(kept):
        block.index = index
        for unit in block.units:
            units[unit].block = index
    return kept


def _segments(units: Sequence[Unit]) -> list[list[int]]:
    """Units split after every cut unit: one that every path from input to output passes through.

    Units are in topological order, so unit ``i`` is a cut exactly when no
    edge jumps over it: every edge from a unit before ``i`` lands at ``i`` at the latest.
    """
    furthest_target = [max([unit.index, *targets]) for unit, targets in zip(units, _targets(units))]
    segments: list[list[int]] = []
    current: list[int] = []
    furthest = -1
    for unit in units:
        current.append(unit.index)
        if furthest <= unit.index:
            segments.append(current)
            current = []
        furthest = max(furthest, furthest_target[unit.index])
    if current:
        segments.append(current)
    return segments


def _targets(units: Sequence[Unit]) -> list[list[int]]:
    targets: list[list[int]] = [[] for _ in units]
    for unit in units:
        for source in unit.inputs:
            targets[source].append(unit.index)
    return targets


def _place_in_block(block: Block, units: Sequence[Unit]) -> None:
    """Columns by depth from the block's entry; the main path in lane 0, each branch in a lane of its own."""
    members = set(block.units)
    depth: dict[int, int] = {}
    for index in block.units:
        inside = [source for source in units[index].inputs if source in members]
        depth[index] = 1 + max((depth[source] for source in inside), default=-1)
    # The main path: back from the output along the deepest input.
    main, index = set(), block.output
    while True:
        main.add(index)
        inside = [source for source in units[index].inputs if source in members]
        if not inside:
            break
        index = max(inside, key=lambda source: depth[source])
    lane_of: dict[int, int] = {}
    next_lane = 1
    taken: dict[int, int] = {}  # unit -> the successor that continues its lane
    for index in block.units:
        unit = units[index]
        if index in main:
            lane_of[index] = 0
            continue
        inside = [source for source in unit.inputs if source in members and source not in main]
        source = inside[0] if inside else None
        if source is not None and source not in taken:
            taken[source] = index
            lane_of[index] = lane_of[source]
        else:
            lane_of[index] = next_lane
            next_lane += 1
    for index in block.units:
        units[index].column, units[index].lane = depth[index], lane_of[index]
    block.columns = 1 + max(depth.values())
    block.lanes = 1 + max(lane_of.values())
