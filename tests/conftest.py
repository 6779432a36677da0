"""The fixtures the test modules share: bundles (trained with Keras, or designed in numpy), a clean Blender file
with the add-on registered, networks built from those bundles, the user's folders, the designer's jobs and the
extension zip.
Test modules never import fixtures from each other; a module defines only the fixtures that build its own data
(the hand-written bundles of test_operations, the Keras models of test_inspection...). Helpers that several
modules call live in plain modules: scene_readers.py, ui_recorder.py, bundle_files.py.

Markers (registered in pyproject.toml): ``tf`` needs TensorFlow/Keras, ``bpy`` imports bpy or builds a scene,
``render`` renders an image, ``slow`` takes more than about 10 s, ``eevee`` renders with Eevee.
``pytest -m "not tf"`` is the tier without TensorFlow; with ``BCNN_BLOCK_TENSORFLOW=1`` in the environment,
importing TensorFlow, Keras or tf_keras fails in this process, which proves that tier needs none of them
(``make test-fast``).
"""

import os
import sys
import tempfile
from pathlib import Path

# Before bpy is imported anywhere: keep the user's own add-ons and settings out of the tests.
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender_cnn_user_")

BLOCKED_MODULES = ("tensorflow", "keras", "tf_keras")
if os.environ.get("BCNN_BLOCK_TENSORFLOW") == "1":
    # A None entry in sys.modules makes `import name` (and of its submodules) raise ModuleNotFoundError, and
    # importlib.util.find_spec(name) return None: this Python behaves as one without TensorFlow installed.
    for _name in BLOCKED_MODULES:
        if sys.modules.get(_name) is not None:
            raise RuntimeError(f"BCNN_BLOCK_TENSORFLOW=1, but {_name} was imported before tests/conftest.py")
        sys.modules[_name] = None

import pytest  # noqa: E402

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
def digits_design_bundle(tmp_path_factory):
    """The demo network's design with random weights, computed in numpy: no TensorFlow, no training.

    The shapes of ``demo_bundle`` (presets/digits_cnn.json), one epoch and five random 16x16 inputs
    (unlabelled): for the tests of layout, colors, panels and styles, which need no trained weights.
    """
    import numpy as np

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle

    inputs = np.random.default_rng(11).random((5, 16, 16, 1), dtype=np.float32)
    path = tmp_path_factory.mktemp("digits_design") / "digits_cnn.bcnn.npz"
    return load_bundle(design_bundle(DEMO_PRESET, path, seed=7, inputs=inputs))


# Input, stem, two residual blocks (block1: two convolutions and an Add; block2: one and an Add) and a head: the
# smallest graph of units and blocks (core/graph.py), made in numpy.
RESIDUAL_DESIGN = {
    "name": "residual",
    "input_shape": [8, 8, 1],
    "class_names": ["a", "b", "c"],
    "layers": [
        {"type": "Conv2D", "name": "stem", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "name": "block1_a", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "name": "block1_b", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "Add", "name": "block1_add", "inputs": ["stem", "block1_b"]},
        {"type": "Conv2D", "name": "block2_a", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "Add", "name": "block2_add", "inputs": ["block1_add", "block2_a"]},
        {"type": "GlobalAveragePooling2D", "name": "pool"},
        {"type": "Dense", "name": "output", "units": 3, "activation": "softmax"},
    ],
}


@pytest.fixture(scope="session")
def residual_design_bundle(tmp_path_factory):
    """``RESIDUAL_DESIGN`` with random weights, computed in numpy: a network of blocks without TensorFlow."""
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle

    path = tmp_path_factory.mktemp("residual_design") / "residual.bcnn.npz"
    return load_bundle(design_bundle(RESIDUAL_DESIGN, path, seed=1))


@pytest.fixture(scope="session")
def registered_addon():
    import blender_cnn
    from blender_cnn.nodes import prebuilt

    # The groups are built from code, whether or not this tree holds a prebuilt asset (a build product, not in
    # git): the same tests on every machine. test_prebuilt_groups.py builds an asset and turns it on itself.
    prebuilt.enabled = False
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


@pytest.fixture(scope="session")
def keras():
    """Keras (and so TensorFlow), imported once, its C++ logging quiet. Tests that take it are marked ``tf``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def build_extension():
    """scripts/build_extension.py, imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_extension", REPO / "scripts" / "build_extension.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def extension_zip(build_extension, tmp_path_factory):
    """The add-on's extension zip, as a user downloads it: built once per session."""
    work = tmp_path_factory.mktemp("extension")
    return build_extension.build_extension(work / "dist", stage_dir=work / "stage")


@pytest.fixture
def demo_run_dir(demo_bundle_path):
    """The demo's run folder: its checkpoints (epoch_*.keras), samples.npz and the extracted bundle."""
    return demo_bundle_path.parent


# ---------------------------------------------------------------- networks in a scene


def _built(bundle, **options):
    from blender_cnn.scene.network import build_network

    return build_network(bundle, **options)


@pytest.fixture
def designed_network(blender, digits_design_bundle):
    """The digits design's scene, showing sample 3 (no TensorFlow)."""
    return _built(digits_design_bundle, sample=3)


@pytest.fixture
def staged_designed_network(blender, digits_design_bundle):
    """The digits design's scene on the stage (camera, light, world), and the active object."""
    from blender_cnn.scene.stage import set_up_stage

    network = _built(digits_design_bundle)
    set_up_stage(network, blender.context.scene)
    blender.context.view_layer.objects.active = network
    return network


@pytest.fixture
def demo_network(blender, demo_bundle):
    """The trained demo's scene as it is built by default (last epoch, sample 0)."""
    return _built(demo_bundle)


@pytest.fixture
def demo_network_at_sample_2(blender, demo_bundle):
    """The trained demo's scene showing sample 2."""
    return _built(demo_bundle, sample=2)


@pytest.fixture
def inspected_demo_network(blender, demo_bundle):
    """The trained demo's scene showing sample 3 (also on its Sample input), and the active object."""
    from blender_cnn.scene.network import set_network_input

    network = _built(demo_bundle, sample=3)
    set_network_input(network, "Sample", 3.0)
    blender.context.view_layer.objects.active = network
    return network


# ---------------------------------------------------------------- the user's folders and settings


@pytest.fixture
def bundle_folder(tmp_path, monkeypatch):
    """Where the import operators put extracted bundles, instead of the system's temporary folder."""
    from blender_cnn.ui import preferences

    folder = tmp_path / "bundles"
    monkeypatch.setattr(preferences, "bundle_folder", lambda: str(folder))
    return folder


@pytest.fixture
def user_styles(monkeypatch, tmp_path):
    """The user's style presets folder, in a temporary folder."""
    import blender_cnn.scene.style as style

    folder = tmp_path / "user_styles"
    monkeypatch.setattr(style, "user_styles_folder", lambda: str(folder))
    return folder


# ---------------------------------------------------------------- the designer and its jobs


@pytest.fixture
def bpy_designer(blender, tmp_path, monkeypatch):
    """bpy with a clean file, the designer (registered with the add-on), and its user folders in tmp_path."""
    from blender_cnn.designer import operators

    monkeypatch.setattr(operators, "user_presets_folder", lambda: str(tmp_path / "presets"))
    monkeypatch.setattr(operators, "design_cache_folder", lambda: str(tmp_path / "designs"))
    (tmp_path / "designs").mkdir()
    return blender


@pytest.fixture
def runs(bpy_designer, tmp_path, monkeypatch):
    """Trainings' default run folders in a temporary folder."""
    from blender_cnn.designer import tensorflow_operators

    folder = tmp_path / "runs"
    monkeypatch.setattr(tensorflow_operators, "runs_folder", lambda: str(folder))
    return folder


@pytest.fixture
def external_python(monkeypatch):
    """Jobs run in another Python (this one, named in the preferences), as in a Blender without TensorFlow."""
    from blender_cnn.core import jobs
    from blender_cnn.ui import preferences

    monkeypatch.setattr(jobs, "modules_in_this_python", lambda _modules: False)
    monkeypatch.setattr(preferences, "python_with_tensorflow", lambda _context: sys.executable)


@pytest.fixture
def slow_forward_pass(monkeypatch):
    """Every layer of the numpy forward pass takes a while, as a big design's do."""
    import time

    from blender_cnn.core import forward

    compute_layer = forward.compute_layer

    def slow(*args, **kwargs):
        time.sleep(0.08)
        return compute_layer(*args, **kwargs)

    monkeypatch.setattr(forward, "compute_layer", slow)
