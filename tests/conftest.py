"""Shared fixtures: a trained demo bundle, and a clean Blender file with the add-on registered."""

import os
import tempfile
from pathlib import Path

# Before bpy is imported anywhere: keep the user's own add-ons and settings out of the tests.
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender_cnn_user_")

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO_PRESET = REPO / "presets" / "digits_cnn.json"
TEST_EPOCHS = 2


def _quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="session")
def demo_bundle_path(tmp_path_factory):
    """The demo network trained for a few epochs and extracted: a real bundle, made once per session."""
    from blender_cnn.extract.keras_bundle import extract_run
    from blender_cnn.extract.training import train_run

    run_dir = tmp_path_factory.mktemp("digits_run")
    train_run(DEMO_PRESET, run_dir, epochs=TEST_EPOCHS, log=_quiet)
    return Path(extract_run(run_dir, run_dir / "digits_cnn.bcnn.npz", log=_quiet))


@pytest.fixture(scope="session")
def demo_bundle(demo_bundle_path):
    from blender_cnn.core.bundle import load_bundle

    return load_bundle(demo_bundle_path)


@pytest.fixture(scope="session")
def registered_addon():
    import blender_cnn

    blender_cnn.register()
    yield blender_cnn
    blender_cnn.unregister()


@pytest.fixture
def blender(registered_addon):
    """bpy with a fresh default file (add-on still registered) and nothing else in the scene."""
    import bpy

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    return bpy
