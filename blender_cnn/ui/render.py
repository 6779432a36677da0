"""Render stills, animations and videos of the scene, and add camera moves: thin operators over
``scene.stage``, ``scene.rendering`` and ``scene.camera_moves``.

The animation render runs one frame per timer event in a modal operator, so
Blender's progress bar moves, the status bar shows the time left and Esc
cancels between frames; called without a window (scripts, tests) it renders
every frame at once.
"""

import os
import tempfile
import time

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core.errors import BlenderCNNError
from ..scene import camera_moves
from ..scene.network import is_network, network_bundle
from ..scene.rendering import AnimationRender, RenderProgress, format_seconds
from ..scene.stage import render_still
from ..scene.style import look_render_settings
from .errors import reports_user_errors
from .preferences import ADDON_PACKAGE, ENGINE_ITEMS, cluster_address

MOVE_ITEMS = (
    ("ORBIT", "Orbit", "Circle around the network's centre, looking at it"),
    ("FLY_THROUGH", "Fly-through", "Fly from before the input layer along the network to past the output"),
    ("PUSH_IN", "Push-in", "Move from the view of the whole network to a close view of one layer"),
)
DEFAULTS = {"engine": "CYCLES", "samples": 32, "width": 1280, "height": 720}
TIMER_SECONDS = 0.05


def preference_defaults(context):
    """Engine and samples from the add-on preferences (defaults without them), the render size."""
    defaults = dict(DEFAULTS)
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    preferences = getattr(addon, "preferences", None)
    if preferences is not None:
        defaults.update(engine=preferences.render_engine, samples=preferences.render_samples)
    return defaults


def output_path(path, default_name):
    """An absolute output path: "//" is the .blend's folder (the temporary folder while unsaved)."""
    path = path or "//" + default_name
    if path.startswith("//") and not bpy.data.filepath:
        path = os.path.join(tempfile.gettempdir(), "blender_cnn", path[2:])
    return os.path.abspath(bpy.path.abspath(path))


def scene_network(context):
    """The active object when it is a network, else the scene's first network (None without one)."""
    active = context.active_object
    if is_network(active):
        return active
    return next((obj for obj in context.scene.objects if is_network(obj)), None)


def _output_property(default, description):
    """A render operator's output path ('//' is the .blend's folder)."""
    return StringProperty(name="Output", subtype="FILE_PATH", default=default, description=description)


RENDER_SETTINGS = ("engine", "width", "height", "samples")


def draw_render_settings(layout, operator):
    """The settings block both render dialogs show: engine, size and samples."""
    column = layout.column(align=True)
    for name in RENDER_SETTINGS:
        column.prop(operator, name)


def draw_frame_range(layout, operator):
    """The scene's frame range, or the operator's own (the renders' and the camera moves' dialogs)."""
    layout.prop(operator, "use_scene_range")
    column = layout.column(align=True)
    column.enabled = not operator.use_scene_range
    column.prop(operator, "frame_start")
    column.prop(operator, "frame_end")


class _RenderSettings:
    """What both render operators share: undo, the render's properties, the poll and the dialog."""

    bl_options = {"UNDO"}

    engine: EnumProperty(name="Engine", items=ENGINE_ITEMS, default="CYCLES")
    width: IntProperty(name="Width", default=1280, min=4, max=16384, subtype="PIXEL")
    height: IntProperty(name="Height", default=720, min=4, max=16384, subtype="PIXEL")
    samples: IntProperty(name="Samples", default=32, min=1, max=65536)

    @classmethod
    def poll(cls, context):
        if context.scene is None or context.scene.camera is None:
            cls.poll_message_set("The scene has no camera: import a network with a camera, or add one")
            return False
        return True

    def invoke(self, context, _event):
        defaults = preference_defaults(context)
        # A style's look (print at 300 dpi, glow in Eevee) renders at its own size and with its own engine.
        defaults.update(
            (key, value)
            for key, value in look_render_settings(context.scene).items()
            if key != "engine" or value in {item[0] for item in ENGINE_ITEMS}
        )
        for name in RENDER_SETTINGS:
            if not self.properties.is_property_set(name):
                setattr(self, name, defaults[name])
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, _context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "filepath")
        draw_render_settings(layout, self)
        self.draw_more(layout)

    def draw_more(self, _layout):
        """What a render operator asks beyond the shared settings (the animation: video and frame range)."""


class BCNN_OT_render_still(_RenderSettings, bpy.types.Operator):
    """Render the scene's camera view to a PNG"""

    bl_idname = "bcnn.render_still"
    bl_label = "Render Still"

    filepath: _output_property("//render.png", "The PNG to write ('//' is the .blend's folder)")

    def execute(self, context):
        path = output_path(self.filepath, "render.png")
        if not path.lower().endswith(".png"):
            path += ".png"
        started = time.perf_counter()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            render_still(path, context.scene, self.engine, self.width, self.height, self.samples)
        except (BlenderCNNError, OSError, RuntimeError) as error:
            self.report({"ERROR"}, _one_line(error, path))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Rendered {path} in {format_seconds(time.perf_counter() - started)}")
        return {"FINISHED"}


class BCNN_OT_render_animation(_RenderSettings, bpy.types.Operator):
    """Render the frame range to PNG frames or an MP4 video, frame by frame (Esc cancels)"""

    bl_idname = "bcnn.render_animation"
    bl_label = "Render Animation"

    filepath: _output_property("//render/", "A folder or a file-name prefix for the frames; the MP4 file for a video")
    video: BoolProperty(
        name="Video (MP4)", default=False, description="Encode the frames into one MP4 (H.264) with Blender's FFmpeg"
    )
    use_scene_range: BoolProperty(
        name="Scene Frame Range", default=True, description="Render the scene's frame range, else the range below"
    )
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=250, min=0)

    def draw_more(self, layout):
        layout.prop(self, "video")
        draw_frame_range(layout, self)

    def execute(self, context):
        scene = context.scene
        first, last = (
            (scene.frame_start, scene.frame_end) if self.use_scene_range else (self.frame_start, self.frame_end)
        )
        default_name = "animation.mp4" if self.video else "render/"
        output = self.filepath or "//" + default_name
        keep_folder = output.endswith(("/", os.sep))
        output = output_path(output, default_name) + (os.sep if keep_folder else "")
        address = cluster_address(context)
        try:
            if address:  # the preferences name a Dask cluster: the frames are rendered there (docs/scaling.md)
                cluster_render_of_scene = _cluster_renderer(address)
                self._job = _ClusterSteps(
                    cluster_render_of_scene(
                        scene, address, output, self.engine, self.width, self.height, self.samples, first, last,
                        self.video,
                    )
                )  # fmt: skip
            else:
                self._job = AnimationRender(
                    output, scene, self.engine, self.width, self.height, self.samples, first, last, self.video
                )
            self._job.start()
        except (BlenderCNNError, OSError) as error:
            self.report({"ERROR"}, _one_line(error, output))
            return {"CANCELLED"}
        # A window to show progress in and take Esc from; in the background (scripts, tests) render at once.
        if not bpy.app.background and context.window is not None and not self.is_repeat():
            return self._start_modal(context)
        try:
            while not self._job.done:
                self._job.step()
            paths = self._job.finish()
        except (BlenderCNNError, OSError, RuntimeError) as error:
            self._job.cancel()
            self.report({"ERROR"}, _one_line(error, output))
            return {"CANCELLED"}
        return self._finished(paths)

    def _start_modal(self, context):
        window_manager = context.window_manager
        self._timer = window_manager.event_timer_add(TIMER_SECONDS, window=context.window)
        window_manager.progress_begin(0, self._job.total)
        window_manager.modal_handler_add(self)
        context.workspace.status_text_set(f"Rendering {self._job.total} frames (Esc cancels)")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            written = self._job.cancel()
            self._end_modal(context)
            kept = f"the {len(written)} frames rendered are kept" if written else "nothing was kept"
            self.report({"WARNING"}, f"Render cancelled: {kept}")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            report = self._job.step()
            if self._job.done:
                paths = self._job.finish()
        except (BlenderCNNError, OSError, RuntimeError) as error:
            self._job.cancel()
            self._end_modal(context)
            self.report({"ERROR"}, _one_line(error, self._job.video_path or self._job.prefix))
            return {"CANCELLED"}
        if self._job.done:
            self._end_modal(context)
            return self._finished(paths)
        context.window_manager.progress_update(report.done)
        context.workspace.status_text_set(
            f"Rendered frame {report.frame} ({report.done}/{report.total}), about "
            f"{format_seconds(report.remaining)} left (Esc cancels)"
        )
        return {"RUNNING_MODAL"}

    def cancel(self, context):
        # Blender ends the operator without an event (a file is loaded, Blender quits).
        self._job.cancel()
        self._end_modal(context)

    def _end_modal(self, context):
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        context.workspace.status_text_set(None)

    def _finished(self, paths):
        elapsed = format_seconds(sum(self._job.seconds))
        where = paths[0] if self.video else os.path.dirname(paths[0])
        self.report({"INFO"}, f"Rendered {self._job.total} frames in {elapsed}: {where}")
        return {"FINISHED"}


def _cluster_renderer(address):
    """``scene.cluster_render.cluster_render_of_scene``, or why this Blender cannot render on ``address``."""
    if bpy.app.binary_path and address.strip().startswith("local:"):
        # Local workers would be Blender's bundled Python, which cannot import bpy.
        raise BlenderCNNError(
            address,
            "local workers cannot render from inside Blender (its Python has no bpy module); start a scheduler "
            "and workers with bpy and give its address (docs/scaling.md), or use scripts/render.py --dask local:N",
        )
    try:  # imported only for a cluster: it needs Dask distributed, which Blender's Python need not have
        from ..scene.cluster_render import cluster_render_of_scene
    except ImportError:
        raise BlenderCNNError(
            address, "needs Dask distributed in Blender's Python to render on a cluster (docs/scaling.md)"
        ) from None
    return cluster_render_of_scene


class _ClusterSteps:
    """A ``ClusterRender`` seen as an ``AnimationRender``: each ``step`` gives the newest frame's report (frames
    arrive from several workers at once), ``seconds`` the time since the start."""

    def __init__(self, render):
        self.render = render
        self.total = render.total
        self.video_path, self.prefix = render.video_path, render.prefix
        self._last = None
        self._started = time.perf_counter()

    @property
    def done(self):
        return self.render.done

    @property
    def seconds(self):
        return [time.perf_counter() - self._started]

    def start(self):
        self.render.start()

    def step(self):
        reports = self.render.step()
        self._last = reports[-1] if reports else self._last
        return self._last or RenderProgress(0, 0, self.total, 0.0, float("nan"), "")

    def finish(self):
        return self.render.finish()

    def cancel(self):
        return self.render.cancel()


_layer_items_cache = {}


def _layer_items(_self, context):
    """The layers of the scene's network, for the push-in (cached per bundle: the menu redraws often)."""
    network = scene_network(context) if context is not None else None
    path = network.get("blender_cnn_bundle") if network is not None else None
    if not path:
        return _layer_items_cache.setdefault(None, [("NONE", "No network", "The scene has no network")])
    if path not in _layer_items_cache:
        try:
            layers = network_bundle(network).layers
        except (BlenderCNNError, OSError):
            layers = []
        _layer_items_cache[path] = [(layer.name, layer.name, f"Layer {layer.index}") for layer in layers] or [
            ("NONE", "No layers", "The network's bundle cannot be read")
        ]
    return _layer_items_cache[path]


class BCNN_OT_camera_move(bpy.types.Operator):
    """Keyframe a camera move on the scene's camera: orbit, fly-through or push-in to a layer"""

    bl_idname = "bcnn.camera_move"
    bl_label = "Camera Move"
    bl_options = {"REGISTER", "UNDO"}

    move: EnumProperty(name="Move", items=MOVE_ITEMS, default="ORBIT")
    layer: EnumProperty(name="Layer", items=_layer_items, description="The layer a push-in ends on")
    turns: FloatProperty(
        name="Turns",
        default=1.0,
        soft_min=-3.0,
        soft_max=3.0,
        description="Turns of an orbit (negative: clockwise seen from above)",
    )
    use_scene_range: BoolProperty(
        name="Scene Frame Range",
        default=True,
        description="Move over the scene's frame range, else over the range below",
    )
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=250, min=0)

    @classmethod
    def poll(cls, context):
        if context.scene is None or context.scene.camera is None:
            cls.poll_message_set("The scene has no camera to move")
            return False
        if scene_network(context) is None:
            cls.poll_message_set("The scene has no network to move around")
            return False
        return True

    def draw(self, _context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "move")
        if self.move == "PUSH_IN":
            layout.prop(self, "layer")
        if self.move == "ORBIT":
            layout.prop(self, "turns")
        draw_frame_range(layout, self)

    @reports_user_errors
    def execute(self, context):
        scene = context.scene
        network = scene_network(context)
        first, last = (
            (scene.frame_start, scene.frame_end) if self.use_scene_range else (self.frame_start, self.frame_end)
        )
        if self.move == "ORBIT":
            camera_moves.orbit(network, scene.camera, first, last, turns=self.turns)
        elif self.move == "FLY_THROUGH":
            camera_moves.fly_through(network, scene.camera, first, last)
        else:
            if self.layer == "NONE":
                raise BlenderCNNError(network.name, "has no layers to push in to")
            camera_moves.push_in(network, self.layer, scene.camera, first, last)
        label = dict((item[0], item[1]) for item in MOVE_ITEMS)[self.move]
        target = f" to {self.layer}" if self.move == "PUSH_IN" else ""
        self.report({"INFO"}, f"{label}{target} keyframed on {scene.camera.name}, frames {first}-{last}")
        return {"FINISHED"}


def _one_line(error, where):
    text = " ".join(str(error).split())
    return text if isinstance(error, BlenderCNNError) else f"{where}: {text}"


classes = (BCNN_OT_render_still, BCNN_OT_render_animation, BCNN_OT_camera_move)
register, unregister = bpy.utils.register_classes_factory(classes)
