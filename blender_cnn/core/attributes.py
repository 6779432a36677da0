"""Every named attribute of a network scene: its Blender type, its domain, what carries it and what it means.

Pure Python, no bpy. Python writes some of these onto the scene's geometry
(``core/cells.py``, ``core/timeline.py``, ``core/placement.py``...), the node
groups read them and store the others (``nodes/``), and the materials read
the colors. Each name is declared once here, so a reader (a Named Attribute
node) and a writer (a Store Named Attribute node, or ``foreach_set``) cannot
disagree on its type; ``nodes/builder.py`` looks the type up by name.

Families of names (one attribute per epoch, sample or class) are templates
such as ``activation_e{epoch}_s{slot}``: ``name_of`` fills them in, and the
node groups join the same parts into a string in the tree.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import numpy as np

# Blender's attribute types, with the numpy dtype Python writes them in.
INT, FLOAT, BOOLEAN, FLOAT_VECTOR, FLOAT_COLOR = "INT", "FLOAT", "BOOLEAN", "FLOAT_VECTOR", "FLOAT_COLOR"
NUMPY_TYPES = {INT: np.int32, FLOAT: np.float32, BOOLEAN: np.bool_, FLOAT_VECTOR: np.float32, FLOAT_COLOR: np.float32}
POINT, CURVE, FACE = "POINT", "CURVE", "FACE"

# What carries them: the objects a network scene is made of, and the drawn geometry.
CELLS = "cells"  # mesh, one vertex per cell (scene/network.py)
CONNECTIONS = "connections"  # hair curves, one per drawn dense weight
HISTORY = "history"  # mesh, one vertex per epoch
IMPORTANCE_TABLE = "importance"  # mesh, one vertex per channel or unit (core/importance_timeline.py)
OPERATIONS = "operations"  # mesh, one vertex per layer: how it is computed (core/operations.py)
KERNELS = "kernels"  # mesh, one vertex per convolution kernel weight
LAYER_TABLE = "layer table"  # mesh, one vertex per layer: its place in a graph (core/placement.py)
LINKS = "links"  # hair curves, one per link between the layers of a graph
DRAWN = "drawn"  # what the node groups output: quads, text, tubes
INSPECTION = "inspection"  # mesh, one vertex per number annotation of the last Inspect (scene/inspection.py)
MAPS = "maps"  # points the Cell Layout group makes, one per feature map (nodes/groups.py)


@dataclass(frozen=True)
class Attribute:
    """One attribute (or one family of them, when ``name`` has ``{fields}``), and where it stands.

    ``where`` maps each carrier to the domain the attribute has there: the
    weights are per curve on the connections and per point on the kernels.
    """

    name: str
    data_type: str
    where: tuple[tuple[str, str], ...]
    description: str

    @property
    def carriers(self) -> tuple[str, ...]:
        return tuple(carrier for carrier, _domain in self.where)

    @property
    def domain(self) -> str:
        """The domain on its first carrier: where a Store Named Attribute node puts it unless told otherwise."""
        return self.where[0][1]

    def domain_on(self, carrier: str) -> str:
        return dict(self.where)[carrier]

    @property
    def dtype(self) -> type:
        return NUMPY_TYPES[self.data_type]

    @property
    def fields(self) -> tuple[str, ...]:
        """The template's fields in order (``("epoch", "slot")``); empty for a plain name."""
        return tuple(field for _text, field, _spec, _conversion in string.Formatter().parse(self.name) if field)

    def parts[T](self, **values: T) -> list[str | T]:
        """The template as a list of its text and the given values in order: what a node tree joins."""
        parts: list[str | T] = []
        for text, field, _spec, _conversion in string.Formatter().parse(self.name):
            if text:
                parts.append(text)
            if field:
                parts.append(values[field])
        return parts


def _declare(*attributes: Attribute) -> dict[str, Attribute]:
    return {attribute.name: attribute for attribute in attributes}


def _a(name: str, data_type: str, where: str | tuple[str, ...] | dict[str, str], description: str) -> Attribute:
    """``where``: a carrier or carriers (on their points), or ``{carrier: domain}``."""
    if isinstance(where, str):
        where = (where,)
    if not isinstance(where, dict):
        where = dict.fromkeys(where, POINT)
    return Attribute(name, data_type, tuple(where.items()), description)


# fmt: off
ATTRIBUTES = _declare(
    # The cells: written by core/cells.py, one value per cell.
    _a("layer", INT, (CELLS, DRAWN, MAPS), "Index of the cell's layer in the bundle (-1 on the legend's quads)"),
    _a("channel", INT, (CELLS, MAPS), "Channel (feature map) of the cell; 0 for a 1-D layer's neurons"),
    _a("row", INT, CELLS, "Row of the cell in its map"),
    _a("col", INT, CELLS, "Column of the cell in its map"),
    _a("is_summary", INT, (CELLS, MAPS), "0 on a real cell, 1 on the mean map a folded layer shows, 2 on the max map"),
    # The same for every cell of a layer: written by core/cells.py's layer_columns into the layer table, one row per
    # layer, where the cells look them up (networks built before kept them on every cell, where they are still read).
    _a("map_rows", INT, (LAYER_TABLE, OPERATIONS), "Rows of the layer's maps"),
    _a("map_cols", INT, (LAYER_TABLE, OPERATIONS), "Columns of the layer's maps"),
    _a("channels", INT, (LAYER_TABLE, OPERATIONS), "Channels shown of the layer"),
    _a("is_neuron", INT, LAYER_TABLE, "1 on a 1-D layer drawn as a column of neurons (they get the larger pitch)"),
    _a("act_low", FLOAT, LAYER_TABLE, "Low end of the layer's activation range over all epochs and samples (inf: no cells)"),
    _a("act_high", FLOAT, LAYER_TABLE, "High end of the layer's activation range (-inf: no cells)"),
    # Where a map's cells stand, worked out once per map by the Cell Layout group (or on the cells themselves, as their
    # own one-cell extent, on networks built before the layer table): what a layer's label is placed by.
    _a("extent_low", FLOAT_VECTOR, MAPS, "The lowest X, Y and Z of the map's cell centres"),
    _a("extent_high", FLOAT_VECTOR, MAPS, "The highest X, Y and Z of the map's cell centres"),
    _a("activation_e{epoch}_s{slot}", FLOAT, CELLS, "Activation at epoch position E of sample slot S"),
    _a("winner_cell_e{epoch}_s{slot}", INT, CELLS,
       "Cell that won the cell's max-pooling window at epoch position E and sample slot S (-1: none)"),
    _a("importance_row", INT, CELLS, "Row of the importance table the cell reads"),
    # Stored on the cells by the node groups.
    _a("activation", FLOAT, CELLS, "Activation at the Epoch and Sample shown, blended (BCNN Trained Cells)"),
    _a("winner_cell", INT, CELLS, "Pooling winner of the nearest epoch and sample shown"),
    _a("cell_pitch", FLOAT, CELLS, "Distance between neighbouring cells of the layer (BCNN Cell Layout)"),
    _a("cell_scale", FLOAT, CELLS, "How much of the cell is drawn: 0 hidden, 1 whole"),
    _a("cell_tilt", FLOAT, CELLS, "Angle of the cell's row about the wall's horizontal axis (Map Fold)"),
    _a("focus", FLOAT, CELLS, "1 on the cells the focus pixel is computed from (BCNN Receptive Field)"),
    _a("importance", FLOAT, {CELLS: POINT, CONNECTIONS: CURVE},
       "Importance at the Epoch and Class shown, 0..1 (BCNN Importance); on the curves per curve"),
    _a("importance_class", INT, {CELLS: POINT, CONNECTIONS: CURVE}, "Class the importance shown is for"),
    # The connections: written by core/connections.py, per curve.
    _a("source_cell", INT, {CONNECTIONS: CURVE, DRAWN: POINT}, "Cell a connection (or a drawn link) starts at"),
    _a("target_cell", INT, {CONNECTIONS: CURVE, DRAWN: POINT}, "Cell a connection (or a drawn link) ends at"),
    _a("weight_e{epoch}", FLOAT, {CONNECTIONS: CURVE, KERNELS: POINT}, "Weight at epoch position E"),
    _a("weight", FLOAT, {CONNECTIONS: CURVE, KERNELS: POINT, DRAWN: POINT},
       "Weight at the Epoch shown, blended (BCNN Trained Weights); on the kernel points per point"),
    _a("weight_max", FLOAT, {CONNECTIONS: CURVE, OPERATIONS: POINT},
       "Largest weight magnitude of the layer, all epochs"),
    # The bundling route of a connection (core/bundling.py's Routes): ids unique over the network's layer pairs.
    _a("bundle_source_group", INT, {CONNECTIONS: CURVE}, "Group of source neurons whose centre the curve passes"),
    _a("bundle_source_cluster", INT, {CONNECTIONS: CURVE}, "Cluster of source neurons whose centre the curve passes"),
    _a("bundle_target_cluster", INT, {CONNECTIONS: CURVE}, "Cluster of target neurons whose centre the curve passes"),
    _a("bundle_target_group", INT, {CONNECTIONS: CURVE}, "Group of target neurons whose centre the curve passes"),
    _a("bundle_source_share", FLOAT, {CONNECTIONS: CURVE},
       "1 / the curves of its layer pair leaving its source: centres weigh each neuron once"),
    _a("bundle_target_share", FLOAT, {CONNECTIONS: CURVE}, "1 / the curves of its layer pair reaching its target"),
    _a("bundle_spread", FLOAT, {CONNECTIONS: CURVE},
       "How far the curve's cluster places lie beyond their centres, in units of the centre's distance from its "
       "group's (0: at the centre; a pruned layer's rails: 1)"),
    _a("bundle_route", FLOAT_VECTOR, CONNECTIONS,
       "A curve point's share of its own neuron, own group centre and own cluster centre (the far cluster's centre "
       "takes the rest); own is the source's side before the middle of the curve, the target's after it"),
    _a("importance_e{epoch}_c{klass}", FLOAT, {IMPORTANCE_TABLE: POINT, CONNECTIONS: CURVE},
       "Importance for class k at epoch position E; on the curves per curve"),
    _a("importance_e{epoch}_all", FLOAT, {IMPORTANCE_TABLE: POINT, CONNECTIONS: CURVE},
       "Importance for all classes at epoch position E"),
    _a("importance_top_e{epoch}", INT, {IMPORTANCE_TABLE: POINT, CONNECTIONS: CURVE},
       "Class the row (or curve) matters most for at epoch position E"),
    # The history: one point per epoch (core/timeline.py).
    _a("epoch", FLOAT, HISTORY, "The epoch's number"),
    _a("loss", FLOAT, HISTORY, "Training loss of the epoch (NaN: unknown)"),
    _a("accuracy", FLOAT, HISTORY, "Training accuracy of the epoch"),
    _a("val_loss", FLOAT, HISTORY, "Validation loss of the epoch"),
    _a("val_accuracy", FLOAT, HISTORY, "Validation accuracy of the epoch"),
    # The operations table: one point per layer (core/operations.py's INT_COLUMNS; weight_max above).
    _a("op_kind", INT, OPERATIONS, "What the layer computes (core/operations.py's OP_* kinds)"),
    _a("layer_start", INT, OPERATIONS, "Index of the layer's first cell"),
    _a("source_layer", INT, {OPERATIONS: POINT, LINKS: CURVE},
       "Layer the layer reads; on a graph's link curves, where the link starts"),
    _a("source_start", INT, OPERATIONS, "First cell of the layer it reads"),
    _a("source_rows", INT, OPERATIONS, "Rows of the maps it reads"),
    _a("source_cols", INT, OPERATIONS, "Columns of the maps it reads"),
    _a("source_channels", INT, OPERATIONS, "Channels of the layer it reads"),
    _a("kernel_rows", INT, OPERATIONS, "Rows of the window"),
    _a("kernel_cols", INT, OPERATIONS, "Columns of the window"),
    _a("stride_rows", INT, OPERATIONS, "Stride between windows along rows"),
    _a("stride_cols", INT, OPERATIONS, "Stride between windows along columns"),
    _a("pad_top", INT, OPERATIONS, "Rows of padding above"),
    _a("pad_left", INT, OPERATIONS, "Columns of padding on the left"),
    _a("dilation_rows", INT, OPERATIONS, "Dilation along rows"),
    _a("dilation_cols", INT, OPERATIONS, "Dilation along columns"),
    _a("group_inputs", INT, OPERATIONS, "Input channels each output channel reads (grouped convolutions)"),
    _a("group_outputs", INT, OPERATIONS, "Output channels per group"),
    _a("kernel_start", INT, OPERATIONS, "First kernel point of the layer (-1: no kernel points)"),
    _a("kernel_tap_stride", INT, OPERATIONS, "Kernel points between two taps of the window"),
    _a("kernel_in_stride", INT, OPERATIONS, "Kernel points between two input channels"),
    _a("bias_start", INT, OPERATIONS, "Kernel point of the bias of output channel 0 (-1: no bias points)"),
    _a("merge_input_{k}", INT, OPERATIONS, "Layer of a merge's input k (-1: none)"),
    _a("merge_offset_{k}", INT, OPERATIONS, "Channel offset of a concatenation's input k"),
    # The layer table of a graph: one point per layer (core/placement.py), and what BCNN Graph Position adds.
    _a("item", INT, LAYER_TABLE, "Position of the layer's unit or block along the network"),
    _a("column", FLOAT, LAYER_TABLE, "Column of the layer's unit in its block"),
    _a("lane", FLOAT, LAYER_TABLE, "Lane of the unit: 0 on the main path, one per branch"),
    _a("is_output", FLOAT, LAYER_TABLE, "1 on a block's output and on units outside blocks"),
    _a("in_block", FLOAT, LAYER_TABLE, "1 on units inside a block"),
    _a("half_height", FLOAT, LAYER_TABLE, "Half the height of the layer's wall at Cell Size 1"),
    _a("block_half_height", FLOAT, LAYER_TABLE, "Half the height of the wall of the block's output"),
    _a("origin", FLOAT_VECTOR, LAYER_TABLE, "Where the layer's wall stands (BCNN Graph Position)"),
    _a("visible", FLOAT, LAYER_TABLE, "0 inside a collapsed block, 1 when shown"),
    _a("expand", FLOAT, LAYER_TABLE, "How far the layer's block is expanded"),
    # The links of a graph (core/placement.py's link_curves), per curve.
    _a("target_layer", INT, {LINKS: CURVE}, "Layer a link ends at"),
    _a("link_color", FLOAT_VECTOR, {LINKS: CURVE}, "Color of a link, by the merge it feeds"),
    # Stored on what the groups draw; the materials read the colors.
    _a("cell_color", FLOAT_COLOR, DRAWN, "Color of a cell's quad (and the legend's), read by the cell material"),
    _a("edge_color", FLOAT_COLOR, {CONNECTIONS: CURVE, LINKS: CURVE, DRAWN: POINT},
       "Color of a connection or a graph's link (per curve), or a line (per point), read by the edge material"),
    _a("highlight_color", FLOAT_COLOR, DRAWN, "Color of an overlay, read by the highlight material"),
    _a("overlay", INT, DRAWN, "Which overlay a quad is (nodes/operations.py's OVERLAY_*)"),
    _a("link", INT, DRAWN, "Which kind of line a tube is (nodes/operations.py's LINK_*)"),
    _a("link_start", FLOAT_VECTOR, DRAWN, "Where a line starts"),
    _a("link_end", FLOAT_VECTOR, DRAWN, "Where a line ends"),
    _a("weight_index", INT, DRAWN, "Kernel point of a tap's weight"),
    _a("inside", BOOLEAN, DRAWN, "A tap that falls inside the input (not on padding)"),
    _a("probability", FLOAT, DRAWN, "An output neuron's probability, on its bar"),
    _a("graph_link", INT, {LINKS: CURVE}, "1 on the curves of a graph's links"),
    _a("screen_overlay", INT, DRAWN, "1 on the training overlay's text, which sits at the camera"),
    # Numbers written beside the cells (nodes/annotations.py): Inspect's and the sweep's.
    _a("tap_rank", INT, DRAWN, "Order of a tap in its window: input channel, then kernel row and column"),
    _a("annotation", INT, DRAWN,
       "What a glyph (or plate) of a number annotation is (nodes/annotations.py's ANNOTATION_*; 0: none)"),
    _a("annotation_item", INT, DRAWN, "Which of its kind: a tap's rank, an inspection's annotation"),
    _a("annotation_cell", INT, (INSPECTION, DRAWN), "Cell the annotation is placed by (-1: none)"),
    _a("annotation_n{number}", FLOAT, (INSPECTION, DRAWN), "Number n of the annotation as shown (blended)"),
    _a("annotation_size", FLOAT, DRAWN, "Text height of a line of an annotation"),
    _a("annotation_line", INT, DRAWN, "The line a written number is on (BCNN Number Lines)"),
    _a("annotation_prefix", INT, DRAWN, "What a written number follows: nodes/annotations.py's PREFIX_*"),
    _a("annotation_decimals", INT, DRAWN, "Decimals a written number shows"),
    _a("annotation_value", FLOAT, DRAWN, "The number a segment of a line writes"),
    _a("annotation_characters", INT, DRAWN, "Characters of a written number, its prefix included"),
    _a("annotation_whole", INT, DRAWN, "A written number's digits before the point, as an integer"),
    _a("annotation_fraction", INT, DRAWN, "A written number's digits after the point, as an integer"),
    _a("annotation_digits", INT, DRAWN, "How many digits a written number has before the point"),
    _a("annotation_negative", INT, DRAWN, "1 when a written number gets a minus sign"),
    _a("annotation_slot", INT, DRAWN, "Which character of its number a glyph is"),
    _a("annotation_advance", FLOAT, DRAWN, "How far a glyph moves the next one along its line"),
    _a("annotation_align", FLOAT, DRAWN, "0: the line centred on its anchor, 1: starting at it"),
    _a("annotation_place", INT, INSPECTION, "Where an inspection's annotation stands (core/inspection_annotations.py)"),
    _a("annotation_template", INT, INSPECTION, "Which of the inspection's templates writes the annotation"),
    _a("annotation_lines", INT, INSPECTION, "Lines of the annotation's text"),
    _a("inspection_n{number}_e{epoch}_s{slot}", FLOAT, INSPECTION,
       "Number n of an inspection's annotation at epoch position E and sample slot S"),
)
# fmt: on

# The colors the materials read (Cycles does not find a geometry attribute called plain "color").
CELL_COLOR, EDGE_COLOR, HIGHLIGHT_COLOR = "cell_color", "edge_color", "highlight_color"

_TEMPLATES = [
    (re.compile("^" + re.sub(r"\\{\w+\\}", r"\\d+", re.escape(name)) + "$"), attribute)
    for name, attribute in ATTRIBUTES.items()
    if "{" in name
]


def spec(name: str) -> Attribute:
    """The ``Attribute`` called ``name``, or the family a filled-in name belongs to (``activation_e3_s0``)."""
    attribute = ATTRIBUTES.get(name)
    if attribute is not None:
        return attribute
    for pattern, family in _TEMPLATES:
        if pattern.match(name):
            return family
    raise KeyError(f"no attribute {name!r} in core/attributes.py; declare it there")


def name_of(template: str, **values: object) -> str:
    """A family's name filled in: ``name_of("activation_e{epoch}_s{slot}", epoch=3, slot=0)``."""
    return ATTRIBUTES[template].name.format(**values)


def carried_by(carrier: str) -> dict[str, Attribute]:
    """The attributes (and families) ``carrier`` holds, by name."""
    return {name: attribute for name, attribute in ATTRIBUTES.items() if carrier in attribute.carriers}
