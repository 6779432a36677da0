"""The network bundle: one ``.npz`` file with a JSON manifest and numpy arrays.

The bundle is the contract between the extractor (TensorFlow) and the add-on
(numpy + bpy). It is read with ``allow_pickle=False`` and validated on load
and on write, so a file that does not fit the format is refused with one
message naming the file and what is wrong. ``docs/bundle-format.md`` is the
written specification; keep the two in step.
"""

import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from .errors import BlenderCNNError

FORMAT_NAME = "blender_cnn.bundle"
FORMAT_VERSION = 1
MANIFEST_KEY = "manifest.json"
FILE_SUFFIX = ".bcnn.npz"


@dataclass(frozen=True)
class WeightInfo:
    name: str
    array: str
    shape: tuple


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the graph, as the manifest describes it."""

    index: int
    name: str
    type: str
    inputs: tuple
    output_shape: tuple
    config: dict
    params: int
    weights: tuple
    activations: str

    @property
    def is_spatial(self):
        """True for layers whose output is a stack of 2D feature maps (H, W, C)."""
        return len(self.output_shape) == 3


class Bundle:
    """A validated bundle. Arrays are read from the file when first asked for."""

    def __init__(self, path, manifest, arrays):
        self.path = str(path)
        self.manifest = manifest
        self._arrays = arrays
        self.layers = tuple(_layer_info(i, layer) for i, layer in enumerate(manifest["layers"]))
        self._by_name = {layer.name: layer for layer in self.layers}

    @property
    def name(self):
        return self.manifest["name"]

    @property
    def epochs(self):
        return list(self.manifest["epochs"])

    @property
    def class_names(self):
        return list(self.manifest["class_names"])

    @property
    def input_shape(self):
        return tuple(self.manifest["input_shape"])

    @property
    def sample_count(self):
        return int(self.array(self.manifest["samples"]["inputs"]).shape[0])

    def layer(self, name):
        try:
            return self._by_name[name]
        except KeyError:
            raise BlenderCNNError(self.path, f"has no layer named {name!r}") from None

    def array(self, key):
        return self._arrays[key]

    def epoch_index(self, epoch):
        """Position of ``epoch`` on the epoch axis; negative numbers count from the end."""
        epochs = self.epochs
        if epoch < 0:
            epoch = epochs[epoch]
        if epoch not in epochs:
            raise BlenderCNNError(self.path, f"has no epoch {epoch}; it holds epochs {epochs}")
        return epochs.index(epoch)

    def activations(self, layer_name, epoch=-1, sample=0):
        """One layer's output for one epoch and sample, shaped like the layer's output."""
        layer = self.layer(layer_name)
        values = self.array(layer.activations)
        if not 0 <= sample < values.shape[1]:
            raise BlenderCNNError(self.path, f"has {values.shape[1]} samples; sample {sample} does not exist")
        epoch_axis = self.epoch_index(epoch) if values.shape[0] > 1 else 0
        return values[epoch_axis, sample]

    def weights(self, layer_name, epoch=-1):
        """``{weight name: array}`` of one layer at one epoch."""
        layer = self.layer(layer_name)
        index = self.epoch_index(epoch)
        return {weight.name: self.array(weight.array)[index] for weight in layer.weights}

    def metric(self, name):
        key = self.manifest.get("metrics", {}).get(name)
        return None if key is None else self.array(key)


def load_bundle(path):
    """Read and validate a bundle; raise BlenderCNNError naming the file otherwise."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such file")
    if not zipfile.is_zipfile(path):
        raise BlenderCNNError(path, "is not a network bundle (expected a .npz archive written by blender_cnn)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as error:
        raise BlenderCNNError(path, f"holds an array numpy cannot read without pickle ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise BlenderCNNError(path, f"is damaged and cannot be read ({error})") from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise BlenderCNNError(path, f"member {key!r} is not a .npy array; every member of a bundle must be one")
    manifest = _read_manifest(path, arrays.pop(MANIFEST_KEY, None))
    validate(path, manifest, arrays)
    return Bundle(path, manifest, arrays)


def write_bundle(path, manifest, arrays):
    """Validate ``manifest`` against ``arrays`` and write them as one bundle file."""
    path = os.fspath(path)
    manifest = dict(manifest, format=FORMAT_NAME, version=FORMAT_VERSION)
    arrays = {key: np.ascontiguousarray(value) for key, value in arrays.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:  # np.savez would pickle it, and readers refuse pickles
            raise BlenderCNNError(path, f"array {key!r} holds Python objects; bundles hold numbers only")
    validate(path, manifest, arrays)
    encoded = np.frombuffer(json.dumps(manifest, indent=1).encode("utf-8"), dtype=np.uint8)
    tmp_path = path + ".partial"
    with open(tmp_path, "wb") as handle:
        np.savez(handle, **{MANIFEST_KEY: encoded}, **arrays)
    os.replace(tmp_path, path)
    return path


def _read_manifest(path, encoded):
    if encoded is None:
        raise BlenderCNNError(path, f"has no {MANIFEST_KEY}; it is a .npz file but not a network bundle")
    try:
        manifest = json.loads(encoded.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BlenderCNNError(path, f"{MANIFEST_KEY} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise BlenderCNNError(path, f"{MANIFEST_KEY} must be a JSON object")
    return manifest


def validate(path, manifest, arrays):
    """Check the manifest's fields and that every array it names exists with its shape."""

    def fail(message):
        raise BlenderCNNError(path, message)

    if manifest.get("format") != FORMAT_NAME:
        fail(f"manifest format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or version < 1:
        fail(f"manifest version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        fail(f"is bundle version {version}; this blender_cnn reads up to version {FORMAT_VERSION}, please update the add-on")
    for field, kind in (("name", str), ("input_shape", list), ("class_names", list), ("epochs", list),
                        ("layers", list), ("samples", dict)):
        if not isinstance(manifest.get(field), kind):
            fail(f"manifest field {field!r} is missing or not a {kind.__name__}")
    epochs = manifest["epochs"]
    if not epochs or not all(isinstance(e, int) for e in epochs) or sorted(set(epochs)) != epochs:
        fail(f"manifest 'epochs' must be increasing integers, got {epochs}")
    if not _is_shape(manifest["input_shape"]):
        fail(f"manifest 'input_shape' must be a list of positive integers, got {manifest['input_shape']}")
    if not isinstance(manifest.get("metrics", {}), dict):
        fail("manifest field 'metrics' must be a dict of metric name to array name")
    if not manifest["layers"]:
        fail("manifest lists no layers")
    epoch_count = len(epochs)
    class_count = len(manifest["class_names"])

    def check_array(key, expected_shape, what, dtype_kind="f"):
        if key not in arrays:
            fail(f"{what}: array {key!r} is missing")
        array = arrays[key]
        if array.dtype != (np.float32 if dtype_kind == "f" else np.int32):
            fail(f"{what}: array {key!r} has dtype {array.dtype}, expected {'float32' if dtype_kind == 'f' else 'int32'}")
        if len(array.shape) != len(expected_shape) or any(
                want is not None and want != got for want, got in zip(expected_shape, array.shape)):
            shown = tuple("*" if want is None else want for want in expected_shape)
            fail(f"{what}: array {key!r} has shape {array.shape}, expected {shown}")
        return array

    samples = manifest["samples"]
    for field in ("inputs", "labels", "predictions"):
        if not isinstance(samples.get(field), str):
            fail(f"manifest 'samples' lacks the array name {field!r}")
    inputs = check_array(samples["inputs"], (None, *manifest["input_shape"]), "samples inputs")
    sample_count = inputs.shape[0]
    check_array(samples["labels"], (sample_count,), "samples labels", dtype_kind="i")
    check_array(samples["predictions"], (epoch_count, sample_count, class_count), "samples predictions")
    for metric, key in manifest.get("metrics", {}).items():
        check_array(key, (epoch_count,), f"metric {metric!r}")

    seen = set()
    for position, layer in enumerate(manifest["layers"]):
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str):
            fail(f"layer #{position} has no name")
        where = f"layer {layer['name']!r}"
        if layer["name"] in seen:
            fail(f"{where} appears twice")
        for field, kind in (("type", str), ("inputs", list), ("output_shape", list), ("weights", list),
                            ("activations", str)):
            if not isinstance(layer.get(field), kind):
                fail(f"{where}: field {field!r} is missing or not a {kind.__name__}")
        if not _is_shape(layer["output_shape"]):
            fail(f"{where}: 'output_shape' must be a list of positive integers, got {layer['output_shape']}")
        if not isinstance(layer.get("config", {}), dict) or not isinstance(layer.get("params", 0), int):
            fail(f"{where}: 'config' must be a dict and 'params' an integer")
        for source in layer["inputs"]:
            if source not in seen:
                fail(f"{where} takes input from {source!r}, which is not a layer listed before it")
        for weight in layer["weights"]:
            if not isinstance(weight, dict) or not {"name", "array", "shape"} <= weight.keys():
                fail(f"{where}: each weight needs 'name', 'array' and 'shape'")
            if not _is_shape(weight["shape"], allow_empty=True):
                fail(f"{where} weight {weight['name']!r}: 'shape' must be a list of positive integers")
            check_array(weight["array"], (epoch_count, *weight["shape"]), f"{where} weight {weight['name']!r}")
        values = arrays.get(layer["activations"])
        leading = 1 if values is not None and values.ndim and values.shape[0] == 1 else epoch_count
        check_array(layer["activations"], (leading, sample_count, *layer["output_shape"]), f"{where} activations")
        seen.add(layer["name"])


def _is_shape(value, allow_empty=False):
    return (isinstance(value, list) and (allow_empty or bool(value))
            and all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in value))


def _layer_info(index, layer):
    return LayerInfo(
        index=index,
        name=layer["name"],
        type=layer["type"],
        inputs=tuple(layer["inputs"]),
        output_shape=tuple(layer["output_shape"]),
        config=dict(layer.get("config", {})),
        params=int(layer.get("params", 0)),
        weights=tuple(WeightInfo(w["name"], w["array"], tuple(w["shape"])) for w in layer["weights"]),
        activations=layer["activations"],
    )
