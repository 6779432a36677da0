"""Long work under an operator: a ``core.jobs`` job (TensorFlow's work, a design's forward pass) shown with
Blender's progress bar and Esc to cancel in the UI, and waited for in scripts.

The checkpoint import and the designer's Build Scene, Export and Train use it.
"""

from bpy.props import BoolProperty

from ..core import jobs

POLL_SECONDS = 0.25
# Work that ends this quickly is finished at once, without a modal loop (a small design's bundle).
QUICK_SECONDS = 0.2
# The jobs running under a modal operator now, for panels that show their progress.
running_jobs = []


class BackgroundJob:
    """Runs a ``core.jobs`` job for an operator: from the UI as a modal loop with Blender's progress bar, the
    job's status text and Esc to cancel; from a script (or a redo) by waiting for it.

    The operator calls ``run_job(context, job)`` from ``execute`` and defines
    ``job_finished(context)``, which does what the finished job was for (build
    the scene, report) and returns the operator's result. Scene changes happen
    only there, so cancelling or failing leaves the scene as it was.
    """

    # Set by invoke: a user in the UI gets a background job, a script gets a synchronous call.
    run_in_background: BoolProperty(options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        self.run_in_background = True
        return self.execute(context)

    def run_job(self, context, job):
        self._job = job
        if (
            self.run_in_background
            and not self.is_repeat()
            and context.window is not None
            and job.poll_until(QUICK_SECONDS) == jobs.RUNNING
        ):
            return self._start_modal(context)
        try:
            job.poll_until()
        finally:
            job.cancel()  # a no-op unless something interrupted the wait
        return self._job_ended(context)

    def _start_modal(self, context):
        window_manager = context.window_manager
        self._timer = window_manager.event_timer_add(POLL_SECONDS, window=context.window)
        window_manager.progress_begin(0, self._job.progress_total or 1)
        window_manager.modal_handler_add(self)
        running_jobs.append(self._job)
        self._show_status(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
            self._end_modal(context)
            return self._job_ended(context)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._job.poll() == jobs.RUNNING:
            self._show_status(context)
            return {"PASS_THROUGH"}
        self._end_modal(context)
        return self._job_ended(context)

    def cancel(self, context):
        # Blender ends the operator without an event (a file is loaded, Blender quits).
        self._job.cancel()
        self._end_modal(context)

    def _show_status(self, context):
        if self._job.progress_total:
            context.window_manager.progress_update(min(self._job.progress_done, self._job.progress_total))
        context.workspace.status_text_set(self._job.status_text)
        # The designer's sidebar shows running jobs; the 3D views are left alone, a redraw of a big scene is slow.
        screen = getattr(context, "screen", None)
        for area in screen.areas if screen is not None else ():
            if area.type == "NODE_EDITOR":
                area.tag_redraw()

    def _end_modal(self, context):
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        context.workspace.status_text_set(None)
        if self._job in running_jobs:
            running_jobs.remove(self._job)

    def _job_ended(self, context):
        if self._job.state == jobs.FAILED:
            self.report({"ERROR"}, self._job.error)
            return {"CANCELLED"}
        if self._job.state == jobs.CANCELLED:
            self.report({"WARNING"}, f"{self.bl_label} cancelled; the scene is unchanged")
            return {"CANCELLED"}
        return self.job_finished(context)
