"""Epoch and sample as Geometry Nodes inputs: pick and blend the stored per-epoch values.

``core/timeline.py`` names the attributes (``activation_e{E}_s{S}``, ...). The
Epoch input is an epoch *number*, keyframable, fractional between epochs;
the history points (one per epoch, attribute ``epoch``) turn it into the two
neighbouring positions on the epoch axis and a blend factor. Attribute names
are joined from strings in the tree, so the blend runs without Python:
``blender -b scene.blend -a`` renders the training on any machine.
"""

from ..core.timeline import HISTORY_METRICS
from .builder import ensure_group
from .groups import text_mesh

EPOCH_POSITION = "BCNN Epoch Position"
TRAINED_CELLS = "BCNN Trained Cells"
TRAINED_WEIGHTS = "BCNN Trained Weights"
TRAINING_OVERLAY = "BCNN Training Overlay"
IMPORTANCE = "BCNN Importance"
# Point attribute (1) on the overlay's text, which moves with the camera rather than with the network.
SCREEN_OVERLAY = "screen_overlay"

# The overlay sits this far in front of the camera, scaled for the stage camera's lens and 36 mm sensor.
OVERLAY_DISTANCE = 10.0
STAGE_LENS = 85.0
SENSOR_WIDTH = 36.0


def ensure_epoch_position():
    return ensure_group(EPOCH_POSITION, 1, _build_epoch_position)


def ensure_trained_cells():
    return ensure_group(TRAINED_CELLS, 1, _build_trained_cells)


def ensure_trained_weights(domain):
    """The weight blend for curves (``CURVE``) or kernel points (``POINT``)."""
    return ensure_group(f"{TRAINED_WEIGHTS} ({domain.title()})", 1, lambda b: _build_trained_weights(b, domain))


def ensure_importance(from_table):
    """``importance`` and ``importance_class`` of the epoch and class shown: looked up in the importance table
    by ``importance_row`` (cells, ``from_table``) or read from the geometry's own attributes (connection curves)."""
    kind = "Table" if from_table else "Own"
    return ensure_group(f"{IMPORTANCE} ({kind})", 1, lambda b: _build_importance(b, from_table))


def ensure_training_overlay():
    return ensure_group(TRAINING_OVERLAY, 3, _build_training_overlay)


def joined_string(b, *parts):
    """One string from strings and integers: attribute names such as ``activation_e3_s0``."""
    join = b.node("GeometryNodeStringJoin")
    # Links into a multi-input socket sort newest first: link the last part first.
    for part in reversed(parts):
        if isinstance(part, str):
            part = b.node("FunctionNodeInputString", string=part).outputs[0]
        elif part.type in {"INT", "VALUE"}:
            part = b.node("FunctionNodeValueToString", {"Value": part}).outputs[0]
        b.link(part, join.inputs["Strings"])
    return join.outputs[0]


def _named(b, name, data_type="FLOAT"):
    return b.node("GeometryNodeInputNamedAttribute", {"Name": name}, data_type=data_type).outputs["Attribute"]


def _mix(b, factor, a, c):
    return b.node("ShaderNodeMix", {"Factor": factor, "A": a, "B": c}, data_type="FLOAT").outputs["Result"]


def _build_epoch_position(b):
    """Epoch number -> the positions of the epochs before and after it, and how far between them it is."""
    b.tree.description = "Turns an epoch number into two neighbouring epochs and a blend factor"
    history = b.add_input("History", "GEOMETRY")
    epoch = b.add_input("Epoch", "FLOAT", 0.0)
    for name in ("Low", "High"):
        b.add_output(name, "INT")
    b.add_output("Factor", "FLOAT")

    number = _named(b, "epoch")
    reached = b.node("GeometryNodeAttributeStatistic", {
        "Geometry": history, "Attribute": b.math("LESS_THAN", number, b.math("ADD", epoch, 1e-4))},
        data_type="FLOAT", domain="POINT").outputs["Sum"]
    count = b.node("GeometryNodeAttributeDomainSize", {"Geometry": history}, component="MESH").outputs["Point Count"]
    last = b.int_math("SUBTRACT", count, 1)
    low = b.int_math("MAXIMUM", b.int_math("SUBTRACT", reached, 1), 0)
    high = b.int_math("MINIMUM", b.int_math("ADD", low, 1), last)

    def number_at(index):
        return b.node("GeometryNodeSampleIndex", {"Geometry": history, "Value": number, "Index": index},
                      data_type="FLOAT", domain="POINT").outputs[0]

    low_number, high_number = number_at(low), number_at(high)
    span = b.math("MAXIMUM", b.math("SUBTRACT", high_number, low_number), 1e-6)
    factor = b.math("MINIMUM", b.math("MAXIMUM", b.math("DIVIDE", b.math("SUBTRACT", epoch, low_number), span), 0.0),
                    1.0)
    b.set_outputs(Low=low, High=high, Factor=factor)


def _sample_slots(b, sample):
    """(low slot, high slot, factor) of a fractional Sample input: cross-fading between two samples."""
    low = b.math("FLOOR", b.math("MAXIMUM", sample, 0.0))
    return low, b.math("CEIL", b.math("MAXIMUM", sample, 0.0)), b.math("SUBTRACT", b.math("MAXIMUM", sample, 0.0), low)


def _build_trained_cells(b):
    """``activation`` blended between epochs and samples, and the pooling winners of the nearest ones."""
    b.tree.description = "Picks the cells' activations of the epoch and sample shown"
    cells = b.add_input("Cells", "GEOMETRY")
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    sample = b.add_input("Sample", "FLOAT", 0.0)
    b.add_output("Cells", "GEOMETRY")

    first_slot, second_slot, sample_factor = _sample_slots(b, sample)

    def activation(epoch, slot):
        return _named(b, joined_string(b, "activation_e", epoch, "_s", slot))

    value = _mix(b, sample_factor,
                 _mix(b, factor, activation(low, first_slot), activation(high, first_slot)),
                 _mix(b, factor, activation(low, second_slot), activation(high, second_slot)))
    nearest_epoch = b.node("GeometryNodeSwitch", {"Switch": b.math("GREATER_THAN", factor, 0.5), "False": low,
                                                  "True": high}, input_type="INT").outputs[0]
    nearest_slot = b.math("ROUND", b.math("MAXIMUM", sample, 0.0))
    winner = _named(b, joined_string(b, "winner_cell_e", nearest_epoch, "_s", nearest_slot), "INT")
    stored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": cells, "Name": "activation", "Value": value},
                    data_type="FLOAT", domain="POINT").outputs[0]
    stored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": stored, "Name": "winner_cell", "Value": winner},
                    data_type="INT", domain="POINT").outputs[0]
    b.set_outputs(Cells=stored)


def _build_trained_weights(b, domain):
    """``weight`` blended between the weights of two epochs."""
    b.tree.description = "Picks the weights of the epoch shown"
    geometry = b.add_input("Geometry", "GEOMETRY")
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    b.add_output("Geometry", "GEOMETRY")
    value = _mix(b, factor, _named(b, joined_string(b, "weight_e", low)), _named(b, joined_string(b, "weight_e", high)))
    b.set_outputs(Geometry=b.node("GeometryNodeStoreNamedAttribute", {
        "Geometry": geometry, "Name": "weight", "Value": value}, data_type="FLOAT", domain=domain).outputs[0])


def _build_training_overlay(b):
    """Epoch, loss and accuracy as text in the top left of the active camera's view, blended between epochs."""
    b.tree.description = "Epoch, loss and accuracy in front of the camera"
    history = b.add_input("History", "GEOMETRY")
    epoch = b.add_input("Epoch", "FLOAT", 0.0)
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    size = b.add_input("Size", "FLOAT", 0.02, 0.0, description="Text height as a share of the frame's width")
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    def metric(name):
        def at(index):
            return b.node("GeometryNodeSampleIndex", {"Geometry": history, "Value": _named(b, name), "Index": index},
                          data_type="FLOAT", domain="POINT").outputs[0]
        return _mix(b, factor, at(low), at(high))

    def written(value, decimals):
        return b.node("FunctionNodeValueToString", {"Value": value, "Decimals": decimals}).outputs[0]

    parts = ["epoch ", written(epoch, 1)]
    for name, label in zip(HISTORY_METRICS, ("loss", "accuracy", "val. loss", "val. accuracy")):
        value = metric(name)
        shown = written(b.math("MULTIPLY", value, 100.0), 1) if "accuracy" in name else written(value, 3)
        text = joined_string(b, f"   {label} ", shown, "%" if "accuracy" in name else "")
        # A metric the bundle lacks (or NaN for an epoch) is left out, not shown as 0 or nan.
        known = b.node("FunctionNodeCompare", {"A": value, "B": value}, data_type="FLOAT", operation="EQUAL")
        has_column = b.node("GeometryNodeAttributeStatistic", {"Geometry": history, "Attribute": b.node(
            "GeometryNodeInputNamedAttribute", {"Name": name}, data_type="FLOAT").outputs["Exists"]},
            data_type="FLOAT", domain="POINT").outputs["Max"]
        show = b.node("FunctionNodeBooleanMath", {0: known.outputs[0], 1: b.math("GREATER_THAN", has_column, 0.5)},
                      operation="AND").outputs[0]
        parts.append(b.node("GeometryNodeSwitch", {"Switch": show, "False": "", "True": text},
                            input_type="STRING").outputs[0])
    line = joined_string(b, *parts)

    camera = b.node("GeometryNodeInputActiveCamera").outputs[0]
    placement = b.node("GeometryNodeObjectInfo", {"Object": camera}, transform_space="RELATIVE")
    frame_width = OVERLAY_DISTANCE * SENSOR_WIDTH / STAGE_LENS
    height = b.math("MULTIPLY", size, frame_width)
    # Camera space: X right, Y up, looking down -Z; the top-left corner of a 16:9 frame, inset a little.
    corner = (-0.46 * frame_width, 0.24 * frame_width, -OVERLAY_DISTANCE)
    text = text_mesh(b, line, height, "Left", "Top", (0.0, 0.0, 0.0), material, facing=(0.0, 0.0, 0.0))
    in_view = b.node("GeometryNodeTransform", {"Geometry": text, "Translation": corner})
    placed = b.node("GeometryNodeTransform", {"Geometry": in_view.outputs[0],
                                              "Translation": placement.outputs["Location"],
                                              "Rotation": placement.outputs["Rotation"]})
    # Marked so that framing the network leaves out text that sits at the camera.
    marked = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": placed.outputs[0], "Name": SCREEN_OVERLAY,
                                                        "Value": 1}, data_type="INT", domain="POINT")
    b.set_outputs(Mesh=marked.outputs[0])



def _build_importance(b, from_table):
    """Importance blended between epochs, for one class or (Class -1) all classes with the class each matters most for.

    Names as ``core/importance_timeline.py`` writes them: ``importance_e{E}_c{k}``,
    ``importance_e{E}_all`` and ``importance_top_e{E}``.
    """
    b.tree.description = "Picks the importance of the epoch and class shown"
    geometry = b.add_input("Geometry", "GEOMETRY")
    table = b.add_input("Table", "GEOMETRY") if from_table else None
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    chosen = b.add_input("Class", "INT", -1, -1, description="Class shown; -1: all classes, each in its own color")
    b.add_output("Geometry", "GEOMETRY")
    domain = "POINT" if from_table else "CURVE"

    def read(name, data_type="FLOAT"):
        value = _named(b, name, data_type)
        if not from_table:
            return value
        return b.node("GeometryNodeSampleIndex", {"Geometry": table, "Value": value,
                                                  "Index": _named(b, "importance_row", "INT")},
                      data_type=data_type, domain="POINT").outputs[0]

    every_class = b.compare_int(chosen, 0, "LESS_THAN")

    def at(epoch):
        name = b.node("GeometryNodeSwitch", {"Switch": every_class,
                                             "False": joined_string(b, "importance_e", epoch, "_c", chosen),
                                             "True": joined_string(b, "importance_e", epoch, "_all")},
                      input_type="STRING").outputs[0]
        return read(name)

    nearest_epoch = b.node("GeometryNodeSwitch", {"Switch": b.math("GREATER_THAN", factor, 0.5), "False": low,
                                                  "True": high}, input_type="INT").outputs[0]
    top = read(joined_string(b, "importance_top_e", nearest_epoch), "INT")
    shown_class = b.node("GeometryNodeSwitch", {"Switch": every_class, "False": chosen, "True": top},
                         input_type="INT").outputs[0]
    stored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": geometry, "Name": "importance",
                                                        "Value": _mix(b, factor, at(low), at(high))},
                    data_type="FLOAT", domain=domain).outputs[0]
    stored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": stored, "Name": "importance_class",
                                                        "Value": shown_class}, data_type="INT", domain=domain).outputs[0]
    b.set_outputs(Geometry=stored)
