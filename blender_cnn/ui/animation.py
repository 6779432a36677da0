"""Operators that keyframe a network's training and input samples."""

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..scene.animation import animate_samples, animate_training
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


classes = (BCNN_OT_animate_training, BCNN_OT_animate_samples)
register, unregister = bpy.utils.register_classes_factory(classes)
