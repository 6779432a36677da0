"""Operators that keyframe a network's training, its input samples and a convolution's sweep."""

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..scene.animation import animate_samples, animate_sweep, animate_training, sweepable_layers
from ..scene.network import get_network_input
from .errors import reports_user_errors
from .polls import OnActiveNetwork


class BCNN_OT_animate_training(OnActiveNetwork, bpy.types.Operator):
    """Keyframe the network's Epoch from the first epoch to the last, with a marker per epoch"""

    bl_idname = "bcnn.animate_training"
    bl_label = "Animate Training"
    bl_options = {"REGISTER", "UNDO"}

    frames_per_epoch: IntProperty(
        name="Frames per Epoch", default=24, min=1, description="Frames the move from one epoch to the next takes"
    )
    hold_frames: IntProperty(name="Hold", default=12, min=0, description="Frames each epoch stays still")
    easing: EnumProperty(
        name="Motion",
        default="EASE",
        items=(
            ("EASE", "Eased", "Slow out of each epoch and into the next"),
            ("LINEAR", "Linear", "Constant speed between epochs"),
        ),
    )
    start_frame: IntProperty(name="Start Frame", default=1)

    @reports_user_errors
    def execute(self, context):
        first, last = animate_training(
            context.active_object, self.frames_per_epoch, self.hold_frames, self.easing, self.start_frame, context.scene
        )
        self.report({"INFO"}, f"Training animated over frames {first} to {last}")
        return {"FINISHED"}


class BCNN_OT_animate_samples(OnActiveNetwork, bpy.types.Operator):
    """Keyframe which input sample the network shows: cuts or cross-fades between them"""

    bl_idname = "bcnn.animate_samples"
    bl_label = "Animate Samples"
    bl_options = {"REGISTER", "UNDO"}

    samples: StringProperty(name="Samples", default="0, 1, 2", description="Sample numbers in order, comma-separated")
    frames_per_sample: IntProperty(name="Frames per Sample", default=48, min=1)
    fade_frames: IntProperty(name="Cross-Fade", default=12, min=0, description="0 cuts from one sample to the next")
    start_frame: IntProperty(name="Start Frame", default=1)

    @reports_user_errors
    def execute(self, context):
        try:
            samples = [int(part) for part in self.samples.replace(",", " ").split()]
        except ValueError:
            self.report({"ERROR"}, f"Samples must be whole numbers separated by commas, got {self.samples!r}")
            return {"CANCELLED"}
        last = animate_samples(
            context.active_object, samples, self.frames_per_sample, self.fade_frames, self.start_frame
        )
        self.report({"INFO"}, f"Samples {samples} animated up to frame {last}")
        return {"FINISHED"}


# Blender keeps no reference to a dynamic enum's strings: they must outlive the callback.
_layer_items: list[tuple[str, str, str]] = []


def _sweepable_items(_self, context):
    network = context.active_object if context is not None else None
    try:
        layers = sweepable_layers(network) if network is not None else []
    except Exception:  # not a network, or its bundle is gone: nothing to choose
        layers = []
    _layer_items[:] = [(name, name, f"Sweep the window of {name} across its map") for _index, name in layers]
    return _layer_items or [("", "(no convolution or pooling)", "")]


class BCNN_OT_animate_sweep(OnActiveNetwork, bpy.types.Operator):
    """Keyframe the focus window sweeping across a convolution's (or pooling's) map while the map fills in,
    with the window's products and their sum"""

    bl_idname = "bcnn.animate_sweep"
    bl_label = "Animate Sweep"
    bl_options = {"REGISTER", "UNDO"}

    layer: EnumProperty(name="Layer", items=_sweepable_items, description="The convolution or pooling swept")
    channel: IntProperty(name="Channel", default=0, min=0, description="The output map that fills in")
    frames: IntProperty(name="Frames", default=96, min=2, description="Frames from the first pixel to the last")
    start_frame: IntProperty(name="Start Frame", default=1)
    taps: BoolProperty(
        name="Tap by Tap",
        default=False,
        description="Add each window's products one at a time (a running sum); for slow sweeps of small maps",
    )

    def focus_defaults(self, network):
        """Unless given, sweep the layer and channel in focus (when a sweep can run across it)."""
        focus = int(get_network_input(network, "Focus Layer"))
        chosen = [name for index, name in sweepable_layers(network) if index == focus]
        if chosen and not self.properties.is_property_set("layer"):
            self.layer = chosen[0]
            if not self.properties.is_property_set("channel"):
                self.channel = int(get_network_input(network, "Focus Channel"))

    @reports_user_errors
    def execute(self, context):
        self.focus_defaults(context.active_object)
        first, last = animate_sweep(
            context.active_object, self.layer, self.channel, self.start_frame, self.frames, self.taps, context.scene
        )
        self.report({"INFO"}, f"Sweep of {self.layer} animated over frames {first} to {last}")
        return {"FINISHED"}


classes = (BCNN_OT_animate_training, BCNN_OT_animate_samples, BCNN_OT_animate_sweep)
register, unregister = bpy.utils.register_classes_factory(classes)
