"""Install TensorFlow (the add-on's preferences): a Python environment of the add-on's own, made with Blender's
Python, with the pinned tensorflow-cpu, keras and tf-keras installed by pip from the package index pip is set
up with; then File > Import runs its extractions there.

The real install downloads TensorFlow and runs once per session (``slow`` and ``tf``), in an installed
extension in a fresh Blender user folder. The failure and cancel paths never reach a package index.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ui_recorder import ESCAPE, modal_context, modal_driver, run_in_fresh_blender

from blender_cnn.core import jobs, pins
from blender_cnn.extract import environment

REPO = Path(__file__).resolve().parent.parent


def leftovers(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def pins_of(path):
    """``{name: "name==version"}`` of a requirements file, read here independently of core/pins.py."""
    found = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            found[line.split("==")[0].strip().lower()] = line
    return found


def test_the_installed_versions_are_the_requirements_files_pins():
    requirements, no_deps = pins.extractor_requirements(platform="linux")
    pinned = pins_of(REPO / "requirements.txt")
    assert requirements == [
        pinned[name] for name in ("tensorflow-cpu", "keras", "h5py", "numpy", "onnx", "onnxruntime", "distributed")
    ]
    assert no_deps == list(pins_of(REPO / "requirements-no-deps.txt").values())
    assert "tf-keras" not in pinned, "tf-keras goes with --no-deps only (its metadata asks for tensorflow)"
    assert jobs.TENSORFLOW_REQUIREMENT == pinned["tensorflow-cpu"]
    # macOS has no tensorflow-cpu wheel; the tensorflow wheel of the same version is its CPU build.
    assert pins.extractor_requirements(platform="darwin")[0][0] == pinned["tensorflow-cpu"].replace("-cpu", "")


def test_pips_lines_become_progress_steps():
    steps = [
        jobs.parse_progress(environment._progress(line))
        for line in (
            "Collecting tensorflow-cpu==2.21.0",
            "  Downloading tensorflow_cpu-2.21.0-cp313-cp313-manylinux_2_27_x86_64.whl (274.3 MB)",
            "Processing /opt/pypi/files/keras-3.15.1-py3-none-any.whl",
            "Collecting absl-py>=1.0.0 (from tensorflow-cpu==2.21.0)",
            "Installing collected packages: namex, keras, tensorflow-cpu",
            "WARNING: Location 'file:///x/simple/keras/' is ignored",
        )
    ]
    assert steps == [
        "package tensorflow-cpu",
        "download tensorflow_cpu 2.21.0 (274.3 MB)",
        "package keras",
        "package absl-py",
        "step unpacking 3 packages",
        None,
    ]


@pytest.fixture
def python_folder(tmp_path, monkeypatch):
    """Where Install TensorFlow puts its environment, instead of the user folder."""
    from blender_cnn.ui import preferences

    folder = tmp_path / "python"
    folder.mkdir()
    monkeypatch.setattr(preferences, "environment_folder", lambda: str(folder))
    return folder


@pytest.fixture
def online(blender):
    """Blender's Allow Online Access on (extensions may download only then), off again afterwards."""
    system = blender.context.preferences.system
    system.use_online_access = True
    yield blender
    system.use_online_access = False


@pytest.mark.bpy
def test_without_online_access_nothing_is_downloaded(blender, python_folder):
    assert not blender.app.online_access
    with pytest.raises(RuntimeError, match=r"Online access: is off \(Preferences > System > Network\)"):
        blender.ops.bcnn.install_tensorflow()
    assert leftovers(python_folder) == []


@pytest.mark.bpy
@pytest.mark.slow
def test_an_unreachable_package_index_fails_with_one_line_and_installs_nothing(online, python_folder, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_NO_INDEX", raising=False)
    with pytest.raises(RuntimeError) as raised:
        online.ops.bcnn.install_tensorflow()
    message = str(raised.value).strip().removeprefix("Error: ")
    assert "\n" not in message
    assert message.startswith("package index http://127.0.0.1:9/simple: cannot be reached (Connection refused)")
    assert "Nothing was installed" in message
    assert leftovers(python_folder) == []


def running(pattern):
    """The command lines of the processes matching ``pattern``."""
    return subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout.splitlines()


def _install_operator():
    from blender_cnn.ui.preferences import BCNN_OT_install_tensorflow

    return BCNN_OT_install_tensorflow


@pytest.mark.bpy
@pytest.mark.skipif(sys.platform == "win32", reason="pgrep lists the processes; Windows stops no process tree")
def test_esc_stops_the_install_and_leaves_nothing(python_folder):
    operator = _install_operator()
    job = environment.start_install(python_folder)
    driver = modal_driver(operator, job)
    context = modal_context()
    assert driver._start_modal(context) == {"RUNNING_MODAL"}
    deadline = time.monotonic() + 60
    while job.poll() == jobs.RUNNING and not running(f"{job.work_dir}.*ensurepip") and time.monotonic() < deadline:
        time.sleep(0.05)  # until venv runs ensurepip, a grandchild of the job's process
    assert job.state == jobs.RUNNING and "Esc to cancel" in job.status_text
    assert driver.modal(context, ESCAPE) == {"CANCELLED"}
    assert driver.reports[-1] == ({"WARNING"}, "Install TensorFlow cancelled; nothing was installed")
    assert job.process.returncode is not None
    assert leftovers(python_folder) == []
    assert not running(job.work_dir), "the CLI stops what it started, and what that started"


def test_no_environment_is_reported_as_installed_until_it_is_complete(tmp_path):
    assert environment.installed_environment(tmp_path) is None
    half = tmp_path / environment.ENVIRONMENT_NAME
    Path(environment.environment_python(half)).parent.mkdir(parents=True)
    Path(environment.environment_python(half)).write_text("")
    assert environment.installed_environment(tmp_path) is None, "no marker: the install did not finish"


# Runs inside a fresh Blender (bpy) process: argv = zip demo_run_dir. Blender's Python here has TensorFlow, so
# ``core.jobs`` is told it has none: the install and the import take the path of a Blender without it.
_INSTALL_SCRIPT = r"""
import json, sys, time
import bpy

zip_path, demo_run_dir = sys.argv[1:3]
package = "bl_ext.user_default.blender_cnn"
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
jobs = sys.modules[package + ".core.jobs"]
jobs.modules_in_this_python = lambda _modules: False
bpy.context.preferences.system.use_online_access = True  # as the user allows it; the install needs it
preferences = bpy.context.preferences.addons[package].preferences
result = {"python_before": preferences.python_path}
started = time.perf_counter()
result["install"] = sorted(bpy.ops.bcnn.install_tensorflow())
result["install_seconds"] = time.perf_counter() - started
result["python_after"] = preferences.python_path
result["user_folder"] = bpy.utils.extension_path_user(package)
result["marker"] = sys.modules[package + ".extract.environment"].installed_environment(
    result["user_folder"] + "/python")
ran_in = []
start_job = jobs.start_job
jobs.start_job = lambda task, python_path="", in_process=None: ran_in.append(python_path) or start_job(
    task, python_path, in_process)
started = time.perf_counter()
result["import"] = sorted(bpy.ops.bcnn.import_checkpoint(directory=demo_run_dir, frame_camera=False))
result["import_seconds"] = time.perf_counter() - started
result["ran_in"] = ran_in
result["bundle"] = bpy.context.view_layer.objects.active["blender_cnn_bundle"]
print("SETUP_RESULT:" + json.dumps(result))
"""


@pytest.mark.tf
@pytest.mark.bpy
@pytest.mark.slow
def test_install_tensorflow_sets_up_the_extractor_and_import_runs_there(extension_zip, demo_run_dir, tmp_path):
    started = time.perf_counter()
    result = run_in_fresh_blender(
        _INSTALL_SCRIPT, "SETUP_RESULT:", tmp_path / "user", extension_zip, demo_run_dir, timeout=1800
    )
    print(
        f"\ninstall {result['install_seconds']:.0f} s, import through it {result['import_seconds']:.0f} s, "
        f"whole test process {time.perf_counter() - started:.0f} s"
    )

    assert result["install"] == ["FINISHED"]
    folder = Path(result["user_folder"]) / "python"
    python = environment.environment_python(folder / environment.ENVIRONMENT_NAME)
    assert result["python_before"] == "" and result["python_after"] == python, "the preference is set"
    assert leftovers(folder) == [environment.ENVIRONMENT_NAME], "no work folder is left beside it"
    marker = result["marker"]
    requirements, no_deps = pins.extractor_requirements()
    assert marker["requirements"] == requirements and marker["no_deps"] == no_deps
    installed = {name: f"{name}=={version}" for name, version in marker["versions"].items()}
    assert [installed["tensorflow"].replace("tensorflow", "tensorflow-cpu"), installed["keras"]] == requirements[:2]
    assert installed["tf_keras"].replace("_", "-") == no_deps[0]
    # pip's own list of what is in the environment agrees, TensorFlow's CPU wheel and nothing of the full one.
    listed = json.loads(
        subprocess.run(
            [python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
        ).stdout
    )
    listed = {re.sub(r"[-_.]+", "-", entry["name"]).lower(): entry["version"] for entry in listed}
    assert "tensorflow" not in listed
    assert [
        f"{name}=={listed[name]}"
        for name in ("tensorflow-cpu", "keras", "h5py", "numpy", "onnx", "onnxruntime", "distributed")
    ] == requirements

    assert result["import"] == ["FINISHED"] and result["ran_in"] == [python]
    assert Path(result["bundle"]).is_file()


@pytest.mark.bpy
def test_the_preferences_offer_the_install_and_then_use_what_it_made(blender, python_folder):
    from types import SimpleNamespace

    from ui_recorder import RecordingLayout

    from blender_cnn.ui import preferences

    def drawn():
        settings = SimpleNamespace(
            layout=RecordingLayout(),
            python_path="",
            render_engine="CYCLES",
            render_samples=32,
            memory_budget=6.0,
            cluster_address="",
        )
        preferences.BCNN_AddonPreferences.draw(settings, blender.context)
        return settings.layout.record

    record = drawn()
    assert "bcnn.install_tensorflow" in record["operators"] and "python_path" in record["props"]
    assert any("tensorflow-cpu, keras and tf-keras" in label for label in record["labels"])
    assert "cluster_address" in record["props"]
    assert preferences.python_with_tensorflow(blender.context) == ""

    # What a finished install leaves: the environment's Python and, written last, its marker.
    made = python_folder / environment.ENVIRONMENT_NAME
    python = Path(environment.environment_python(made))
    python.parent.mkdir(parents=True)
    python.write_text("")
    requirements, no_deps = pins.extractor_requirements()
    (made / environment.MARKER_FILE).write_text(json.dumps({"requirements": requirements, "no_deps": no_deps}))
    assert any(label.startswith(f"Installed: {requirements[0]}") for label in drawn()["labels"])
    assert preferences.python_with_tensorflow(blender.context) == str(python)

    (made / environment.MARKER_FILE).write_text(json.dumps({"requirements": ["tensorflow-cpu==2.0.0"], "no_deps": []}))
    assert any("now needs other versions" in label for label in drawn()["labels"])
