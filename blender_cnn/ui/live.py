"""Watch Run: follow a training that runs in its own process (``scripts/train.py --live``, or Keras' ``fit`` with
``extract.live.LiveRun``) and show each epoch as it finishes.

A window timer looks at the run folder a few times a second; a look reads one
small JSON file (``core/live.py``) and returns, so Blender stays responsive.
Only when the training has written a newer bundle does the look rebuild the
network (``scene.live.update_from_run``), once per epoch. The training's own
process computes the bundle, so Blender needs no TensorFlow.
"""

import os

import bpy
from bpy.props import BoolProperty, StringProperty

from ..core.errors import BlenderCNNError
from ..scene.live import LIVE_RUN_PROPERTY, UPDATED, update_from_run
from . import preferences
from .errors import reports_user_errors
from .jobs import running_jobs

POLL_SECONDS = 0.5
LABEL = "Watch Run"


class Watch:
    """One watched run, listed with the running jobs so the sidebar shows what it shows (``status_text``)."""

    label = LABEL

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.status_text = f"Watching {os.path.basename(run_dir)}: waiting for the first epoch (Esc stops)"
        self.stop = False  # set by a script to end the watch at the next look


def watches():
    """The runs watched now."""
    return [job for job in running_jobs if isinstance(job, Watch)]


class BCNN_OT_watch_run(bpy.types.Operator):
    """Watch a training that runs elsewhere (scripts/train.py --live, or Keras' fit with LiveRun): the network \
of its run folder is rebuilt as each epoch finishes, keeping your settings; Epoch moves to the newest epoch \
unless it is keyed. Esc stops watching"""

    bl_idname = "bcnn.watch_run"
    bl_label = "Watch Run"
    bl_options = {"REGISTER"}

    directory: StringProperty(name="Run Folder", subtype="DIR_PATH", options={"SKIP_SAVE"})
    # The browser shows folders and the status file, so a live run folder is recognisable by its live.json.
    filter_folder: BoolProperty(default=True, options={"HIDDEN"})
    filter_glob: StringProperty(default="live.json", options={"HIDDEN"})
    frame_camera: BoolProperty(
        name="Set Up Camera",
        default=True,
        description="Add a camera, light and dark world that frame the network when it is first built",
    )

    def invoke(self, context, event):
        if not self.directory:
            active = context.active_object
            if active is not None and active.get(LIVE_RUN_PROPERTY):
                self.directory = active[LIVE_RUN_PROPERTY] + os.sep
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    @reports_user_errors
    def execute(self, context):
        if not self.directory:
            raise BlenderCNNError("Watch Run", "pick the run folder the training writes into")
        run_dir = os.path.abspath(bpy.path.abspath(self.directory))
        if any(watch.run_dir == run_dir for watch in watches()):
            raise BlenderCNNError(run_dir, "is watched already")
        self._watch = Watch(run_dir)
        self._timer = None
        self._reported = None
        finished = self._look(context)
        if finished is not None:
            return finished
        if context.window is None:  # a script: no window timer; its own loop calls scene.live.update_from_run
            return {"FINISHED"}
        self._timer = context.window_manager.event_timer_add(POLL_SECONDS, window=context.window)
        context.window_manager.modal_handler_add(self)
        running_jobs.append(self._watch)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if self._watch.stop or (event.type == "ESC" and event.value == "PRESS"):
            self._end(context)
            self.report({"INFO"}, f"Stopped watching {self._watch.run_dir}")
            return {"CANCELLED"}
        # Other operators' timers tick here too; a look costs a millisecond at most, so each is one.
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        finished = self._look(context)
        if finished is not None:
            self._end(context)
            return finished
        return {"PASS_THROUGH"}

    def cancel(self, context):
        # Blender ends the operator without an event (a file is loaded, Blender quits).
        self._end(context)

    def _look(self, context):
        """One look at the run; the operator's result once the training has finished and is shown, else None."""
        try:
            update = update_from_run(
                self._watch.run_dir,
                context.scene,
                context.view_layer,
                preferences.memory_budget(context),
                self.frame_camera,
            )
        except BlenderCNNError as error:
            # A training's files come and go (a bundle replaced, a folder not made yet): look again, say it once.
            if str(error) != self._reported:
                self._reported = str(error)
                self.report({"WARNING"}, str(error))
            return None
        status = update.status
        if status is None:
            return None
        self._watch.status_text = f"Watching {update.network.name}: {status.describe()} (Esc stops)"
        if update.state == UPDATED:
            self.report({"INFO"}, f"{update.network.name}: {status.describe()} ({update.seconds:.2f} s to build)")
            self._redraw_sidebars(context)
        if status.finished:
            self.report({"INFO"}, f"{update.network.name}: training finished at epoch {status.newest}")
            return {"FINISHED"}
        return None

    def _end(self, context):
        if self._watch in running_jobs:  # the timer is added with it
            context.window_manager.event_timer_remove(self._timer)
            running_jobs.remove(self._watch)

    @staticmethod
    def _redraw_sidebars(context):
        screen = getattr(context, "screen", None)
        for area in screen.areas if screen is not None else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()


classes = (BCNN_OT_watch_run,)
register, unregister = bpy.utils.register_classes_factory(classes)
