"""scripts/render.py --dask and scene/cluster_render.py: an animation's frames rendered on a Dask cluster.

The renders are render.py in a process of its own, as a user runs it (64x36,
one Cycles sample, the designed digits network with an orbiting camera), on
``local:2`` or on a cluster of two worker processes that this module starts;
one test calls ``render_on_cluster`` itself, as the Render Animation operator
will. No worker can import blender_cnn: a preload installs an import blocker
in each of them (and leaves a marker file, so a test can tell that it ran),
which proves the task reaches the workers by value. The frames must match,
pixel for pixel, those of the same render in one process.
"""

import ast
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from interrupting import children_take_ctrl_c
from scene_readers import read_png

pytestmark = [pytest.mark.bpy, pytest.mark.render]
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "render.py"
FRAMES = (1, 6)
LOOKS = ["--width", "64", "--height", "36", "--samples", "1", "--camera", "orbit"]
SCENE = [*LOOKS, "--frames", *map(str, FRAMES)]
SCRIPT_TIMEOUT = 300
PROGRESS = "render.py: frame"

# A worker preload: importing blender_cnn fails on the worker, and the worker leaves a marker file.
BLOCKER = r"""
import importlib.abc, os, sys

class BlockBlenderCNN(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "blender_cnn" or name.startswith("blender_cnn."):
            raise ImportError(f"blender_cnn is blocked on this worker: {name}")
        return None

sys.meta_path.insert(0, BlockBlenderCNN())
open(os.path.join(MARKERS, f"{os.getpid()}.blocked"), "w").close()
"""


@pytest.fixture(scope="module")
def worker_blocker(tmp_path_factory):
    """(preload file, folder of markers): the preload blocks blender_cnn on a worker and marks the folder."""
    folder = tmp_path_factory.mktemp("worker_blocker")
    markers = folder / "markers"
    markers.mkdir()
    preload = folder / "block_blender_cnn.py"
    preload.write_text(f"MARKERS = {str(markers)!r}\n{BLOCKER}")
    return preload, markers


def run_script(*arguments, preload=None, popen=False, timeout=SCRIPT_TIMEOUT):
    """render.py in a fresh Python, from a folder of its own, with an empty Blender user folder; with
    ``preload``, every worker of a local cluster it starts runs that preload."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender_cnn_script_user_")
    if preload is not None:
        env["DASK_DISTRIBUTED__WORKER__PRELOAD"] = repr([str(preload)])
    command = [sys.executable, str(SCRIPT), *map(str, arguments)]
    options = dict(cwd=tempfile.gettempdir(), env=env, text=True)
    if popen:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
    return subprocess.run(command, capture_output=True, timeout=timeout, **options)


def check_ran(process):
    tail = f"\n--- stdout ---\n{process.stdout[-3000:]}\n--- stderr ---\n{process.stderr[-3000:]}"
    assert process.returncode == 0, f"render.py exited with {process.returncode}{tail}"
    return process


def assert_one_line_error(process, *words):
    assert process.returncode == 2, (process.returncode, process.stdout[-2000:], process.stderr[-2000:])
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("render.py: error: "), lines
    assert "Traceback" not in process.stdout + process.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def frames_in(folder):
    """``{frame: RGB pixels}`` of the frame_NNNN.png files in ``folder``, which must hold nothing else."""
    names = sorted(path.name for path in folder.iterdir())
    expected = [f"frame_{frame:04d}.png" for frame in range(FRAMES[0], FRAMES[1] + 1)]
    assert names == expected, names
    return {frame: read_png(folder / f"frame_{frame:04d}.png") for frame in range(FRAMES[0], FRAMES[1] + 1)}


def assert_same_frames(frames, expected):
    assert frames.keys() == expected.keys()
    for frame in frames:
        assert np.array_equal(frames[frame], expected[frame]), f"frame {frame} differs from the one-process render"


def first_progress_line(process):
    for line in process.stdout:
        if line.startswith(PROGRESS):
            return line
    pytest.fail(f"render.py printed no progress; stderr: {process.stderr.read()[-3000:]}")


@pytest.fixture(scope="module")
def bundle_path(digits_design_bundle):
    return digits_design_bundle.path


@pytest.fixture(scope="module")
def single_process_frames(bundle_path, tmp_path_factory):
    """The frames of the animation rendered by render.py in one process, without a cluster."""
    folder = tmp_path_factory.mktemp("single_process")
    check_ran(run_script("--bundle", bundle_path, *SCENE, "--animation", "--output", f"{folder}/"))
    return frames_in(folder)


@pytest.fixture(scope="module")
def dask_cluster(worker_blocker):
    """A cluster of two single-threaded worker processes, none of which can import blender_cnn:
    ``(scheduler address, client)``."""
    import dask
    from distributed import Client, LocalCluster

    preload, _markers = worker_blocker
    with dask.config.set({"distributed.worker.preload": [str(preload)]}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not 8787, which the clusters of render.py try
            silence_logs=logging.CRITICAL,
        )
    client = Client(cluster)
    yield cluster.scheduler_address, client
    client.close()
    cluster.close()


# --- rendering ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_local_cluster_renders_the_same_frames_as_one_process(
    bundle_path, single_process_frames, worker_blocker, tmp_path
):
    preload, markers = worker_blocker
    before = set(markers.iterdir())
    output = tmp_path / "frames"
    process = check_ran(
        run_script("--bundle", bundle_path, *SCENE, "--dask", "local:2", "--output", f"{output}/", preload=preload)
    )
    assert_same_frames(frames_in(output), single_process_frames)
    # Both workers ran with blender_cnn blocked.
    assert len(set(markers.iterdir()) - before) == 2
    # Progress per frame, with the time left and the rate.
    progress = [line for line in process.stdout.splitlines() if line.startswith(PROGRESS)]
    assert len(progress) == 6, process.stdout
    assert all("left" in line and "frames/min" in line for line in progress), progress
    assert "(6/6)" in progress[-1]
    assert sorted(int(line.split()[2]) for line in progress) == list(range(1, 7))


@pytest.mark.slow
def test_a_video_from_a_scheduler_with_a_shared_folder_has_every_frame(blender, bundle_path, dask_cluster, tmp_path):
    address, client = dask_cluster
    shared = tmp_path / "shared"
    shared.mkdir()
    video = tmp_path / "out" / "net.mp4"
    check_ran(
        run_script(
            "--bundle", bundle_path, *SCENE, "--dask", address, "--shared-dir", shared, "--video", "--output", video
        )
    )
    assert list(video.parent.iterdir()) == [video]  # no partial video beside it
    assert list(shared.iterdir()) == []  # the .blend the workers read is gone
    clip = blender.data.movieclips.load(str(video))
    try:
        assert clip.frame_duration == 6
        assert tuple(clip.size) == (64, 36)
    finally:
        blender.data.movieclips.remove(clip)
    # The workers rendered without blender_cnn (it is blocked there, and none of it was imported).
    loaded = client.run(lambda: sorted(name for name in sys.modules if name.startswith("blender_cnn")))
    assert all(names == [] for names in loaded.values()), loaded


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_costs_only_its_chunk(bundle_path, single_process_frames, dask_cluster, tmp_path):
    address, client = dask_cluster
    pids = client.run(os.getpid)
    output = tmp_path / "frames"
    process = run_script(
        "--bundle", bundle_path, *SCENE, "--dask", address, "--chunk-frames", 3, "--output", f"{output}/", popen=True
    )
    try:
        first_progress_line(process)
        # Two chunks of three frames, one on each worker: both are mid-chunk after the first frame.
        busy = [worker for worker, keys in client.processing().items() if keys and worker in pids]
        assert busy, client.processing()
        os.kill(pids[busy[0]], signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=SCRIPT_TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 0, (process.returncode, stdout[-3000:], stderr[-3000:])
    assert_same_frames(frames_in(output), single_process_frames)
    assert pids[busy[0]] not in client.run(os.getpid).values()


def test_render_on_cluster_reports_each_frame_and_stops_when_asked(
    blender, staged_designed_network, dask_cluster, tmp_path
):
    from blender_cnn.scene.cluster_render import render_on_cluster, save_blend_for_cluster
    from blender_cnn.scene.rendering import RenderProgress
    from blender_cnn.scene.stage import configure_render

    address, client = dask_cluster
    configure_render(blender.context.scene, "CYCLES", 64, 36, 1)
    blend = save_blend_for_cluster(tmp_path)
    output = tmp_path / "frames"
    reports = []

    def first_chunk_is_written():
        return len(list(output.glob("frame_*.png"))) >= 2

    written = render_on_cluster(
        address,
        blend,
        1,
        12,
        f"{output}/",
        progress=reports.append,
        should_stop=first_chunk_is_written,
        chunk_frames=2,
    )
    assert reports and all(isinstance(report, RenderProgress) for report in reports)
    assert [report.done for report in reports] == list(range(1, len(reports) + 1))
    assert {report.total for report in reports} == {12}
    # Stopped early: what was written is whole frames from the start of the range, and nothing else.
    assert 2 <= len(written) < 12
    assert written == [str(output / f"frame_{frame:04d}.png") for frame in range(1, len(written) + 1)]
    assert sorted(output.iterdir()) == [Path(path) for path in written]
    for path in written:
        assert read_png(path).shape == (36, 64, 3)

    def rendering_a_chunk():
        """On a worker (sent by value, as a local function): whether its Blender thread is inside a chunk."""
        import threading

        return any(thread.name == "blender_cnn-bpy" and thread.chunk_lock.locked() for thread in threading.enumerate())

    # Each worker ends its chunk after the frame it is rendering.
    for _ in range(SCRIPT_TIMEOUT * 10):
        if not any(client.run(rendering_a_chunk).values()):
            break
        time.sleep(0.1)
    assert not any(client.run(rendering_a_chunk).values())


# --- stopping and failing ----------------------------------------------------------------


def test_a_wrong_scheduler_address_fails_with_one_line_and_leaves_nothing(bundle_path, tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    process = run_script(
        "--bundle", bundle_path, *SCENE, "--dask", address, "--video", "--output", tmp_path / "out" / "net.mp4"
    )
    assert_one_line_error(process, address, "no Dask scheduler")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_stops_the_cluster_and_leaves_no_partial_video(bundle_path, worker_blocker, tmp_path):
    import psutil

    video = tmp_path / "out" / "net.mp4"
    # Long enough to be mid-render when Ctrl-C comes.
    arguments = [*LOOKS, "--frames", 1, 24, "--dask", "local:2", "--video", "--output", video]
    with children_take_ctrl_c():
        process = run_script("--bundle", bundle_path, *arguments, preload=worker_blocker[0], popen=True)
    try:
        first_progress_line(process)
        workers = psutil.Process(process.pid).children(recursive=True)
        assert len(workers) >= 2, workers
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=SCRIPT_TIMEOUT)
    finally:
        process.kill()
    assert_one_line_error(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), "Ctrl-C")
    # The local cluster's processes ended with the client (a zombie has ended; only its parent had not reaped it).
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    running = [worker.pid for worker in alive if _running(worker)]
    assert running == [], (running, stdout[-3000:])
    assert list(tmp_path.rglob("*")) == [], stdout[-3000:]


def _running(process):
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(
    "arguments, words",
    [
        (("--dask", "local:2", "--still"), ["--dask", "--still"]),
        (("--shared-dir", "."), ["--shared-dir", "--dask"]),
        (("--chunk-frames", "2"), ["--chunk-frames", "--dask"]),
        (("--dask", "local:2", "--chunk-frames", "0"), ["--chunk-frames"]),
        (("--dask", "local:2", "--shared-dir", "no/such/folder"), ["no/such/folder"]),
        (("--dask", "local:0"), ["local:0", "1 to"]),
        (("--dask", "nowhere"), ["nowhere", "local:N"]),
    ],
)
def test_bad_cluster_arguments_give_one_line(bundle_path, tmp_path, arguments, words):
    process = run_script("--bundle", bundle_path, *arguments, "--output", tmp_path / "out.mp4")
    assert_one_line_error(process, *words)
    assert list(tmp_path.iterdir()) == []


def test_help_documents_the_cluster_options():
    process = check_ran(run_script("--help"))
    for option in ("--dask ADDRESS", "local:N", "tcp://", "--shared-dir DIR", "--chunk-frames N"):
        assert option in process.stdout, option


# --- what the workers need -----------------------------------------------------------------


def test_the_worker_task_imports_only_bpy_distributed_and_the_standard_library():
    source = (REPO / "blender_cnn" / "scene" / "cluster_frames.py").read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: a relative import reaches into blender_cnn"
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names - {"__future__"} == {"bpy", "distributed"}, imported


@pytest.mark.slow
def test_render_animation_in_blender_uses_the_cluster_the_preferences_name(
    blender, staged_designed_network, dask_cluster, tmp_path
):
    """The operator behind the sidebar's Render Animation: the same frames on the cluster as without one."""
    from blender_cnn.ui import preferences

    scene = blender.context.scene
    settings = {"width": 64, "height": 36, "samples": 1, "engine": "CYCLES", "use_scene_range": False}
    settings.update(frame_start=FRAMES[0], frame_end=FRAMES[1])
    assert blender.ops.bcnn.render_animation(filepath=f"{tmp_path / 'here'}/", **settings) == {"FINISHED"}
    address, _client = dask_cluster
    original = preferences.cluster_address
    preferences.cluster_address = lambda _context: address
    try:
        assert blender.ops.bcnn.render_animation(filepath=f"{tmp_path / 'there'}/", **settings) == {"FINISHED"}
    finally:
        preferences.cluster_address = original
    assert_same_frames(frames_in(tmp_path / "there"), frames_in(tmp_path / "here"))
    assert scene.camera is not None
    assert not [name for name in os.listdir(tempfile.gettempdir()) if name.startswith("blender_cnn_render_")]
