"""Rendering animations frame by frame: a PNG sequence or an MP4 video, with progress and cancelling.

Frames are rendered one at a time (``bpy.ops.render.render(write_still=True)``
per frame) rather than with Blender's own animation render, so that each frame
can report progress with an estimate of the time left and the caller can stop
between frames. One render call per frame cannot append to one movie file (each
``animation=True`` render starts a new one), so a video is made in two steps:
the frames are rendered to PNGs in a temporary folder, then a temporary scene
with one image strip encodes them through Blender's built-in FFmpeg (MPEG-4
container, H.264). No system ffmpeg is involved.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import bpy

from ..core.errors import BlenderCNNError
from .stage import configure_render

FRAME_PREFIX = "frame_"
VIDEO_NAME = "animation.mp4"

RenderProgress = namedtuple("RenderProgress", "frame done total elapsed remaining path")
RenderProgress.__doc__ = """One rendered frame: ``done`` of ``total`` frames after ``elapsed`` seconds,
``remaining`` the estimated seconds left, ``path`` the PNG just written."""


def render_animation(
    output: str | os.PathLike[str],
    scene: bpy.types.Scene | None = None,
    engine: str = "CYCLES",
    width: int = 1280,
    height: int = 720,
    samples: int = 32,
    frame_start: int | None = None,
    frame_end: int | None = None,
    video: bool = False,
    progress: Callable[[RenderProgress], object] | None = None,
) -> list[str]:
    """Render ``frame_start``..``frame_end`` (the scene's range by default) through the scene's camera.

    ``output`` is a folder (frames ``frame_0001.png``...) or a path prefix
    (``out/net_`` gives ``out/net_0001.png``...); with ``video`` it is the MP4
    file (or a folder for ``animation.mp4``). ``progress(RenderProgress)`` is
    called after each frame; returning False cancels. Returns the paths written:
    the PNG frames, or ``[video]``; after a cancel, the frames written so far
    (none for a video, whose frames were temporary).
    """
    job = AnimationRender(output, scene, engine, width, height, samples, frame_start, frame_end, video)
    job.start()
    try:
        while not job.done:
            report = job.step()
            if progress is not None and progress(report) is False:
                return job.cancel()
        return job.finish()
    except BaseException:
        job.cancel()
        raise


class AnimationRender:
    """A frame-by-frame render in steps: ``start()``, ``step()`` until ``done``, then ``finish()``
    (or ``cancel()``). The modal operator renders one step per timer event. It takes
    every argument of ``render_animation`` but ``progress``, with no defaults."""

    def __init__(
        self,
        output: str | os.PathLike[str],
        scene: bpy.types.Scene | None,
        engine: str,
        width: int,
        height: int,
        samples: int,
        frame_start: int | None,
        frame_end: int | None,
        video: bool,
    ) -> None:
        scene = scene or bpy.context.scene
        assert scene is not None  # the stubs allow a context without a scene
        self.scene = scene
        first = self.scene.frame_start if frame_start is None else int(frame_start)
        last = self.scene.frame_end if frame_end is None else int(frame_end)
        if last < first:
            raise BlenderCNNError("frame range", f"the last frame ({last}) comes before the first ({first})")
        if self.scene.camera is None:
            raise BlenderCNNError(self.scene.name, "has no camera to render from (set up the stage first)")
        if not str(output):
            raise BlenderCNNError("output", "no output path given")
        if engine.upper() not in ("CYCLES", "EEVEE", "BLENDER_EEVEE"):
            raise BlenderCNNError("engine", f"must be cycles or eevee, not {engine!r}")
        if video and (width % 2 or height % 2):
            raise BlenderCNNError("video size", f"H.264 needs an even width and height, not {width}x{height}")
        self.engine, self.width, self.height, self.samples = engine, int(width), int(height), int(samples)
        self.frames = list(range(first, last + 1))
        self.video = bool(video)
        is_folder = str(output).endswith(("/", os.sep))
        output = os.path.abspath(bpy.path.abspath(str(output)))
        self.video_path: str | None
        self._frame_folder: str | None
        self.prefix: str
        if self.video:
            self.video_path = video_path(output, is_folder)
            self._frame_folder = None
        else:
            self.video_path = None
            self.prefix = frame_prefix(output, is_folder)
        self.written: list[str] = []
        self.seconds: list[float] = []
        self._started: float | None = None
        self._saved: tuple[int, str, Any, Any] | None = None  # frame, output path, media type, file format

    @property
    def total(self) -> int:
        return len(self.frames)

    @property
    def done(self) -> bool:
        return len(self.written) >= self.total

    def start(self) -> None:
        scene = self.scene
        render = scene.render
        self._saved = (
            scene.frame_current,
            render.filepath,
            render.image_settings.media_type,
            render.image_settings.file_format,
        )
        if self.video:
            assert self.video_path is not None  # set with video
            os.makedirs(os.path.dirname(self.video_path), exist_ok=True)
            self._frame_folder = tempfile.mkdtemp(prefix="blender_cnn_frames_")
            self.prefix = os.path.join(self._frame_folder, FRAME_PREFIX)
        else:
            os.makedirs(os.path.dirname(self.prefix) or ".", exist_ok=True)
        configure_render(scene, self.engine, self.width, self.height, self.samples)
        render.image_settings.media_type = "IMAGE"
        render.image_settings.file_format = "PNG"
        self._started = time.perf_counter()

    def step(self) -> RenderProgress:
        """Render the next frame; returns its ``RenderProgress``."""
        if self._started is None:
            self.start()
        assert self._started is not None  # start() sets it
        frame = self.frames[len(self.written)]
        path = f"{self.prefix}{frame:04d}.png"
        began = time.perf_counter()
        self.scene.frame_set(frame)
        self.scene.render.filepath = path
        bpy.ops.render.render(write_still=True, scene=self.scene.name)
        if not os.path.exists(path):
            raise BlenderCNNError(path, "was not written by the render (is the folder writable?)")
        self.seconds.append(time.perf_counter() - began)
        self.written.append(path)
        return RenderProgress(
            frame, len(self.written), self.total, time.perf_counter() - self._started, self.remaining(), path
        )

    def remaining(self) -> float:
        """Seconds left, estimated from the frames so far (the first frame, which compiles shaders and
        loads data, only while it is the only one)."""
        left = self.total - len(self.seconds)
        if not self.seconds:
            return float("nan")
        typical = self.seconds[1:] or self.seconds
        return left * sum(typical) / len(typical) + (self._encode_estimate() if self.video else 0.0)

    def _encode_estimate(self) -> float:
        return 0.02 * self.total

    def finish(self) -> list[str]:
        """Encode the video (with ``video``) and put the scene's settings back; returns the paths written."""
        try:
            if self.video:
                assert self.video_path is not None  # set with video
                encode_video(self.written, self.video_path, self.scene)
                return [self.video_path]
            return list(self.written)
        finally:
            self._restore()

    def cancel(self) -> list[str]:
        """Stop: keep the PNG frames written so far (temporary video frames are removed); returns them."""
        self._restore()
        return [] if self.video else list(self.written)

    def _restore(self) -> None:
        if self._saved is not None:
            scene, render = self.scene, self.scene.render
            frame, filepath, media_type, file_format = self._saved
            render.image_settings.media_type = media_type
            render.image_settings.file_format = file_format
            render.filepath = filepath
            scene.frame_set(frame)
            self._saved = None
        if self.video and self._frame_folder:
            shutil.rmtree(self._frame_folder, ignore_errors=True)
            self._frame_folder = None


def frame_prefix(output: str, is_folder: bool = False) -> str:
    """``output`` as the prefix of frame files: a folder gets ``frame_``."""
    if is_folder or os.path.isdir(output):
        return os.path.join(output, FRAME_PREFIX)
    return output


def video_path(output: str, is_folder: bool = False) -> str:
    """``output`` as an MP4 path: a folder gets ``animation.mp4``, a name without extension ``.mp4``."""
    if is_folder or os.path.isdir(output):
        return os.path.join(output, VIDEO_NAME)
    return output if output.lower().endswith((".mp4", ".m4v")) else output + ".mp4"


def encode_video(
    frames: Sequence[str],
    path: str,
    like_scene: bpy.types.Scene | None = None,
    fps: int | None = None,
    *,
    size: tuple[int, int] | None = None,
    fps_base: float | None = None,
) -> str:
    """Encode PNG ``frames`` (in order) into an MP4 (H.264) at ``path`` with Blender's FFmpeg; returns ``path``.

    A temporary scene shows them as one image strip in the sequencer and renders
    it as a movie; its size and frame rate come from ``like_scene``, unless
    ``size`` (width, height) and ``fps`` (with ``fps_base``, default 1) are given.
    The movie is written to a temporary file beside ``path`` and moved there
    once complete, so a failed or interrupted encoding leaves no partial video.
    """
    if not frames:
        raise BlenderCNNError(path, "no frames to encode")
    like_scene = like_scene or bpy.context.scene
    assert like_scene is not None  # the stubs allow a context without a scene
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    # Hidden, beside the video (so the move is a rename), and created by Blender (so it gets the usual permissions).
    partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.partial.mp4")
    scene = bpy.data.scenes.new("BCNN Video Encoding")
    try:
        editor = scene.sequence_editor_create()
        strip = editor.strips.new_image("frames", frames[0], channel=1, frame_start=1)
        assert isinstance(strip, bpy.types.ImageStrip)  # what new_image makes; the stubs say Strip
        for frame in frames[1:]:
            if os.path.dirname(frame) != os.path.dirname(frames[0]):
                raise BlenderCNNError(frame, "frames of one video must be in one folder")
            strip.elements.append(os.path.basename(frame))
        scene.frame_start, scene.frame_end = 1, len(frames)
        render = scene.render
        source = like_scene.render
        render.resolution_x, render.resolution_y = size or (source.resolution_x, source.resolution_y)
        render.resolution_percentage = 100
        render.fps = fps or source.fps
        render.fps_base = (fps_base or 1.0) if fps else source.fps_base
        render.use_sequencer = True
        # The PNGs are already display colors: show them as they are.
        view = scene.view_settings
        assert view is not None  # a scene always has them; the stubs allow None
        # The ignores: bpy's stubs type these enums, whose items come from the color configuration, as "NONE".
        view.view_transform = "Standard"  # type: ignore[assignment]
        view.look = "None"  # type: ignore[assignment]
        settings = render.image_settings
        settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        ffmpeg = render.ffmpeg
        assert ffmpeg is not None  # render settings always have them; the stubs allow None
        ffmpeg.format = "MPEG4"
        ffmpeg.codec = "H264"
        ffmpeg.constant_rate_factor = "HIGH"
        ffmpeg.audio_codec = "NONE"
        render.filepath = partial
        render.use_file_extension = False
        bpy.ops.render.render(animation=True, scene=scene.name)
        if not os.path.exists(partial) or not os.path.getsize(partial):
            raise BlenderCNNError(path, "was not written by Blender's FFmpeg (is the folder writable?)")
        os.replace(partial, path)
    finally:
        bpy.data.scenes.remove(scene)
        if os.path.exists(partial):
            os.remove(partial)
    return path


def format_seconds(seconds: float) -> str:
    """``'1 min 05 s'``, ``'12.3 s'`` or ``'?'``, for progress lines."""
    if seconds != seconds:  # NaN: nothing measured yet
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
