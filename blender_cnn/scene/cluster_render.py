"""Rendering an animation's frames on a Dask cluster (docs/scaling.md): this machine's, or one a scheduler runs.

The scene travels as a saved .blend, which renders without the add-on
(``save_blend_for_cluster``). The frame range is split into chunks, one task
each (``scene/cluster_frames.py``'s ``render_chunk``, sent to the workers by
value: they need bpy and distributed, nothing of blender_cnn). The .blend goes
to every worker once (scattered), or is read from a folder all of them share
at the same path (``shared_dir``).

Each worker reports each frame as it finishes it, so progress arrives per
frame; the PNGs come back with their chunk and are written here, in frame
order, under the names ``render_animation`` gives them. A video is encoded
here with Blender's FFmpeg, and appears at its path only when complete. A
worker lost mid-chunk costs that chunk: Dask runs it again elsewhere. Cycles
renders the same pixels in any process (the seed is the scene's), so the
result does not depend on which worker rendered which frame.

``ClusterRender`` works in steps, like ``rendering.AnimationRender``, for a
modal operator; ``render_on_cluster`` runs it to the end.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bpy

from ..core import cluster
from ..core.errors import BlenderCNNError, first_line
from . import cluster_frames
from .rendering import FRAME_PREFIX, RenderProgress, encode_video, frame_prefix, video_path
from .stage import configure_render

if TYPE_CHECKING:
    from distributed import Client

# Enough chunks to keep every worker busy to the end, small enough that a lost worker costs little.
CHUNKS_PER_WORKER = 3
STEP_SECONDS = 0.2
BLEND_PREFIX = "blender_cnn_render_"


def render_on_cluster(
    address: str | Client,
    blend_path: str | os.PathLike[str],
    frame_start: int,
    frame_end: int,
    output: str | os.PathLike[str],
    video: bool = False,
    progress: Callable[[RenderProgress], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
    shared_dir: str | os.PathLike[str] | None = None,
    chunk_frames: int | None = None,
) -> list[str]:
    """Render ``frame_start``..``frame_end`` of the saved ``blend_path`` on the cluster at ``address``.

    ``address`` is ``local:N``, a scheduler's address (``tcp://host:8786``) or
    a connected ``distributed.Client``. ``output`` is what ``render_animation``
    takes: a folder or a path prefix for PNG frames, or with ``video`` the MP4
    file (or a folder for ``animation.mp4``). The .blend travels to the
    workers, or with ``shared_dir`` (a folder every worker sees at the same
    path) is read from there. ``chunk_frames`` frames make one task (by
    default enough chunks for three per worker).

    ``progress(RenderProgress)`` is called as each frame is rendered (its
    ``path`` is where the frame is written once its chunk is back); returning
    False cancels, and so does ``should_stop()`` returning True. Returns the
    paths written: the PNG frames, or ``[video]``; after a cancel, the frames
    written so far (none for a video). Ctrl-C (KeyboardInterrupt) or an error
    also stops the cluster's tasks, and leaves no partial file behind.
    """
    job = ClusterRender(address, blend_path, frame_start, frame_end, output, video, shared_dir, chunk_frames)
    job.start()
    try:
        while not job.done:
            if should_stop is not None and should_stop():
                return job.cancel()
            for report in job.step():
                if progress is not None and progress(report) is False:
                    return job.cancel()
        return job.finish()
    except BaseException:
        job.cancel()
        raise


def save_blend_for_cluster(directory: str | os.PathLike[str]) -> str:
    """Save a copy of the open file (compressed) into ``directory`` for the workers; returns its path.

    The open file keeps its own path. Give the scene its render settings and
    camera moves first: the workers render what the file holds.
    """
    path = os.path.join(os.path.abspath(directory), f"{BLEND_PREFIX}{uuid.uuid4().hex}.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, compress=True)
    return path


def cluster_render_of_scene(
    scene: bpy.types.Scene,
    address: str,
    output: str | os.PathLike[str],
    engine: str,
    width: int,
    height: int,
    samples: int,
    frame_start: int,
    frame_end: int,
    video: bool,
) -> ClusterRender:
    """A ``ClusterRender`` of the open file's ``scene`` as Render Animation shows it: the render settings set as
    for a render here, then the file saved for the workers (not started; ``step()`` starts it)."""
    if scene.camera is None:
        raise BlenderCNNError(scene.name, "has no camera to render from (set up the stage first)")
    if video and (width % 2 or height % 2):
        raise BlenderCNNError("video size", f"H.264 needs an even width and height, not {width}x{height}")
    configure_render(scene, engine, width, height, samples)
    blend = save_blend_for_cluster(tempfile.gettempdir())
    try:
        render = ClusterRender(address, blend, frame_start, frame_end, bpy.path.abspath(str(output)), video)
    except BlenderCNNError:
        os.remove(blend)
        raise
    render.owns_blend = True
    return render


def chunks_of(frames: list[int], chunk_frames: int) -> list[list[int]]:
    """``frames`` in consecutive chunks of ``chunk_frames`` (the last may be shorter)."""
    return [frames[index : index + chunk_frames] for index in range(0, len(frames), chunk_frames)]


def default_chunk_frames(frame_count: int, workers: int) -> int:
    """Frames per chunk: ``CHUNKS_PER_WORKER`` chunks for each worker, at least one frame."""
    return max(1, math.ceil(frame_count / (max(1, workers) * CHUNKS_PER_WORKER)))


class _SentByValue:
    """A function that reaches the workers by value, so they need not import its module.

    distributed pickles a task graph with plain pickle, which names a function
    by its module whatever ``cloudpickle.register_pickle_by_value`` says; this
    wrapper pickles as the function's cloudpickled bytes, and unpickles as the
    function itself.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.__name__ = function.__name__

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        import cloudpickle  # type: ignore[import-untyped]  # comes with distributed; ships no type hints

        cloudpickle.register_pickle_by_value(cluster_frames)
        return cloudpickle.loads, (cloudpickle.dumps(self.function),)


class ClusterRender:
    """A render on a cluster in steps: ``start()``, ``step()`` until ``done``, then ``finish()`` (or
    ``cancel()``). It takes every argument of ``render_on_cluster`` but ``progress`` and ``should_stop``."""

    def __init__(
        self,
        address: str | Client,
        blend_path: str | os.PathLike[str],
        frame_start: int,
        frame_end: int,
        output: str | os.PathLike[str],
        video: bool = False,
        shared_dir: str | os.PathLike[str] | None = None,
        chunk_frames: int | None = None,
    ) -> None:
        first, last = int(frame_start), int(frame_end)
        if last < first:
            raise BlenderCNNError("frame range", f"the last frame ({last}) comes before the first ({first})")
        if isinstance(address, str):
            cluster.local_worker_count(address)  # a malformed address fails here, before anything is made
        self.blend_path = os.path.abspath(blend_path)
        if not os.path.isfile(self.blend_path):
            raise BlenderCNNError(self.blend_path, "no such .blend to render")
        self.shared_dir = os.path.abspath(shared_dir) if shared_dir is not None else None
        if self.shared_dir is not None and not os.path.isdir(self.shared_dir):
            raise BlenderCNNError(
                self.shared_dir, "is not a folder (the shared folder the workers read the .blend from)"
            )
        if chunk_frames is not None and chunk_frames < 1:
            raise BlenderCNNError("chunk size", f"a chunk needs at least one frame, not {chunk_frames}")
        if not str(output):
            raise BlenderCNNError("output", "no output path given")
        self.address = address
        self.frames = list(range(first, last + 1))
        self.video = bool(video)
        self.chunk_frames = chunk_frames
        is_folder = str(output).endswith(("/", os.sep))
        output = os.path.abspath(str(output))
        self.video_path: str | None = video_path(output, is_folder) if self.video else None
        self.prefix: str = "" if self.video else frame_prefix(output, is_folder)
        self.written: list[str] = []
        self._started: float | None = None
        self._closing = contextlib.ExitStack()
        self._client: Any = None
        self._cancel: Any = None
        self._topic = ""
        self._blend: Any = None  # the scattered bytes' future, or the .blend's path in the shared folder
        self._copied_blend: str | None = None
        self.owns_blend = False  # the .blend is a temporary saved for this render, removed when it ends
        self._chunks: list[list[int]] = []
        self._futures: list[Any] = []
        self._results: dict[int, dict[str, Any]] = {}
        self._next_chunk = 0
        self._reports: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._reported: set[int] = set()
        self._frame_seconds: list[float] = []
        self._workers = 1
        self._frame_folder: str | None = None
        self._made_folders: list[str] = []
        self._video_settings: dict[str, Any] = {}

    @property
    def total(self) -> int:
        return len(self.frames)

    @property
    def done(self) -> bool:
        return bool(self._chunks) and self._next_chunk >= len(self._chunks)

    def start(self) -> None:
        """Connect (unless given a client), send the .blend and submit every chunk."""
        self._started = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self._close()
            raise

    def _start(self) -> None:
        if isinstance(self.address, str):
            self._client = self._closing.enter_context(cluster.connect(self.address))
        else:
            self._client = self.address
        client = self._client
        self._made_folders = _make_folders(os.path.dirname(self.video_path or self.prefix))
        if self.video:
            self._frame_folder = tempfile.mkdtemp(prefix="blender_cnn_frames_")
            self.prefix = os.path.join(self._frame_folder, FRAME_PREFIX)
        self._blend = self._send_blend(client)
        workers = client.scheduler_info()["workers"]
        self._workers = max(1, len(workers))
        job_id = uuid.uuid4().hex
        self._topic = f"blender_cnn-frames-{job_id}"
        client.subscribe_topic(self._topic, lambda event: self._reports.put(event[1]))
        self._cancel = cluster.cancel_event(client)
        job = {
            "id": job_id,
            "topic": self._topic,
            "cancel": self._cancel.name,
            "workers_per_host": dict(Counter(cluster_frames.host_of(address) for address in workers)),
            "blender": cluster_frames.blender_version(),
        }
        size = self.chunk_frames or default_chunk_frames(self.total, len(workers))
        self._chunks = chunks_of(self.frames, size)
        render_chunk = _SentByValue(cluster_frames.render_chunk)
        self._futures = [
            client.submit(render_chunk, self._blend, chunk, job, key=f"render-frames-{chunk[0]}-{chunk[-1]}-{job_id}")
            for chunk in self._chunks
        ]

    def _send_blend(self, client: Any) -> Any:
        if self.shared_dir is None:
            with open(self.blend_path, "rb") as file:
                blend = file.read()
            try:
                return client.scatter(blend, broadcast=True, hash=False)
            except TimeoutError:
                raise BlenderCNNError(
                    client.scheduler.address,
                    "has no workers to send the .blend to; start some with 'dask worker ADDRESS' (docs/scaling.md)",
                ) from None
        if os.path.dirname(self.blend_path) == self.shared_dir:
            return self.blend_path
        self._copied_blend = os.path.join(self.shared_dir, f"{BLEND_PREFIX}{uuid.uuid4().hex}.blend")
        shutil.copyfile(self.blend_path, self._copied_blend)
        return self._copied_blend

    def step(self, timeout: float = STEP_SECONDS) -> list[RenderProgress]:
        """Wait up to ``timeout`` seconds for frames; returns a report of each frame rendered since the last step.

        Writes the frames of every chunk that came back, in frame order; raises
        BlenderCNNError when a chunk failed on the cluster.
        """
        if self._started is None:
            self.start()
        reports = []
        try:
            events = [self._reports.get(timeout=timeout)]
        except queue.Empty:
            events = []
        while not self._reports.empty():
            events.append(self._reports.get())
        for event in events:
            self._frame_seconds.append(event["seconds"])
            reports += self._report(event["frame"])
        self._collect_chunks()
        while self._next_chunk in self._results:
            result = self._results.pop(self._next_chunk)
            for frame, png in result["frames"]:
                reports += self._report(frame)  # a frame whose event is late, or was lost with a worker
                self.written.append(_write_file(f"{self.prefix}{frame:04d}.png", png))
            self._video_settings = {"size": tuple(result["size"]), "fps": tuple(result["fps"])}
            self._next_chunk += 1
        return reports

    def _report(self, frame: int) -> list[RenderProgress]:
        if frame in self._reported:  # rendered again after its worker was lost
            return []
        self._reported.add(frame)
        assert self._started is not None  # start() sets it
        return [
            RenderProgress(
                frame,
                len(self._reported),
                self.total,
                time.perf_counter() - self._started,
                self.remaining(),
                f"{self.prefix}{frame:04d}.png",
            )
        ]

    def _collect_chunks(self) -> None:
        for index, future in enumerate(self._futures):
            if future is None or not future.done():
                continue
            chunk = self._chunks[index]
            try:
                result = future.result()
            except Exception as error:
                raise BlenderCNNError(
                    f"frames {chunk[0]}-{chunk[-1]}", f"failed on the cluster: {first_line(error)}"
                ) from None
            if [frame for frame, _png in result["frames"]] != chunk:
                raise BlenderCNNError(f"frames {chunk[0]}-{chunk[-1]}", "came back incomplete from the cluster")
            self._results[index] = result
            self._futures[index] = None
            future.release()

    def remaining(self) -> float:
        """Seconds left, estimated from the frames so far and the workers rendering them."""
        if not self._frame_seconds:
            return float("nan")
        left = self.total - len(self._reported)
        chunks_left = len(self._chunks) - self._next_chunk
        working = max(1, min(self._workers, chunks_left))
        typical = sum(self._frame_seconds) / len(self._frame_seconds)
        return left * typical / working + (0.02 * self.total if self.video else 0.0)

    def finish(self) -> list[str]:
        """Encode the video (with ``video``) and close; returns the paths written."""
        try:
            if not self.done:
                raise BlenderCNNError("cluster render", "finish() before every frame came back")
            if self.video:
                assert self.video_path is not None  # set with video
                width, height = self._video_settings["size"]
                fps, fps_base = self._video_settings["fps"]
                encode_video(self.written, self.video_path, size=(width, height), fps=fps, fps_base=fps_base)
                return [self.video_path]
            return list(self.written)
        finally:
            self._close()

    def cancel(self) -> list[str]:
        """Stop the cluster's tasks and close; keeps the PNG frames written so far (a video's are removed)
        and returns them."""
        if self._client is not None and self._cancel is not None:
            cluster.stop(self._client, [future for future in self._futures if future is not None], self._cancel)
        self._close()
        return [] if self.video else list(self.written)

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # a cluster already gone (Ctrl-C, a dead scheduler)
                if self._topic:
                    client.unsubscribe_topic(self._topic)
                for future in [*self._futures, self._blend]:
                    if future is not None and not isinstance(future, str):
                        future.release()
        self._futures = []
        self._closing.close()
        if self._copied_blend is not None:
            with contextlib.suppress(OSError):
                os.remove(self._copied_blend)
            self._copied_blend = None
        if self.owns_blend:
            with contextlib.suppress(OSError):
                os.remove(self.blend_path)
            self.owns_blend = False
        if self._frame_folder is not None:
            shutil.rmtree(self._frame_folder, ignore_errors=True)
            self._frame_folder = None
        for folder in self._made_folders:  # the output's folders this render made, if they stayed empty
            try:
                os.rmdir(folder)
            except OSError:
                break
        self._made_folders = []


def _make_folders(folder: str) -> list[str]:
    """Make ``folder`` and its missing parents; returns those it made, deepest first."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    if missing:
        os.makedirs(missing[0], exist_ok=True)
    return missing


def _write_file(path: str, data: bytes) -> str:
    """Write ``data`` to ``path`` whole or not at all; returns ``path``."""
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as file:
            file.write(data)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    return path
