"""Designs exported as Keras models; designs, .keras files and image folders trained into runs and bundles."""

import copy
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from blender_cnn.core import design as designs  # noqa: E402
from blender_cnn.core import forward as forward_pass  # noqa: E402
from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.core.presets import check_preset  # noqa: E402
from blender_cnn.extract.datasets import load_dataset, load_image_folder  # noqa: E402
from blender_cnn.extract.export import export_keras  # noqa: E402
from blender_cnn.extract.keras_bundle import extract_run  # noqa: E402
from blender_cnn.extract.keras_models import load_network  # noqa: E402
from blender_cnn.extract.training import train_run  # noqa: E402

pytestmark = pytest.mark.tf
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "train.py"
EPOCHS = 2
# A design, not a preset: 'flatten' names 'conv', which is listed after it.
DESIGN = {
    "name": "tiny_design",
    "input_shape": [8, 8, 3],  # three channels: digits get the grey value in each
    "class_names": [str(digit) for digit in range(10)],
    "layers": [
        {"type": "Flatten", "name": "flatten", "inputs": ["pool"]},
        {"type": "Conv2D", "name": "conv", "filters": 3, "kernel_size": 3, "activation": "relu", "inputs": ["input"]},
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 2, "inputs": ["conv"]},
        {"type": "Dense", "name": "output", "units": 10, "activation": "softmax", "inputs": ["flatten"]},
    ],
    "training": {"dataset": "digits", "epochs": EPOCHS, "batch_size": 128, "learning_rate": 0.01, "seed": 1},
}
CLASSES = ["circle", "cross", "stripes"]


def quiet(*_args, **_kwargs):
    pass


def train_script():
    spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_image_folder(folder, classes=CLASSES, per_class=4, size=(12, 10)):
    """Images of three tell-apart kinds (RGB PNGs of different sizes), one subfolder per class."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    patterns = [
        ((rows - size[0] / 2) ** 2 + (cols - size[1] / 2) ** 2 < 12).astype(float),
        ((rows == cols) | (rows == size[1] - 1 - cols)).astype(float),
        (rows % 3 == 0).astype(float),
    ]
    for label, name in enumerate(classes):
        os.makedirs(folder / name, exist_ok=True)
        for index in range(per_class):
            image = np.clip(patterns[label % 3][..., None] * 200 + rng.uniform(0, 50, (*size, 3)), 0, 255)
            keras.utils.save_img(folder / name / f"{index}.png", image.astype(np.uint8), scale=False)
    return folder


# ---------------------------------------------------------------- export


def test_exported_lenet5_loads_in_safe_mode_and_computes_the_designed_scene(tmp_path):
    preset_path = REPO / "presets" / "lenet5.json"
    path = export_keras(preset_path, tmp_path / "lenet5.keras", seed=4)
    assert path == str(tmp_path / "lenet5.keras")
    model = keras.saving.load_model(path, safe_mode=True)
    infos = designs.validate_design(preset_path)
    assert [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:])) for layer in model.layers] == [
        (info.name, info.type, info.output_shape) for info in infos
    ]
    assert model.count_params() == designs.total_parameters(infos)

    # The designed scene (random weights of the same seed) and Keras compute the same thing.
    bundle = load_bundle(designs.design_bundle(preset_path, tmp_path / "lenet5.bcnn.npz", seed=4))
    inputs = bundle.array("samples/inputs")
    numpy_outputs = forward_pass.forward(bundle, inputs)
    probe = keras.Model(model.input, [layer.output for layer in model.layers[1:]])
    for layer, values in zip(model.layers[1:], probe.predict(inputs, verbose=0)):
        np.testing.assert_allclose(values, numpy_outputs[layer.name], atol=2e-5, err_msg=layer.name)


def test_a_design_in_any_order_exports_in_preset_order(tmp_path):
    model = keras.saving.load_model(export_keras(DESIGN, tmp_path / "tiny.keras", seed=None), safe_mode=True)
    assert [layer.name for layer in model.layers] == ["input", "conv", "pool", "flatten", "output"]
    assert tuple(model.output.shape) == (None, 10)


def test_export_refuses_an_invalid_design_with_every_reason(tmp_path):
    broken = copy.deepcopy(DESIGN)
    broken["layers"][1]["kernel_size"] = 9  # larger than the 8x8 input
    broken["layers"].insert(0, {"type": "Dropout", "name": "side", "rate": 0.5, "inputs": ["input"]})
    with pytest.raises(BlenderCNNError, match="tiny_design.*has 2 problems") as caught:
        export_keras(broken, tmp_path / "broken.keras")
    assert "conv: kernel 9x9 is larger than its 8x8 input" in str(caught.value)
    assert "side: leads nowhere" in str(caught.value)
    assert not (tmp_path / "broken.keras").exists()
    with pytest.raises(BlenderCNNError, match="must end in .keras"):
        export_keras(DESIGN, tmp_path / "tiny.h5")


# ---------------------------------------------------------------- datasets


def test_digits_fill_three_channels_and_bad_dataset_specs_are_refused():
    grey = load_dataset("digits", [8, 8, 1], 0.2, 0)
    rgb = load_dataset("digits", [8, 8, 3], 0.2, 0)
    assert rgb.x_train.shape == grey.x_train.shape[:3] + (3,)
    np.testing.assert_array_equal(rgb.x_train, np.repeat(grey.x_train, 3, axis=-1))
    assert load_network(REPO / "presets" / "tiny_vgg.json")["input_shape"] == [64, 64, 3]
    for spec, message in ((" mnist", "unknown"), ({"folder": ""}, "one key 'folder'"), ({"path": "x"}, "one key")):
        with pytest.raises(BlenderCNNError, match=message):
            check_preset(
                {**DESIGN, "layers": [{"type": "Dense", "name": "d", "units": 10}], "training": {"dataset": spec}}
            )


def test_image_folder_errors_name_the_folder_or_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BlenderCNNError, match=f"^{re.escape(str(empty))}: has no class subfolders"):
        load_image_folder(empty, [8, 8, 1])
    (empty / "only").mkdir()
    with pytest.raises(BlenderCNNError, match=f"^{re.escape(str(empty))}: has one class subfolder \\('only'\\)"):
        load_image_folder(empty, [8, 8, 1])
    (empty / "other").mkdir()
    (empty / "only" / "notes.txt").write_text("not an image")
    with pytest.raises(BlenderCNNError, match=f"^{re.escape(str(empty))}: holds no images"):
        load_image_folder(empty, [8, 8, 1])
    with pytest.raises(BlenderCNNError, match="no such image folder"):
        load_image_folder(tmp_path / "missing", [8, 8, 1])

    folder = write_image_folder(tmp_path / "images", per_class=2)
    (folder / "cross" / "1.png").write_bytes(b"not a png at all")
    with pytest.raises(
        BlenderCNNError, match=f"^{re.escape(str(folder / 'cross' / '1.png'))}: cannot be decoded as an image"
    ):
        load_image_folder(folder, [8, 8, 1])
    (folder / "cross" / "1.png").unlink()
    with pytest.raises(BlenderCNNError, match=r"at least 2 images per class .* cross \(1\)"):
        load_image_folder(folder, [8, 8, 1])


def test_image_folder_dataset_is_sized_split_per_class_and_named(tmp_path):
    folder = write_image_folder(tmp_path / "images", per_class=5)
    dataset = load_image_folder(folder, [6, 6, 1], validation_split=0.4, seed=2)
    assert dataset.class_names == CLASSES and dataset.name == "folder:images"
    assert dataset.x_train.shape == (9, 6, 6, 1) and dataset.x_val.shape == (6, 6, 6, 1)
    assert np.bincount(dataset.y_val).tolist() == [2, 2, 2]
    assert 0.0 <= dataset.x_train.min() and dataset.x_train.max() <= 1.0
    assert "RGB to grey" in dataset.preprocessing["color"]
    again = load_image_folder(folder, [6, 6, 1], validation_split=0.4, seed=2)
    np.testing.assert_array_equal(again.val_source_index, dataset.val_source_index)


# ---------------------------------------------------------------- training


def test_train_a_design_into_a_run_and_a_bundle(tmp_path):
    run = train_run(DESIGN, tmp_path / "run", log=quiet)
    assert run["preset"]["layers"][0]["name"] == "conv" and run["preset_path"] is None
    bundle = load_bundle(extract_run(tmp_path / "run", tmp_path / "tiny.bcnn.npz", log=quiet))
    assert bundle.epochs == [0, 1, 2]
    assert tuple(bundle.input_shape) == (8, 8, 3) and bundle.class_names == DESIGN["class_names"]
    assert train_run(DESIGN, tmp_path / "run", log=quiet) == run  # a finished run is reused


@pytest.mark.slow
def test_script_trains_a_design_file_on_its_image_folder_and_writes_the_bundle(tmp_path):
    """The whole "design, train, import the epochs" path in one command, the folder relative to the design."""
    write_image_folder(tmp_path / "designs" / "shapes")
    design = {
        **DESIGN,
        "name": "shapes",
        "class_names": ["a", "b", "c"],
        "layers": DESIGN["layers"][:-1] + [{**DESIGN["layers"][-1], "units": 3}],
        "training": {**DESIGN["training"], "dataset": {"folder": "shapes"}, "batch_size": 4},
    }
    (tmp_path / "designs" / "shapes.json").write_text(json.dumps(design))
    completed = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--preset",
            str(tmp_path / "designs" / "shapes.json"),
            "--run-dir",
            "run",
            "--bundle",
            "shapes.bcnn.npz",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    bundle = load_bundle(tmp_path / "shapes.bcnn.npz")
    assert bundle.epochs == [0, 1, 2]
    assert bundle.class_names == CLASSES  # the folders' names, not the design's placeholders
    assert bundle.array("samples/labels").tolist() == [0, 1, 2]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["preset"]["training"]["dataset"] == {"folder": str(tmp_path / "designs" / "shapes")}


def test_script_trains_a_keras_file_on_images_given_on_the_command_line(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "images", classes=CLASSES[:2], per_class=3)
    small = {
        **DESIGN,
        "class_names": ["x", "y"],
        "input_shape": [8, 8, 1],
        "layers": DESIGN["layers"][:-1] + [{**DESIGN["layers"][-1], "units": 2}],
    }
    model_path = export_keras(small, tmp_path / "small.keras", seed=5)
    script = train_script()
    assert (
        script.main(
            [
                "--model",
                model_path,
                "--images",
                str(folder),
                "--epochs",
                "2",
                "--run-dir",
                str(tmp_path / "run"),
                "--bundle",
                str(tmp_path / "small.bcnn.npz"),
            ]
        )
        == 0
    )
    bundle = load_bundle(tmp_path / "small.bcnn.npz")
    assert bundle.epochs == [0, 1, 2] and bundle.class_names == CLASSES[:2]
    # Epoch 0 is the file as it was given.
    np.testing.assert_array_equal(
        bundle.weights("conv", 0)["kernel"], designs.random_weights(small, 5)["conv"]["kernel"]
    )
    capsys.readouterr()

    # A model whose outputs do not fit the classes is refused on one line.
    assert script.main(["--model", model_path, "--run-dir", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model_path}: outputs shape (2,), but dataset 'digits' has 10 classes")
    assert err.count("\n") == 1


def test_script_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    script = train_script()
    broken = copy.deepcopy(DESIGN)
    broken["layers"][1]["kernel_size"] = 9
    broken["layers"].insert(0, {"type": "Dropout", "name": "side", "rate": 0.5, "inputs": ["input"]})
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    empty, one_class = tmp_path / "empty", tmp_path / "one_class"
    empty.mkdir()
    (one_class / "cats").mkdir(parents=True)
    images = write_image_folder(tmp_path / "images", per_class=2)
    (images / "stripes" / "0.png").write_bytes(b"garbage")
    cases = [
        (
            ["--preset", str(tmp_path / "broken.json")],
            f"{tmp_path / 'broken.json'}: has 2 problems: side: leads nowhere: no layer takes its output and it is "
            "not the last layer (the output); conv: kernel 9x9",
        ),
        (
            ["--preset", str(REPO / "presets" / "lenet5.json"), "--images", str(empty)],
            f"{empty}: has no class subfolders",
        ),
        (
            ["--preset", str(REPO / "presets" / "lenet5.json"), "--images", str(one_class)],
            f"{one_class}: has one class subfolder",
        ),
        (
            ["--preset", str(REPO / "presets" / "lenet5.json"), "--images", str(images)],
            f"{images / 'stripes' / '0.png'}: cannot be decoded",
        ),
        (["--model", str(tmp_path / "missing.keras")], f"{tmp_path / 'missing.keras'}: no such Keras model file"),
    ]
    for index, (argv, start) in enumerate(cases):
        assert script.main(argv + ["--run-dir", str(tmp_path / f"run{index}")]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"error: {start}") and err.count("\n") == 1, err
