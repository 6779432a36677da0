"""The task a Dask worker runs to render a chunk of an animation's frames from a saved .blend.

Workers need Blender's bpy and Dask distributed, and nothing of blender_cnn:
``scene/cluster_render.py`` sends this module's functions by value (cloudpickle),
so a ``dask worker`` started anywhere with bpy installed can run them. Hence
this module imports only distributed and the standard library, bpy inside the
functions that call it (``tests/test_cluster_render.py`` checks that), and
takes every setting as plain data.

bpy crashes the process when it is called from a thread other than the one
that imported it, and a worker runs its tasks on a pool of threads. So each
worker process gets one thread of its own for Blender (``blender_thread``),
started by the first task: it imports bpy and makes every bpy call, one chunk
at a time. Blender's own teardown, which Python runs when it frees bpy's
modules at exit, crashes the same way on the main thread; the process ends
just before it (``_EndProcess``).

Each finished frame is reported at once as an event on the job's topic
(``{"frame", "seconds", "worker"}``); the PNGs travel back together as the
task's result, so that a worker lost mid-chunk loses that chunk only and Dask
runs it again elsewhere. The job's cancel event is polled before each frame.
"""

from __future__ import annotations

import os
import queue
import sys
import tempfile
import threading
import time
import types
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, cast

from distributed import get_worker
from distributed.utils import sync

BLENDER_THREAD_NAME = "blender_cnn-bpy"
EXIT_GUARD_MODULE = "_blender_thread_exit_guard"

Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class BlenderThread(threading.Thread):
    """The thread that owns bpy in a worker process: it imports bpy, then runs the calls put on ``calls``,
    one at a time.

    It remembers which job's .blend it has open (``open_job``, and what
    ``_open_scene`` read from it), so that a job's later chunks skip opening it.
    """

    def __init__(self) -> None:
        super().__init__(name=BLENDER_THREAD_NAME, daemon=True)
        self.calls: queue.SimpleQueue[Call] = queue.SimpleQueue()
        self.chunk_lock = threading.Lock()
        self.open_job: str | None = None
        self.open_settings: dict[str, Any] = {}

    def run(self) -> None:
        failure: BaseException | None = None
        try:
            import bpy  # noqa: F401  (Blender's thread is the one that imports it)
        except BaseException as error:
            failure = error
        else:
            _end_process_before_blender_teardown()
        while True:
            future, function, args = self.calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            if failure is not None:
                future.set_exception(failure)
                continue
            try:
                future.set_result(function(*args))
            except BaseException as error:
                future.set_exception(error)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` run on this thread; its result, or its exception raised here."""
        future: Future[Any] = Future()
        self.calls.put((future, function, args))
        return future.result()


class _EndProcess:
    """Ends the process, with status 0, when Python frees it (see ``_end_process_before_blender_teardown``)."""

    def __del__(self) -> None:
        os._exit(0)


def _end_process_before_blender_teardown() -> None:
    """End this process at exit after Python's own shutdown work, but before Blender's.

    At exit Python runs the atexit handlers, flushes the standard streams, then
    frees the modules of sys.modules in the order they were imported; freeing
    bpy's runs Blender's teardown, which crashes the process (SIGSEGV) when bpy
    was imported on another thread than the main one. A module registered after
    bpy, holding an ``_EndProcess``, is freed before them and ends the process.
    """
    guard = types.ModuleType(EXIT_GUARD_MODULE)
    guard.end = _EndProcess()  # type: ignore[attr-defined]
    sys.modules[EXIT_GUARD_MODULE] = guard


def render_chunk(blend: bytes | str, frames: list[int], job: dict[str, Any]) -> dict[str, Any]:
    """Render ``frames`` of ``blend`` (the .blend's bytes, or its path on a folder every worker shares).

    ``job`` holds ``id``, ``topic`` (where each frame is reported), ``cancel``
    (the name of the job's cancel event), ``workers_per_host`` (``{host: worker
    processes}``, which share its cores) and ``blender`` (the client's Blender
    version, which this worker must match for the frames to match). Returns
    ``{"frames": [(frame, PNG bytes)], "size": (width, height), "fps": (fps,
    fps_base)}``; after a cancel, only the frames rendered before it.
    """
    worker = get_worker()
    blender = blender_thread()
    rendered: list[tuple[int, bytes]] = []
    # A worker with several threads runs several chunks at once; Blender holds one file at a time.
    with blender.chunk_lock, tempfile.TemporaryDirectory(prefix="blender_cnn_frames_") as folder:
        if blender.open_job != job["id"]:
            blender.open_job = None
            threads = render_threads(job["workers_per_host"].get(host_of(worker.address), 1))
            blender.open_settings = blender.call(_open_scene, blend, worker.address, job["blender"], threads)
            blender.open_job = job["id"]
        for frame in frames:
            if _job_cancelled(worker, job["cancel"]):
                break
            started = time.perf_counter()
            rendered.append((frame, blender.call(_render_frame, frame, folder)))
            worker.log_event(
                job["topic"], {"frame": frame, "seconds": time.perf_counter() - started, "worker": worker.address}
            )
    return {"frames": rendered, **blender.open_settings}


def blender_thread() -> BlenderThread:
    """This process's thread for bpy: the one that imports it and makes every call into it (started once).

    It is found by its name, because each task brings its own copy of this
    module's functions (its own BlenderThread class, too) and none of them can keep it in a global.
    """
    for thread in threading.enumerate():
        if thread.name == BLENDER_THREAD_NAME:
            return cast(BlenderThread, thread)
    if "bpy" in sys.modules:
        raise RuntimeError(
            "bpy was imported on another thread of this worker, and Blender runs on one thread only: "
            "start the worker as its own process (dask worker, or local:N) without importing bpy"
        )
    # Importing bpy puts bpy/<version>/scripts/modules first on sys.path, and a local worker spawned by a process
    # that had imported bpy copies that path: its own `import bpy` would find the Python half of Blender's bpy
    # package there and fail (no _bpy). Without them it finds the bpy module, which puts them back.
    sys.path[:] = [path for path in sys.path if not _inside_blender_scripts(path)]
    thread = BlenderThread()
    thread.start()
    return thread


def _inside_blender_scripts(path: str) -> bool:
    parts = os.path.normpath(path).split(os.sep)
    return "bpy" in parts and "scripts" in parts[parts.index("bpy") :]


def blender_version() -> str:
    """bpy's version, e.g. ``'5.2.3'`` (imports bpy: call it on the Blender thread, or on the client)."""
    import bpy  # noqa: F401  (puts bpy.app into sys.modules)

    # Not bpy.app.version_string: bpy.app sits in sys.modules as a struct, not a module, and cloudpickle,
    # sending a function by value, sends along every sys.modules entry under bpy that the function names;
    # it cannot pickle that struct.
    return str(sys.modules["bpy.app"].version_string)


def host_of(address: str) -> str:
    """The host of a Dask address: ``'10.0.0.5'`` of ``'tcp://10.0.0.5:40123'``."""
    return urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}").hostname or address


def render_threads(workers_on_this_host: int) -> int:
    """Blender's render threads for one of ``workers_on_this_host`` worker processes: a share of the cores
    this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, workers_on_this_host))


def _open_scene(blend: bytes | str, worker: str, client_version: str, threads: int) -> dict[str, Any]:
    import bpy

    version = blender_version()
    if version != client_version:
        raise RuntimeError(
            f"worker {worker} has Blender {version}, the client {client_version}: "
            "install the same bpy on every worker, or the frames would differ"
        )
    if isinstance(blend, str):
        if not os.path.isfile(blend):
            raise FileNotFoundError(
                f"{blend}: not found on worker {worker}; the shared folder must be at the same path on every worker"
            )
        bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
    else:
        # Blender reads the whole file when it opens it: nothing needs it on disk after that.
        with tempfile.TemporaryDirectory(prefix="blender_cnn_blend_") as folder:
            path = os.path.join(folder, "scene.blend")
            with open(path, "wb") as file:
                file.write(blend)
            bpy.ops.wm.open_mainfile(filepath=path, load_ui=False)
    scene = bpy.context.scene
    assert scene is not None  # a file always opens with a scene; the stubs allow None
    render = scene.render
    # Several workers on one machine (local:N, dask worker --nworkers N) would each take every core.
    render.threads_mode = "FIXED"
    render.threads = threads
    render.image_settings.media_type = "IMAGE"
    render.image_settings.file_format = "PNG"
    scale = render.resolution_percentage / 100
    return {
        "size": (round(render.resolution_x * scale), round(render.resolution_y * scale)),
        "fps": (render.fps, render.fps_base),
    }


def _job_cancelled(worker: Any, event_name: str) -> bool:
    """Whether the client set the job's cancel event. Asked over the worker's own connection to the scheduler:
    ``distributed.Event`` would start a client inside the worker, which Dask fails to close when the worker is
    stopped, printing a traceback on the user's terminal at every Ctrl-C."""
    return bool(sync(worker.loop, worker.scheduler.event_is_set, name=event_name))


def _render_frame(frame: int, folder: str) -> bytes:
    import bpy

    scene = bpy.context.scene
    assert scene is not None  # a file always opens with a scene; the stubs allow None
    path = os.path.join(folder, f"frame_{frame:04d}.png")
    scene.frame_set(frame)
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True, scene=scene.name)
    with open(path, "rb") as file:
        png = file.read()
    os.remove(path)
    return png
