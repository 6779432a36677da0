"""Numbers written beside the cells by Geometry Nodes: the sweep's window, Inspect's terms, All Calculations' count.

Every number is computed (or blended) in the tree from the stored per-epoch
values, so it follows the Epoch and Sample inputs and renders without Python.

A text per number would cost a String to Curves and a Fill Curve each (about
1 ms per number, measured), and a zone iterating over numbers about 0.15 ms an
iteration. So there are two writers, and a network uses each once (``write``:
the sweep's numbers, Inspect's and the output's probabilities together, as
each call fills its glyphs again):

- ``BCNN Annotation Lines`` writes lines of words: one string of all of them
  (built with the Format String node from Python's format strings, such as
  ``{n0:.4g}``, so the numpy side, ``core/inspection_annotations.py``, and
  the scene write the same words), turned into glyphs once, each glyph moved
  to its line's anchor point;
- ``BCNN Number Lines`` writes numbers as fields: every character of every
  number is picked from one set of filled digits by arithmetic on the number
  (Python's ``{:.2f}``), so hundreds of numbers on cells cost about what one
  line of words does.

What is drawn carries ``annotation`` (which kind of text, ``ANNOTATION_*``),
``annotation_item`` (a tap's rank, an inspection's text, a panel's line),
``annotation_cell`` (the cell it stands by) and ``annotation_n0..3`` (its
first numbers as shown), so that tests and tools can read the numbers back
from the evaluated geometry (``scene/annotations.py``).
"""

import string

from ..core import operations as ops
from ..core.inspection_annotations import ABOVE_MAP, EPOCH_FIELD, ON_CELL, SAMPLE_FIELD, WEIGHTED_KINDS
from ..core.inspection_record import DENSE
from .builder import ensure_group
from .groups import FACE_NETWORK_VIEW, QUAD_FACING_VIEW, filled_glyphs

ANNOTATION_LINES = "BCNN Annotation Lines"
NUMBER_LINES = "BCNN Number Lines"
WINDOW_NUMBERS = "BCNN Window Numbers"
NO_INSPECTION = "BCNN No Inspection"
INSPECTION_TREE_PREFIX = "BCNN Inspection "
# The node of a network's tree that draws Inspect's numbers: its group is swapped for each inspection's own.
INSPECTION_NODE = "BCNN Inspection"

# ``annotation``: what a glyph belongs to (0 on everything else).
ANNOTATION_INSPECT_CELL, ANNOTATION_INSPECT_EQUATION = 1, 2
ANNOTATION_SWEEP_TAP, ANNOTATION_SWEEP_EQUATION = 3, 4
ANNOTATION_CALCULATIONS = 5
# The top classes' readout beside an output layer (nodes/operations.py's top_classes_readout): labels, not numbers on
# cells, though written by Annotation Lines.
ANNOTATION_TOP_CLASSES = 6
NUMBERS_STORED = 4  # annotation_n0..3 on the glyphs

# In text heights: between the lines of one text, the plate's margin, and half a digit's height (lines are
# centred on their anchors).
LINE_SPACING = 1.25
PLATE_MARGIN = 0.18
CAP_MIDDLE = 0.35
# In front of the cells (toward -X, where the view is): the glyphs, and their plate a little behind them.
GLYPH_LIFT, PLATE_LIFT = 0.08, 0.04
# Text heights in cell pitches: numbers on cells, and an equation beside its cell.
NUMBER_SIZE = 0.2
EQUATION_SIZE = 0.9
# An equation above its map: the gap between the map's top row and the equation's last line, in cell pitches.
EQUATION_GAP = 1.2
# A neuron's equation starts this many pitches to its right: after its probability bar and number.
NEURON_EQUATION_OFFSET = 10.5
# Windows with more taps than this get no numbers on their cells, only the panel: they would hide the maps.
MAX_NUMBERED_TAPS = 256
# The sweep's panel, in cell pitches of the focus map; it lists at most this many input channels' sums.
PANEL_SIZE = 0.6
MAX_CHANNEL_LINES = 8


def ensure_annotation_lines():
    return ensure_group(ANNOTATION_LINES, _build_annotation_lines)


def ensure_window_numbers():
    return ensure_group(WINDOW_NUMBERS, _build_window_numbers)


def ensure_no_inspection():
    return ensure_group(NO_INSPECTION, _build_no_inspection)


# ---------------------------------------------------------------- helpers


def format_string(b, template, items):
    """A Format String node: ``template`` (a string or socket) with ``items`` ({name: (kind, value)})."""
    node = b.node("FunctionNodeFormatString")
    for name, (kind, _value) in items.items():
        node.format_items.new(kind, name)
    b.set_input(node, "Format", template)
    for name, (_kind, value) in items.items():
        b.set_input(node, name, value)
    return node.outputs[0]


def _accumulated(b, value, group, output, domain="INSTANCE"):
    return b.node(
        "GeometryNodeAccumulateField", {"Value": value, "Group ID": group}, data_type="FLOAT", domain=domain
    ).outputs[output]


def _captured(b, geometry, fields, domain):
    """``geometry`` with ``fields`` ({name: (kind, field)}) captured on ``domain``; returns it and the values."""
    node = b.node("GeometryNodeCaptureAttribute", domain=domain)
    for name, (kind, _field) in fields.items():
        node.capture_items.new(kind, name)
    b.set_input(node, "Geometry", geometry)
    for name, (_kind, field) in fields.items():
        b.set_input(node, name, field)
    return node.outputs["Geometry"], {name: node.outputs[name] for name in fields}


def _duplicated(b, geometry, amount, selection=None):
    """``amount`` copies of each (selected) point, in order; returns (points, the copy's number)."""
    inputs = {"Geometry": geometry, "Amount": amount}
    if selection is not None:
        inputs["Selection"] = selection
    node = b.node("GeometryNodeDuplicateElements", inputs, domain="POINT")
    return node.outputs["Geometry"], node.outputs["Duplicate Index"]


def _repeat(b, iterations, items):
    """A Repeat zone of ``iterations`` with state ``items`` ({name: (kind, first value)}).

    Returns ``(zone input, zone output)``: read the state and ``Iteration`` from
    the input's outputs, link each next state into the output's inputs.
    """
    start, end = b.node("GeometryNodeRepeatInput"), b.node("GeometryNodeRepeatOutput")
    start.pair_with_output(end)
    for name, (kind, _value) in items.items():
        end.repeat_items.new(kind, name)
    b.set_input(start, "Iterations", iterations)
    for name, (_kind, value) in items.items():
        b.set_input(start, name, value)
    return start, end


def _on_cell(b, size):
    """The height of a number on a cell, in cell pitches: Number Size shrinks it, but it never outgrows its cell."""
    return b.multiply(b.minimum(size, 1.0), NUMBER_SIZE)


def _written_outputs(b):
    """What a group that writes numbers gives the network's one writer (``write``)."""
    b.add_output("Segments", "GEOMETRY")  # numbers for Number Lines
    b.add_output("Text", "STRING")  # lines of words, each ending in a newline ...
    b.add_output("Anchors", "GEOMETRY")  # ... and a point per line, for Annotation Lines


def write(b, parts, materials):
    """Every number and word of a network drawn by one Number Lines and one Annotation Lines.

    ``parts`` are ``(Segments, Text, Anchors)`` sockets (``_written_outputs``; ``None`` where a part writes
    none). Each writer fills its glyphs once per call, about a millisecond each frame, so one call for
    everything (the sweep's numbers, Inspect's, the output's probabilities) saves a fill per part.
    A part's lines are numbered after the parts before. ``materials``: "text", "plate" and "label"
    (``_build_number_lines`` says which numbers are written in the label's).
    """
    segments, texts, anchors = None, [], []
    for part_segments, text, part_anchors in parts:
        if part_segments is not None:
            if segments is not None:
                after = b.add(b.statistic(segments, b.attribute("annotation_line"))["Max"], 1.0)
                part_segments = b.store(part_segments, "annotation_line", b.add(b.attribute("annotation_line"), after))
                segments = b.join([segments, part_segments])
            else:
                segments = part_segments
        if text is not None:
            texts.append(text)
            anchors.append(part_anchors)
    look = {"Text Material": materials["text"], "Plate Material": materials["plate"]}
    drawn = [
        b.group(ensure_number_lines(), {"Segments": segments, **look, "Label Material": materials["label"]}).outputs[0]
    ]
    if texts:
        lines = {"Text": b.join_strings(*texts), "Anchors": b.join(anchors), **look}
        drawn.append(b.group(ensure_annotation_lines(), lines).outputs[0])
    return b.join(drawn)


def written_by(node):
    """A writing group's ``(Segments, Text, Anchors)`` for ``write``."""
    return node.outputs["Segments"], node.outputs["Text"], node.outputs["Anchors"]


# ---------------------------------------------------------------- the lines of text


def _build_annotation_lines(b):
    """The lines of Text, each at its anchor point, facing the view, on dark plates.

    Line ``L`` of Text goes to point ``L`` of Anchors: centred on it (or, with
    ``annotation_align`` 1, starting at it), ``annotation_size`` high, in front
    of the cells. The glyphs get the anchor's ``annotation*`` attributes.
    """
    b.tree.description = "Lines of text placed at one anchor point each"
    text = b.add_input("Text", "STRING")
    anchors = b.add_input("Anchors", "GEOMETRY", description="One point per line of Text")
    text_material = b.add_input("Text Material", "MATERIAL")
    plate_material = b.add_input("Plate Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    with b.frame("Glyphs of the whole text at once: each distinct character filled once"):
        curves = b.node("GeometryNodeStringToCurves", {"String": text, "Size": 1.0, "Align X": "Center"})
        line = curves.outputs["Line"]
        glyphs = filled_glyphs(b, curves.outputs["Curve Instances"])

    def at_line(value):
        return b.sample_index(anchors, value, line)

    with b.frame("Each glyph at its line's anchor: lines are centred at x 0 and stand 1 apart"):
        size = at_line(b.attribute("annotation_size"))
        align = at_line(b.attribute("annotation_align"))
        anchor = at_line(b.position())
        glyph = b.separate_xyz(b.position())
        first = b.compare(_accumulated(b, 1.0, line, "Leading"), "==", 1.0, "FLOAT")
        first_x = _accumulated(b, b.multiply(first, glyph["X"]), line, "Total")
        # Left-aligned lines start at the anchor: move them by half their width (-first_x).
        shift = b.multiply(align, b.negate(first_x))
        across = b.add(glyph["X"], shift)
        up = b.subtract(b.add(glyph["Y"], line), CAP_MIDDLE)
        # The text plane's x runs along -Y and its y along Z (groups.FACE_NETWORK_VIEW).
        offset = b.combine_xyz(b.negate(GLYPH_LIFT), b.negate(across), up)
        where = b.vector_add(anchor, b.scale(offset, size))
        transform = b.node(
            "FunctionNodeCombineTransform",
            {"Translation": where, "Rotation": FACE_NETWORK_VIEW, "Scale": b.combine_xyz(size, size, size)},
        ).outputs[0]
        glyphs, plate = _captured(
            b,
            glyphs,
            {
                "Width": ("FLOAT", b.multiply(b.add(b.multiply(first_x, -2.0), 2 * PLATE_MARGIN), size)),
                "Height": ("FLOAT", b.multiply(size, LINE_SPACING)),
                "Centre": (
                    "VECTOR",
                    b.vector_add(anchor, b.scale(b.combine_xyz(b.negate(PLATE_LIFT), b.negate(shift), 0.0), size)),
                ),
            },
            "INSTANCE",
        )
        placed = b.node("GeometryNodeSetInstanceTransform", {"Instances": glyphs, "Transform": transform}).outputs[0]
        for name in (
            "annotation",
            "annotation_item",
            "annotation_cell",
            *(f"annotation_n{k}" for k in range(NUMBERS_STORED)),
        ):
            placed = b.store(placed, name, at_line(b.attribute(name)), domain="INSTANCE")
        # Left as instances: the network realizes them for final renders, and realizing each frame was most
        # of a text's cost once its glyphs were filled (measured).
        text = b.set_material(placed, text_material)

    with b.frame("A plate behind each line, as wide as the line"):
        starts = b.node(
            "GeometryNodeInstancesToPoints", {"Instances": placed, "Selection": first, "Position": plate["Centre"]}
        ).outputs[0]
        quad = b.set_material(b.transform(b.grid(1.0, 1.0), rotation=QUAD_FACING_VIEW), plate_material)
        plates = b.instance_on_points(starts, quad, scale=b.combine_xyz(1.0, plate["Width"], plate["Height"]))
    b.set_outputs(Mesh=b.join([plates, text]))


# ---------------------------------------------------------------- numbers as fields

# The characters a number is written with, in the order of their codes, and a last one that only ends the row
# (its start is where the one before ends).
DIGIT_GLYPHS = "0123456789.-×=+ |"
POINT, MINUS, SPACE = 10, 11, 15
# A segment's prefix, by its code: nothing, "×", "=", "+" (only before a number that is not negative), " + ",
# "+ ", two spaces.
PREFIXES = ("", "×", "=", "+", " + ", "+ ", "  ")
PREFIX_NONE, PREFIX_TIMES, PREFIX_EQUALS, PREFIX_SIGN, PREFIX_PLUS, PREFIX_LEADING_PLUS, PREFIX_GAP = range(7)
# Digits before the point a number may have: larger ones are clamped (they do not occur in activations).
MAX_INTEGER_DIGITS = 6
MAX_DECIMALS = 4
# Characters of a segment: a prefix of 3, a sign, the digits, the point and the decimals.
SEGMENT_CHARACTERS = 3 + 1 + MAX_INTEGER_DIGITS + 1 + MAX_DECIMALS


def ensure_number_lines():
    return ensure_group(NUMBER_LINES, _build_number_lines)


def _build_number_lines(b):
    """Numbers written as fields, each line at its anchor: hundreds of them for the cost of a few.

    Each point of Segments is a number with a prefix (``annotation_prefix``,
    a code of ``PREFIXES``) and ``annotation_decimals`` decimals (Python's
    ``{:.2f}``), on the line ``annotation_line`` of the point's position
    (a line's centre); a line's segments follow one another in point order.
    Their characters are picked from the glyphs of ``DIGIT_GLYPHS``, made and
    filled once, so no string is built per number. The glyphs get the
    segments' ``annotation*`` attributes, and each line a plate behind it.
    Numbers of no ``annotation`` kind (0: the output's probabilities) are
    labels rather than annotations: in the Label Material, with no plate.
    """
    b.tree.description = "Numbers written beside the cells, computed as fields"
    segments = b.add_input("Segments", "GEOMETRY", description="One point per number, in the order they are read")
    text_material = b.add_input("Text Material", "MATERIAL")
    plate_material = b.add_input("Plate Material", "MATERIAL")
    label_material = b.add_input("Label Material", "MATERIAL", description="Numbers of no annotation kind")
    b.add_output("Mesh", "GEOMETRY")

    with b.frame("Only the attributes a number needs, on points of their own"):
        count = b.point_count(segments)
        points = b.node("GeometryNodePoints", {"Count": count}).outputs[0]

        def kept(value):
            return b.sample_index(segments, value, b.index())

        points = b.set_position(points, kept(b.position()))
        for name in (
            "annotation",
            "annotation_item",
            "annotation_cell",
            "annotation_line",
            "annotation_prefix",
            "annotation_decimals",
            "annotation_value",
            "annotation_size",
            "annotation_align",
            *(f"annotation_n{k}" for k in range(NUMBERS_STORED)),
        ):
            points = b.store(points, name, kept(b.attribute(name)))

    with b.frame("Each number's parts: sign, digits before and after the point, prefix"):
        value = b.attribute("annotation_value")
        decimals = b.int_clamp(b.attribute("annotation_decimals"), 0, MAX_DECIMALS)
        scale = b.int_math("POWER", 10, decimals)
        limit = 10.0**MAX_INTEGER_DIGITS - 1.0
        units = _to_int(b, b.round(b.multiply(b.minimum(b.absolute(value), limit), scale)))
        whole, fraction = b.int_divide(units, scale), b.int_modulo(units, scale)
        negative = b.all_of(b.less_than(value, 0.0), b.compare(units, ">", 0))
        digits = 1
        for power in range(1, MAX_INTEGER_DIGITS):
            digits = b.int_add(digits, b.compare(whole, ">=", 10**power))
        prefix = b.attribute("annotation_prefix")
        # "+" only before a number that is not negative (its minus stands there instead).
        prefix = b.switch("INT", b.all_of(b.compare(prefix, "==", PREFIX_SIGN), negative), prefix, PREFIX_NONE)
        prefix_length = b.index_switch(prefix, [len(text) for text in PREFIXES], "INT", label="Prefix Lengths")
        has_point = b.compare(decimals, ">", 0)
        characters = b.int_add(
            b.int_add(prefix_length, negative), b.int_add(digits, b.int_multiply(has_point, b.int_add(decimals, 1)))
        )
        points = b.store(points, "annotation_characters", characters)
        for name, number in (
            ("annotation_prefix", prefix),
            ("annotation_whole", whole),
            ("annotation_fraction", fraction),
            ("annotation_digits", digits),
            ("annotation_negative", negative),
        ):
            points = b.store(points, name, number)

    with b.frame("A point per character, and which glyph it is"):
        slots, slot = _duplicated(b, points, SEGMENT_CHARACTERS)
        slots = b.store(slots, "annotation_slot", slot)
        slots = b.delete(slots, b.compare(b.attribute("annotation_slot"), ">=", b.attribute("annotation_characters")))
        slot = b.attribute("annotation_slot")
        prefix, length = (
            b.attribute("annotation_prefix"),
            b.index_switch(
                b.attribute("annotation_prefix"), [len(text) for text in PREFIXES], "INT", label="Prefix Lengths"
            ),
        )
        prefix_glyph = b.index_switch(
            b.int_add(b.int_multiply(prefix, 3), b.int_minimum(slot, 2)),
            [DIGIT_GLYPHS.index(text[k]) if k < len(text) else SPACE for text in PREFIXES for k in range(3)],
            "INT",
            label="Prefix Glyphs",
        )
        negative = b.attribute("annotation_negative")
        at = b.int_subtract(b.int_subtract(slot, length), negative)  # the place among digits, point, decimals
        digits = b.attribute("annotation_digits")
        power_before = b.int_math("POWER", 10, b.int_subtract(b.int_subtract(digits, 1), at))
        before = b.int_modulo(b.int_divide(b.attribute("annotation_whole"), b.int_maximum(power_before, 1)), 10)
        decimals = b.int_clamp(b.attribute("annotation_decimals"), 0, MAX_DECIMALS)
        after = b.int_subtract(b.int_subtract(at, digits), 1)
        power_after = b.int_math("POWER", 10, b.int_subtract(b.int_subtract(decimals, 1), after))
        behind = b.int_modulo(b.int_divide(b.attribute("annotation_fraction"), b.int_maximum(power_after, 1)), 10)
        number_glyph = b.switch(
            "INT", b.compare(at, "<", digits), b.switch("INT", b.compare(at, "==", digits), behind, POINT), before
        )
        glyph = b.switch(
            "INT",
            b.compare(slot, "<", length),
            b.switch("INT", b.all_of(negative, b.compare(at, "<", 0)), number_glyph, MINUS),
            prefix_glyph,
        )

    with b.frame("The glyphs, made and filled once; each character's advance"):
        atlas = b.node("GeometryNodeStringToCurves", {"String": DIGIT_GLYPHS, "Size": 1.0}).outputs[0]
        starts = b.separate_xyz(b.position())["X"]

        def glyph_start(index):
            return b.node(
                "GeometryNodeSampleIndex",
                {"Geometry": atlas, "Value": starts, "Index": index},
                data_type="FLOAT",
                domain="INSTANCE",
            ).outputs[0]

        advance = b.subtract(glyph_start(b.int_add(glyph, 1)), glyph_start(glyph))
        filled = filled_glyphs(b, atlas)
        # Each glyph at its own origin: the picked instance keeps its transform.
        identity = b.node("FunctionNodeCombineTransform").outputs[0]
        filled = b.node("GeometryNodeSetInstanceTransform", {"Instances": filled, "Transform": identity}).outputs[0]
        # The glyphs twice, in each material: instance k is glyph k in the text's, k + len(DIGIT_GLYPHS) in the label's.
        filled = b.join([b.set_material(filled, text_material), b.set_material(filled, label_material)])

    with b.frame("Characters one after another along their line, the line centred on its anchor"):
        line = b.attribute("annotation_line")
        slots = b.store(slots, "annotation_advance", advance)
        step = b.attribute("annotation_advance")
        before_it = _accumulated(b, step, line, "Trailing", "POINT")
        width = _accumulated(b, step, line, "Total", "POINT")
        # Centred on the anchor, or (annotation_align 1) starting at it.
        align = b.attribute("annotation_align")
        across = b.subtract(before_it, b.multiply(width, b.multiply(b.subtract(1.0, align), 0.5)))
        size = b.attribute("annotation_size")
        offset = b.combine_xyz(b.negate(GLYPH_LIFT), b.negate(across), b.negate(CAP_MIDDLE))
        slots, plate = _captured(
            b,
            slots,
            {
                "First": ("BOOLEAN", b.compare(_accumulated(b, 1.0, line, "Leading", "POINT"), "==", 1.0, "FLOAT")),
                "Width": ("FLOAT", b.multiply(b.add(width, 2 * PLATE_MARGIN), size)),
                "Middle": ("FLOAT", b.multiply(b.multiply(align, width), b.multiply(size, 0.5))),
                "Height": ("FLOAT", b.multiply(size, LINE_SPACING)),
            },
            "POINT",
        )
        is_label = b.compare(b.attribute("annotation"), "==", 0)
        plate_points = b.keep(slots, b.all_of(plate["First"], b.logical_not(is_label)))
        slots = b.set_position(slots, b.vector_add(b.position(), b.scale(offset, size)))
        glyphs = b.node(
            "GeometryNodeInstanceOnPoints",
            {
                "Points": slots,
                "Instance": filled,
                "Pick Instance": True,
                "Instance Index": b.int_add(glyph, b.int_multiply(is_label, len(DIGIT_GLYPHS))),
                "Rotation": FACE_NETWORK_VIEW,
                "Scale": b.combine_xyz(size, size, size),
            },
        ).outputs[0]
        # Instances, as Annotation Lines' glyphs.
        text = _only_annotation_attributes(b, glyphs)

    with b.frame("A plate behind each line"):
        plate_points = b.set_position(
            plate_points,
            offset=b.combine_xyz(b.negate(b.multiply(PLATE_LIFT, size)), b.negate(plate["Middle"]), 0.0),
        )
        quad = b.set_material(b.transform(b.grid(1.0, 1.0), rotation=QUAD_FACING_VIEW), plate_material)
        plates = b.instance_on_points(
            _only_annotation_attributes(b, plate_points),
            quad,
            scale=b.combine_xyz(1.0, plate["Width"], plate["Height"]),
        )
    b.set_outputs(Mesh=b.join([plates, text]))


# Attributes Number Lines works with and drops before drawing.
WORKING_ATTRIBUTES = (
    "annotation_line",
    "annotation_prefix",
    "annotation_decimals",
    "annotation_value",
    "annotation_size",
    "annotation_align",
    "annotation_characters",
    "annotation_whole",
    "annotation_fraction",
    "annotation_digits",
    "annotation_negative",
    "annotation_slot",
    "annotation_advance",
)


def _only_annotation_attributes(b, geometry):
    for name in WORKING_ATTRIBUTES:
        geometry = b.remove_attribute(geometry, name)
    return geometry


# ---------------------------------------------------------------- the focus window's numbers


def _epoch_inputs(b):
    return {
        "Epoch": b.add_input("Epoch", "FLOAT", 0.0),
        "Low": b.add_input("Epoch Low", "INT", 0),
        "High": b.add_input("Epoch High", "INT", 0),
        "Factor": b.add_input("Epoch Factor", "FLOAT", 0.0),
        "Sample": b.add_input("Sample", "FLOAT", 0.0, 0.0),
    }


def _blended(b, epochs, value_at):
    """``value_at(epoch, slot)`` blended between the two epochs and the two samples shown, as the cells are."""
    sample = b.maximum(epochs["Sample"], 0.0)
    first = b.floor(sample)
    second, sample_factor = b.ceil(sample), b.subtract(sample, first)

    def at_slot(slot):
        return b.mix(epochs["Factor"], value_at(epochs["Low"], slot), value_at(epochs["High"], slot))

    return b.mix(sample_factor, at_slot(first), at_slot(second))


def _build_window_numbers(b):
    """The focus window's arithmetic for the Epoch and Sample shown: each tap's input value, kernel weight and
    product on its input cell, and above the focus pixel's map a panel: the cell, the products (one line per
    kernel row; per input channel, their sums) and the sum, bias and activation.

    Revealed: how many taps of the window (in ``tap_rank`` order) are shown and summed so far. A product is
    blended between epochs and samples as the cells are (the blend of each epoch's product), so the products
    shown add up to the sum shown at every moment.
    """
    b.tree.description = "The focus window's products and their sum, as numbers"
    cells = b.add_input("Cells", "GEOMETRY")
    operations = b.add_input("Operations", "GEOMETRY")
    kernels = b.add_input("Kernels", "GEOMETRY")
    taps = b.add_input("Taps", "GEOMETRY", description="The drawn windows' taps (BCNN Kernel Taps)")
    layer = b.add_input("Focus Layer", "INT", 0, 0)
    focus = b.add_input("Focus Index", "INT", 0, 0)
    channel = b.add_input("Focus Channel", "INT", 0, 0)
    row = b.add_input("Focus Row", "INT", 0, 0)
    col = b.add_input("Focus Column", "INT", 0, 0)
    epochs = _epoch_inputs(b)
    revealed = b.add_input("Revealed", "INT", 1 << 30, 0, description="Taps shown and summed so far")
    tap_numbers = b.add_input("Tap Numbers", "BOOLEAN", True, description="Numbers on the window's cells")
    layer_name = b.add_input("Layer Name", "STRING")
    after_sum = b.add_input("After Sum", "STRING", description="What makes the cell's value of the sum: 'relu'")
    size = b.add_input("Size", "FLOAT", 1.0, 0.0)
    show = b.add_input("Show", "BOOLEAN", True)
    _written_outputs(b)

    def column(name):
        return b.sample_index(operations, b.attribute(name), layer)

    kind = column("op_kind")
    weighted = b.all_of(b.compare(kind, "==", ops.OP_CONVOLUTION), b.compare(column("kernel_start"), ">=", 0))
    is_max = b.compare(kind, "==", ops.OP_MAX_POOLING)
    # A convolution whose kernel the scene holds, or a pooling; others (a transposed or separable convolution,
    # a kernel too large to store) get no numbers rather than wrong ones.
    has_numbers = b.any_of(weighted, b.any_of(is_max, b.compare(kind, "==", ops.OP_AVERAGE_POOLING)))
    kernel_cols = column("kernel_cols")
    per_channel = b.int_multiply(column("kernel_rows"), kernel_cols)
    every_tap = b.int_multiply(per_channel, column("group_inputs"))
    shown_count = b.int_minimum(revealed, every_tap)

    with b.frame("The focus pixel's taps, and each one's value, weight and product at the epoch and sample shown"):
        # The focus pixel's taps in tap_rank order: Kernel Taps makes each window's taps one after another.
        window = b.keep(taps, b.compare(b.attribute("target_cell"), "==", focus))
        inside = b.attribute("inside")
        source = b.attribute("source_cell")

        def value_at(epoch, slot):
            named = b.attribute("activation_e{epoch}_s{slot}", epoch=epoch, slot=slot)
            return b.multiply(b.sample_index(cells, named, source), inside)

        weights = {}

        def weight_at(epoch):
            if epoch not in weights:  # one lookup per epoch, shared by both samples' products
                named = b.attribute("weight_e{epoch}", epoch=epoch)
                weights[epoch] = b.switch(
                    "FLOAT", weighted, 1.0, b.sample_index(kernels, named, b.attribute("weight_index"))
                )
            return weights[epoch]

        # The value and weight as the cells and kernel tiles show them: already blended there.
        value = b.multiply(b.sample_index(cells, b.attribute("activation"), source), inside)
        weight = b.switch(
            "FLOAT", weighted, 1.0, b.sample_index(kernels, b.attribute("weight"), b.attribute("weight_index"))
        )
        product = _blended(b, epochs, lambda epoch, slot: b.multiply(value_at(epoch, slot), weight_at(epoch)))
        for name, number in (("annotation_n0", value), ("annotation_n1", weight), ("annotation_n2", product)):
            window = b.store(window, name, number)
        shown = b.compare(b.attribute("tap_rank"), "<", revealed)

    with b.frame("The sum so far, the bias, and the cell's value"):
        running = b.statistic(window, b.attribute("annotation_n2"), shown)["Sum"]
        inside_shown = b.all_of(shown, inside)
        largest = b.statistic(window, b.attribute("annotation_n0"), inside_shown)["Max"]
        counted = b.statistic(window, inside, inside_shown)["Sum"]
        inside_count = b.statistic(window, inside)["Sum"]
        complete = b.compare(revealed, ">=", every_tap)
        has_bias = b.all_of(weighted, b.compare(column("bias_start"), ">=", 0))
        bias_index = b.int_add(column("bias_start"), channel)

        def bias_at(epoch):
            named = b.attribute("weight_e{epoch}", epoch=epoch)
            return b.multiply(b.sample_index(kernels, named, bias_index), has_bias)

        bias = b.mix(epochs["Factor"], bias_at(epochs["Low"]), bias_at(epochs["High"]))
        result = b.sample_index(cells, b.attribute("activation"), focus)
        numbers = {
            "n0": ("FLOAT", b.switch("FLOAT", is_max, running, largest)),
            "n1": ("FLOAT", bias),
            "n2": ("FLOAT", b.add(running, bias)),
            "n3": ("FLOAT", result),
        }

    with b.frame("On the window's cells: value, weight and product (a convolution), or the value (pooling)"):
        labelled = b.keep(window, b.all_of(inside_shown, tap_numbers, b.compare(every_tap, "<=", MAX_NUMBERED_TAPS)))
        labelled = b.set_position(labelled, b.sample_index(cells, b.position(), source))
        labelled = b.store(labelled, "annotation", ANNOTATION_SWEEP_TAP)
        labelled = b.store(b.store(labelled, "annotation_item", b.attribute("tap_rank")), "annotation_cell", source)
        tap_size = b.multiply(b.sample_index(cells, b.attribute("cell_pitch"), source), _on_cell(b, size))
        tap_numbers = b.switch(
            "GEOMETRY",
            weighted,
            cell_segments(b, labelled, POOLING_CELL, tap_size),
            cell_segments(b, labelled, CONVOLUTION_CELL, tap_size),
        )

    with b.frame("The panel: a line per kernel row of products (one input channel), or each input channel's sum"):
        single = b.compare(column("group_inputs"), "==", 1)
        row_lines = b.int_divide(b.int_add(shown_count, b.int_subtract(kernel_cols, 1)), kernel_cols)
        channels_text, channel_lines = _channel_lines(b, window, shown, shown_count, per_channel, channel, column)
        product_lines = b.switch("INT", single, channel_lines, row_lines)
        panel_lines = b.int_add(product_lines, 2)
        in_map = b.all_of(
            b.compare(b.attribute("layer"), "==", layer),
            b.compare(b.attribute("channel"), "==", channel),
            b.compare(b.attribute("is_summary"), "==", 0),
        )
        extent = b.statistic(cells, b.position(), in_map, "FLOAT_VECTOR")
        middle, top = b.separate_xyz(extent["Mean"]), b.separate_xyz(extent["Max"])
        panel_size = b.multiply(b.multiply(b.sample_index(cells, b.attribute("cell_pitch"), focus), PANEL_SIZE), size)
        # A line's height of room between the map's top row and the panel's last line.
        base = b.add(top["Z"], b.multiply(panel_size, 1.5))

        def panel_line(line):
            """Where line ``line`` of the panel (0 = the first, the header) stands."""
            lines_below = b.int_subtract(b.int_subtract(panel_lines, 1), line)
            height = b.add(base, b.multiply(lines_below, b.multiply(panel_size, LINE_SPACING)))
            return b.combine_xyz(middle["X"], middle["Y"], height)

        def marked(points, item):
            points = b.store(b.store(points, "annotation", ANNOTATION_SWEEP_EQUATION), "annotation_item", item)
            points = b.store(b.store(points, "annotation_cell", focus), "annotation_size", panel_size)
            for key, (_kind, number) in numbers.items():
                points = b.store(points, f"annotation_{key}", number)
            return points

        rows = b.keep(window, b.all_of(shown, single))
        rows = _kernel_row_segments(b, rows, kernel_cols, weighted, is_max)
        kernel_row = b.int_subtract(b.attribute("annotation_line"), ROW_LINES)
        rows = marked(b.set_position(rows, panel_line(b.int_add(kernel_row, 1))), b.int_add(kernel_row, 1))

    with b.frame("The panel's first and last lines: which cell, and the sum, bias and activation"):
        counts = {
            "t": ("INT", every_tap),
            "k": ("INT", shown_count),
            "c": ("INT", _to_int(b, inside_count)),
            "j": ("INT", _to_int(b, counted)),
        }
        has_after = b.compare(b.node("FunctionNodeStringLength", {"String": after_sum}).outputs[0], ">", 0)
        whole_sum = b.join_strings(
            "sum {n0:.4g}",
            b.switch("STRING", has_bias, "", " + bias {n1:.4g}"),
            b.switch("STRING", b.any_of(has_bias, has_after), "", " = {n2:.4g}"),
            b.switch("STRING", has_after, "", " -> {after} -> {n3:.4g}"),
        )
        sum_words = b.switch("STRING", complete, "sum so far {n0:.4g}, {k} of {t} products", whole_sum)
        max_words = b.switch("STRING", complete, "max so far {n0:.4g}, {j} of {c} values", "max {n3:.4g}")
        mean_words = b.switch(
            "STRING", complete, "sum so far {n0:.4g}, {j} of {c} values", "mean {n0:.4g} / {c} = {n3:.4g}"
        )
        words = b.switch("STRING", weighted, b.switch("STRING", is_max, mean_words, max_words), sum_words)
        equation = format_string(b, words, {**numbers, **counts, "after": ("STRING", after_sum)})
        header = format_string(
            b,
            "{layer} channel {c}, row {r}, column {col}, epoch {e:.1f}",
            {
                "layer": ("STRING", layer_name),
                "c": ("INT", channel),
                "r": ("INT", row),
                "col": ("INT", col),
                "e": ("FLOAT", epochs["Epoch"]),
            },
        )
        # The lines written as text: the header, each channel's sum (several input channels), the equation.
        written = b.int_add(b.switch("INT", single, channel_lines, 0), 2)
        anchors = b.node("GeometryNodeMeshLine", {"Count": written}).outputs[0]
        last = b.compare(b.index(), "==", b.int_subtract(written, 1))
        line = b.switch("INT", last, b.index(), b.int_subtract(panel_lines, 1))
        anchors = marked(b.set_position(anchors, panel_line(line)), line)
        text = b.join_strings(header, "\n", b.switch("STRING", single, channels_text, ""), equation, "\n")

    shown = b.all_of(show, has_numbers)
    b.set_outputs(
        Segments=b.switch("GEOMETRY", shown, None, b.join([tap_numbers, rows])),
        Text=b.switch("STRING", shown, "", text),
        Anchors=b.switch("GEOMETRY", shown, None, anchors),
    )


# A cell's lines as (prefix, the number it shows: n0, n1...): a convolution's value, weight and product; a value.
CONVOLUTION_CELL = ((PREFIX_NONE, 0), (PREFIX_TIMES, 1), (PREFIX_EQUALS, 2))
POOLING_CELL = ((PREFIX_NONE, 0),)
DENSE_CELL = ((PREFIX_SIGN, 0),)
CELL_DECIMALS = 2
# Row lines are numbered after the cells' (at most three lines each): small ids, as Accumulate Field allocates up to the
# largest (an offset of 2**20 cost 14 ms a frame, measured).
ROW_LINES = 3 * MAX_NUMBERED_TAPS


def cell_lines_of(kind):
    """The lines a cell of an inspection of ``kind`` gets (``core/inspection_annotations.py``'s templates)."""
    if kind == DENSE:
        return DENSE_CELL
    return CONVOLUTION_CELL if kind in WEIGHTED_KINDS else POOLING_CELL


def cell_segments(b, points, lines, size):
    """Number Lines' segments of numbers on cells: each of ``points`` (at its cell, with ``annotation_n*``)
    gets ``lines`` (``CONVOLUTION_CELL``...) centred on it, ``size`` high (a field on ``points``)."""
    points = b.store(points, "annotation_size", size)
    copies, copy = _duplicated(b, points, len(lines))
    copies = b.store(b.store(copies, "annotation_line", b.index()), "annotation_slot", copy)
    prefixes = [prefix for prefix, _number in lines]
    values = [b.attribute(f"annotation_n{number}") for _prefix, number in lines]
    line = b.attribute("annotation_slot")  # which line of its cell
    copies = b.store(copies, "annotation_prefix", b.index_switch(line, prefixes, "INT"))
    copies = b.store(copies, "annotation_value", b.index_switch(line, values, "FLOAT"))
    copies = b.store(copies, "annotation_decimals", CELL_DECIMALS)
    up = b.multiply(b.multiply(b.subtract((len(lines) - 1) * 0.5, line), LINE_SPACING), b.attribute("annotation_size"))
    return b.set_position(copies, offset=b.combine_xyz(0.0, 0.0, up))


def _kernel_row_segments(b, taps, kernel_cols, weighted, is_max):
    """The taps (in rank order) as segments of a line per kernel row: "0.65×0.17 + 0.26×0.39 + ..."; for
    pooling the values alone, apart (max) or added (mean). ``annotation_line`` is the row."""
    # Lines numbered after any cell's, which share the same Number Lines.
    taps = b.store(taps, "annotation_line", b.int_add(b.int_divide(b.attribute("tap_rank"), kernel_cols), ROW_LINES))
    copies, part = _duplicated(b, taps, b.switch("INT", weighted, 1, 2))
    copies = b.store(copies, "annotation_slot", part)
    part = b.attribute("annotation_slot")
    starts_row = b.compare(b.int_modulo(b.attribute("tap_rank"), kernel_cols), "==", 0)
    later_row = b.compare(b.attribute("annotation_line"), ">", ROW_LINES)
    value_prefix = b.switch(
        "INT",
        starts_row,
        b.switch("INT", is_max, PREFIX_PLUS, PREFIX_GAP),
        b.switch("INT", b.all_of(later_row, b.logical_not(is_max)), PREFIX_NONE, PREFIX_LEADING_PLUS),
    )
    weight_part = b.compare(part, "==", 1)
    copies = b.store(copies, "annotation_prefix", b.switch("INT", weight_part, value_prefix, PREFIX_TIMES))
    copies = b.store(
        copies,
        "annotation_value",
        b.switch("FLOAT", weight_part, b.attribute("annotation_n0"), b.attribute("annotation_n1")),
    )
    return b.store(b.store(copies, "annotation_decimals", CELL_DECIMALS), "annotation_size", 1.0)


def _to_int(b, value):
    return b.node("FunctionNodeFloatToInt", {"Float": value}).outputs[0]


def _channel_lines(b, window, shown, count, per_channel, channel, column):
    """Each input channel's share of the sum so far, a line each for the first ``MAX_CHANNEL_LINES`` channels the
    first ``count`` taps reach, and one line for the rest. Returns the text and its number of lines."""
    in_channel = b.int_divide(b.attribute("tap_rank"), per_channel)
    share = b.node(
        "GeometryNodeAccumulateField",
        {"Value": b.multiply(b.attribute("annotation_n2"), shown), "Group ID": in_channel},
        data_type="FLOAT",
        domain="POINT",
    ).outputs["Total"]
    reached = b.int_divide(b.int_add(count, b.int_subtract(per_channel, 1)), per_channel)
    listed = b.int_minimum(reached, MAX_CHANNEL_LINES)
    first_input = b.int_multiply(b.int_divide(channel, column("group_outputs")), column("group_inputs"))
    start, end = _repeat(b, listed, {"Text": ("STRING", "")})
    index = start.outputs["Iteration"]
    line = format_string(
        b,
        "from channel {c}: {s:.4g}\n",
        {
            "c": ("INT", b.int_add(first_input, index)),
            "s": ("FLOAT", b.sample_index(window, share, b.int_multiply(index, per_channel))),
        },
    )
    b.link(b.join_strings(start.outputs["Text"], line), end.inputs["Text"])
    rest = b.statistic(
        window, b.multiply(b.attribute("annotation_n2"), shown), b.compare(in_channel, ">=", MAX_CHANNEL_LINES)
    )
    more = b.compare(reached, ">", MAX_CHANNEL_LINES)
    rest_line = format_string(
        b, "{n} more channels: {s:.4g}\n", {"n": ("INT", b.int_subtract(reached, listed)), "s": ("FLOAT", rest["Sum"])}
    )
    text = b.join_strings(end.outputs["Text"], b.switch("STRING", more, "", rest_line))
    return text, b.int_add(listed, more)


# ---------------------------------------------------------------- Inspect's numbers


def _inspection_interface(b):
    """The sockets every inspection group shares, so that a network's node can swap one for another."""
    sockets = {"Cells": b.add_input("Cells", "GEOMETRY"), **_epoch_inputs(b)}
    sockets["Size"] = b.add_input("Size", "FLOAT", 1.0, 0.0)
    _written_outputs(b)
    return sockets


def _build_no_inspection(b):
    """Nothing: what a network draws until a cell is inspected (``build_inspection_tree`` takes its place)."""
    b.tree.description = "Stands in for an inspection's numbers"
    _inspection_interface(b)


def build_inspection_tree(b, data, cell_lines, equation, custom_sample=None):
    """Fill ``b``'s tree with the numbers of one inspection, blended for the Epoch and Sample shown.

    ``data`` is the object whose points are the inspection's texts
    (``scene/inspection.py``): each with ``annotation_cell``, ``annotation_place``
    and its numbers ``inspection_n{k}_e{E}_s{S}``; the last one is the
    equation. ``cell_lines`` are the other texts' lines (``CONVOLUTION_CELL``...),
    written as fields; ``equation`` is ``(template, its lines, (layer index,
    channel) of the map it may stand over)``, the template a format string over
    ``n0, n1...``, ``{epoch}`` and ``{sample}``. ``custom_sample`` is
    ``(slot, label)`` of a picture shown with Show Image: the header names it
    instead of a sample number.
    """
    b.tree.description = "One inspected cell's numbers, for the epoch and sample shown"
    sockets = _inspection_interface(b)
    cells, size = sockets["Cells"], sockets["Size"]
    template, lines, (layer, channel) = equation
    numbers = [f"annotation_n{k}" for k in range(max(_numbers_in([template]), NUMBERS_STORED))]

    with b.frame("Each text's numbers at the epoch and sample shown, blended as the cells are"):
        points = b.object_geometry(data)
        for k, name in enumerate(numbers):

            def value_at(epoch, slot, k=k):
                return b.attribute("inspection_n{number}_e{epoch}_s{slot}", number=str(k), epoch=epoch, slot=slot)

            points = b.store(points, name, _blended(b, sockets, value_at))
        cell = b.attribute("annotation_cell")
        place = b.attribute("annotation_place")
        pitch = b.sample_index(cells, b.attribute("cell_pitch"), cell)
        drawn = b.greater_than(b.sample_index(cells, b.attribute("cell_scale"), cell), 1e-6)
        points = b.set_position(points, b.sample_index(cells, b.position(), cell))
        points = b.store(points, "annotation_item", b.index())

    with b.frame("On each cell its numbers, as fields"):
        on_cells = b.store(b.keep(points, b.compare(place, "==", ON_CELL)), "annotation", ANNOTATION_INSPECT_CELL)
        on_cells = cell_segments(b, on_cells, cell_lines, b.multiply(b.multiply(pitch, _on_cell(b, size)), drawn))

    with b.frame("The equation: above its map, or right of its neuron"):
        last = b.int_subtract(b.point_count(points), 1)

        def at_equation(value):
            return b.sample_index(points, value, last)

        sample = sockets["Sample"]
        shown = format_string(b, "{s:.3g}", {"s": ("FLOAT", sample)})
        if custom_sample is not None:
            slot, label = custom_sample
            shown = b.switch("STRING", b.greater_than(sample, slot - 0.5), shown, str(label))
        items = {name[len("annotation_") :]: ("FLOAT", at_equation(b.attribute(name))) for name in numbers}
        items.update({EPOCH_FIELD: ("FLOAT", sockets["Epoch"]), SAMPLE_FIELD: ("STRING", shown)})
        text = format_string(b, template, items)
        equation_size = b.multiply(b.multiply(at_equation(pitch), EQUATION_SIZE), b.multiply(size, at_equation(drawn)))
        in_map = b.all_of(
            b.compare(b.attribute("layer"), "==", layer),
            b.compare(b.attribute("channel"), "==", channel),
            b.compare(b.attribute("is_summary"), "==", 0),
        )
        extent = b.statistic(cells, b.position(), in_map, "FLOAT_VECTOR")
        middle, top = b.separate_xyz(extent["Mean"]), b.separate_xyz(extent["Max"])
        above = b.combine_xyz(middle["X"], middle["Y"], b.add(top["Z"], b.multiply(at_equation(pitch), EQUATION_GAP)))
        beside = b.vector_add(
            at_equation(b.position()), b.combine_xyz(0.0, b.multiply(at_equation(pitch), -NEURON_EQUATION_OFFSET), 0.0)
        )
        is_above = b.compare(at_equation(place), "==", ABOVE_MAP)
        line = b.node("GeometryNodeMeshLine", {"Count": lines}).outputs[0]
        # Above a map the lines stack upward from the last; beside a neuron they are centred on it.
        below = b.subtract(lines - 1, b.index())
        up = b.switch("FLOAT", is_above, b.subtract((lines - 1) * 0.5, b.index()), b.add(below, 0.5))
        step = b.multiply(equation_size, LINE_SPACING)
        anchors = b.set_position(
            line,
            b.vector_add(b.switch("VECTOR", is_above, beside, above), b.combine_xyz(0.0, 0.0, b.multiply(up, step))),
        )
        anchors = b.store(
            b.store(anchors, "annotation_size", equation_size), "annotation_align", b.logical_not(is_above)
        )
        anchors = b.store(b.store(anchors, "annotation", ANNOTATION_INSPECT_EQUATION), "annotation_item", last)
        anchors = b.store(anchors, "annotation_cell", at_equation(cell))
        for name in numbers[:NUMBERS_STORED]:
            anchors = b.store(anchors, name, at_equation(b.attribute(name)))

    b.set_outputs(Segments=on_cells, Text=b.join_strings(text, "\n"), Anchors=anchors)


def _numbers_in(templates):
    """How many numbers the templates use: one more than the highest ``n{k}`` field."""
    highest = -1
    for template in templates:
        for _text, field, _spec, _conversion in string.Formatter().parse(template):
            if field and field.startswith("n") and field[1:].isdigit():
                highest = max(highest, int(field[1:]))
    return highest + 1
