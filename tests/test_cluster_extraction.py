"""A run's epochs extracted on a Dask cluster of this machine give the serial bundle, array for array, even when
a worker dies mid-extraction; a wrong address or Ctrl-C leaves nothing behind."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest
from interrupting import children_take_ctrl_c

from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.errors import BlenderCNNError

pytestmark = [pytest.mark.tf, pytest.mark.slow]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def quiet(_line):
    pass


def assert_same_bundle(path, expected_path):
    """Every array and the manifest equal: what a user's scene is built from cannot tell them apart."""
    bundle, expected = load_bundle(path), load_bundle(expected_path)
    assert bundle.manifest == expected.manifest
    names = sorted(
        name[: -len(".npy")]
        for name in zipfile.ZipFile(expected_path).namelist()
        if name.endswith(".npy") and not name.startswith("manifest")
    )
    assert len(names) > 20
    for name in names:
        np.testing.assert_array_equal(bundle.array(name), expected.array(name), err_msg=name)


@pytest.fixture
def run_copy(demo_run_dir, tmp_path):
    """The demo run's checkpoints, samples and history, without its bundle."""
    run = tmp_path / "run"
    shutil.copytree(demo_run_dir, run, ignore=shutil.ignore_patterns("*.bcnn.npz"))
    return run


def test_a_local_cluster_extracts_the_serial_bundle(run_copy, demo_bundle_path):
    from blender_cnn.extract.keras_bundle import extract

    lines = []
    path = extract(run_copy, run_copy / "run.bcnn.npz", dask="local:2", log=lines.append)
    assert_same_bundle(path, demo_bundle_path)
    assert any(line.startswith("cluster: local:2, 2 workers, ") for line in lines)
    assert sum(line.startswith("epoch ") for line in lines) == len(load_bundle(path).epochs)


def test_a_worker_killed_mid_extraction_costs_only_its_epoch(run_copy, demo_bundle_path):
    """A scheduler of our own, so the test can find the workers' processes and kill one while it works."""
    from distributed import Client, LocalCluster

    from blender_cnn.extract.keras_bundle import extract

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            pids = list(client.run(os.getpid).values())
            killed = []

            def log(line):
                if line.startswith("epoch ") and not killed:  # one epoch is in: the workers are busy with others
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])

            path = extract(run_copy, run_copy / "run.bcnn.npz", dask=cluster.scheduler_address, log=log)
            assert killed
            assert_same_bundle(path, demo_bundle_path)


def test_a_wrong_address_fails_fast_with_one_line_and_leaves_nothing(run_copy):
    from blender_cnn.extract.keras_bundle import extract

    started = time.perf_counter()
    with pytest.raises(BlenderCNNError, match="tcp://127.0.0.1:9: no Dask scheduler answers there within 5 s"):
        extract(run_copy, run_copy / "run.bcnn.npz", dask="tcp://127.0.0.1:9", log=quiet)
    assert time.perf_counter() - started < 15
    assert sorted(os.listdir(run_copy)) == sorted(
        name for name in os.listdir(run_copy) if not name.endswith(".npz")
    ) + ["samples.npz"]
    with pytest.raises(BlenderCNNError, match="is not a cluster address"):
        extract(run_copy, run_copy / "run.bcnn.npz", dask="local:none", log=quiet)


def test_ctrl_c_stops_the_cluster_and_leaves_no_bundle(run_copy):
    command = [sys.executable, "-m", "blender_cnn.extract", str(run_copy), "--out", str(run_copy / "run.bcnn.npz")]
    with children_take_ctrl_c():
        process = subprocess.Popen(
            [*command, "--dask", "local:2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any(line.startswith("cluster: ") for line in lines) and time.monotonic() < deadline:
        time.sleep(0.2)
    children = _child_pids(process.pid)
    assert children, "the local cluster's workers run as child processes"
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) != 0
    reader.join(timeout=10)
    time.sleep(1)
    assert not [pid for pid in children if _alive(pid)], "no worker is left working"
    assert not [name for name in os.listdir(run_copy) if name.startswith("run.bcnn")]
    assert not any("Traceback" in line for line in lines), "".join(lines)


def _child_pids(pid):
    """Every process below ``pid`` (Linux /proc)."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        if int(handle.read().rsplit(")", 1)[1].split()[1]) == parent:
                            found.append(int(entry))
                            frontier.append(int(entry))
                except (OSError, IndexError, ValueError):
                    continue
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.bpy
def test_import_checkpoint_uses_the_cluster_the_preferences_name(blender, run_copy, demo_bundle_path, bundle_folder):
    from blender_cnn.ui import preferences

    original = preferences.cluster_address
    preferences.cluster_address = lambda _context: "local:2"
    try:
        assert blender.ops.bcnn.import_checkpoint(directory=str(run_copy)) == {"FINISHED"}
    finally:
        preferences.cluster_address = original
    network = blender.context.view_layer.objects.active
    assert_same_bundle(network["blender_cnn_bundle"], demo_bundle_path)
