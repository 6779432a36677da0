"""Everything decided about a network's scene before Blender is touched: units, blocks, budget, spacing, labels.

Pure numpy. ``plan_scene`` reads the bundle's graph (``core/graph.py``),
chooses the channels each shown layer keeps within the memory budget
(``core/budget.py``), and gives the layer table, the links and the texts
the node tree draws. The scene stores ``shown`` on the network object, so
every later step (inspection, Show Image, connections) finds the same cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import budget, placement
from .graph import GraphPlan, plan_graph
from .layer_specs import spec_of
from .layout import GRID, suggested_spacing

if TYPE_CHECKING:
    from .bundle import Bundle, LayerInfo

# Output layers of up to this many classes get a name and a probability bar per neuron; wider ones
# (ImageNet's 1000) only their most probable classes: a thousand text and bar groups made a tree that took
# minutes to build (ResNet50, 1000 classes: 522 s, almost all of it adding nodes and links).
LABELED_CLASSES_LIMIT = 20
TOP_CLASSES_LABELED = 10


@dataclass(frozen=True)
class ScenePlan:
    graph: GraphPlan
    channels: budget.ChannelPlan
    layer_table: dict[str, np.ndarray]
    links: dict[str, np.ndarray]
    link_points: int
    layer_spacing: float
    lane_spacing: float
    row_length: int
    unit_labels: dict[int, str]  # bundle layer index -> text under the unit
    block_labels: dict[int, str]  # bundle layer index of a block's output -> text while collapsed
    layer_indices: dict[str, int]  # layer name -> its index in the bundle

    @property
    def shown(self) -> dict[str, int]:
        return self.channels.shown

    @property
    def items(self) -> list[tuple[int, int]]:
        """(columns, lanes) per item, in order."""
        return [
            (self.graph.blocks[index].columns, self.graph.blocks[index].lanes) if kind == "block" else (1, 1)
            for kind, index in self.graph.items
        ]

    @property
    def item_layers(self) -> list[tuple[str, list[int]]]:
        """``[(name, [layer indices])]`` per item: a block's name, or a unit's output layer, and their layers."""
        index_of = self.layer_indices
        items = []
        for kind, index in self.graph.items:
            units = self.graph.blocks[index].units if kind == "block" else [index]
            name = self.graph.blocks[index].name if kind == "block" else self.graph.units[index].output
            items.append((name, [index_of[self.graph.units[unit].output] for unit in units]))
        return items

    @property
    def block_items(self) -> dict[int, str]:
        return self.graph.block_items


def plan_scene(
    bundle: Bundle, budget_gb: float = budget.DEFAULT_BUDGET_GB, detailed: bool | None = None, samples: int = 1
) -> ScenePlan:
    """The ``ScenePlan`` of ``bundle`` (its layers, epochs and weights' sizes), within ``budget_gb`` of memory."""
    layers = bundle.layers
    graph = plan_graph(layers, detailed)
    channels = budget.plan_channels(layers, set(graph.shown_layers), budget_gb * 1e9, len(bundle.epochs), samples)
    capped_shapes = [
        (*layer.output_shape[:2], channels.shown[layer.name]) if layer.is_spatial else layer.output_shape
        for layer in layers
        if layer.name in channels.shown
    ]
    layer_spacing = float(suggested_spacing(capped_shapes, GRID))
    lane_spacing = placement.lane_spacing([layer for layer in layers if layer.name in channels.shown], channels.shown)
    table = placement.layer_table(layers, graph, channels.shown)
    links, link_points = placement.link_curves(layers, graph)
    # Rows stand one lane apart while every block is collapsed, as the scene starts.
    row_length = placement.row_length(graph, layer_spacing, lane_spacing)
    unit_labels, block_labels = _labels(bundle, graph, channels)
    return ScenePlan(
        graph,
        channels,
        table,
        links,
        link_points,
        layer_spacing,
        lane_spacing,
        row_length,
        unit_labels,
        block_labels,
        {layer.name: layer.index for layer in layers},
    )


def _labels(bundle: Bundle, graph: GraphPlan, channels: budget.ChannelPlan) -> tuple[dict[int, str], dict[int, str]]:
    by_name = {layer.name: layer for layer in bundle.layers}
    unit_labels: dict[int, str] = {}
    block_labels: dict[int, str] = {}
    for unit in graph.units:
        output = by_name[unit.output]
        unit_labels[output.index] = unit_label([by_name[name] for name in unit.layers], channels.shown.get(unit.output))
    for block in graph.blocks:
        members = [by_name[name] for index in block.units for name in graph.units[index].layers]
        output = by_name[graph.units[block.output].output]
        params = sum(layer.params for layer in members)
        block_labels[output.index] = "\n".join(
            [
                block.name,
                f"{len(members)} layers, {params:,} parameters",
                _shape_text(output, channels.shown.get(output.name)),
            ]
        )
    return unit_labels, block_labels


@dataclass(frozen=True)
class OutputLabels:
    """One output head as the scene labels it: its neurons' class names and probability bars."""

    layer: int  # bundle layer index of the head
    class_names: tuple[str, ...]
    units: tuple[int, ...]  # the neurons that get their class name and bar (``labeled_output_units``)


def output_labels(bundle: Bundle, epoch: int = -1, sample: int = 0) -> list[OutputLabels]:
    """Every output head of ``bundle`` (``Bundle.outputs``: several for a network of several outputs), each
    with its own class names and the neurons labeled for ``sample`` at ``epoch``."""
    return [
        OutputLabels(
            bundle.layer(head.layer).index,
            head.class_names,
            tuple(labeled_output_units(bundle, epoch, sample, head=position)),
        )
        for position, head in enumerate(bundle.outputs)
    ]


def labeled_output_units(bundle: Bundle, epoch: int = -1, sample: int = 0, head: int = 0) -> list[int]:
    """The neurons of output ``head`` (its position in ``bundle.outputs``) that get their class name and
    probability bar: all of up to ``LABELED_CLASSES_LIMIT`` classes, else the ``TOP_CLASSES_LABELED`` most
    probable for ``sample`` at ``epoch`` (in class order)."""
    output_head = bundle.outputs[head]
    classes = len(output_head.class_names)
    if classes <= LABELED_CLASSES_LIMIT:
        return list(range(classes))
    output = np.asarray(bundle.activations(output_head.layer, epoch, sample), dtype=np.float32).ravel()
    if len(output) != classes:
        return []
    return sorted(int(unit) for unit in np.argsort(-output, kind="stable")[:TOP_CLASSES_LABELED])


def unit_label(layers: Sequence[LayerInfo], channels_shown: int | None = None) -> str:
    """The name of a unit's main layer, the types of all its layers, and its output shape."""
    head = next((layer for layer in layers if layer.type != "ZeroPadding2D"), layers[0])
    types = " + ".join(_type_name(layer) for layer in layers)
    return f"{head.name}\n{types} {_shape_text(layers[-1], channels_shown)}"


def _type_name(layer: LayerInfo) -> str:
    if layer.type == "Activation" and layer.config.get("activation"):
        return str(layer.config["activation"])
    if layer.type == "ReLU":
        return "ReLU6" if layer.config.get("max_value") == 6 else "ReLU"
    spec = spec_of(layer.type)
    return spec.label if spec is not None else layer.type


def _shape_text(layer: LayerInfo, channels_shown: int | None) -> str:
    shape = "x".join(str(size) for size in layer.output_shape)
    if layer.is_spatial and channels_shown and channels_shown < layer.output_shape[2]:
        return f"{shape} (first {channels_shown} of {layer.output_shape[2]} maps)"
    return shape
