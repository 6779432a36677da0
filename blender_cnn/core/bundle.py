"""The network bundle: one ``.npz`` file with a JSON manifest and numpy arrays.

The bundle is the contract between the extractor (TensorFlow) and the add-on
(numpy + bpy). It is read without pickle and validated on load and on write,
so a file that does not fit the format is refused with one message naming the
file and what is wrong. ``docs/bundle-format.md`` is the written
specification; keep the two in step.

Loading reads only the manifest and the ``.npy`` headers; an array's data is
read when it is first asked for, so opening a large network costs little.
Writing goes through ``BundleWriter``, which takes big arrays slice by slice
and keeps them in temporary files, so a writer never needs every epoch of
every layer in memory at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, KeysView, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, NoReturn

import numpy as np
import numpy.typing as npt

from .errors import BlenderCNNError

FORMAT_NAME = "blender_cnn.bundle"
FORMAT_VERSION = 4
MANIFEST_KEY = "manifest.json"
FILE_SUFFIX = ".bcnn.npz"
# Activation arrays may be stored in these dtypes from version 2 on; everything else stays float32/int32.
ACTIVATION_DTYPES = ("float32", "float16")
UNLABELLED = -1  # the label of a sample whose class is not known (an image file), from version 2 on
IMPORTANCE_VERSION = 3  # the first version with importance and output gradients
MULTI_IO_VERSION = 4  # the first version with several inputs or output heads (the manifest's inputs and outputs)
COPY_CHUNK_BYTES = 16 * 1024 * 1024

# (shape, dtype) of an array, from its .npy header.
Header = tuple[tuple[int, ...], np.dtype]


@dataclass(frozen=True)
class WeightInfo:
    name: str
    array: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the graph, as the manifest describes it."""

    index: int
    name: str
    type: str
    inputs: tuple[str, ...]
    output_shape: tuple[int, ...]
    config: dict[str, Any]
    params: int
    weights: tuple[WeightInfo, ...]
    activations: str
    importance: str | None = None  # array key, version 3: (E, K+1, channels) float32
    output_gradients: str | None = None  # array key, version 3, Dense layers: (E, S, K, units) float32

    @property
    def is_spatial(self) -> bool:
        """True for layers whose output is a stack of 2D feature maps (H, W, C)."""
        return len(self.output_shape) == 3


@dataclass(frozen=True)
class InputInfo:
    """One input layer of the network and its samples (the manifest's ``inputs``, version 4)."""

    layer: str
    shape: tuple[int, ...]
    array: str  # array key: (S, *shape) float32, the samples as fed to this input


@dataclass(frozen=True)
class OutputInfo:
    """One output head of the network: its layer, classes and the samples' predictions and labels (version 4)."""

    layer: str
    class_names: tuple[str, ...]
    predictions: str  # array key: (E, S, K) float32, K = len(class_names)
    labels: str  # array key: (S,) int32, -1 where not known


class Bundle:
    """A validated bundle. Arrays are read from the file when first asked for.

    ``array(key)`` returns an array as it is stored: activation arrays may be
    float16 (version 2). ``activations()`` always returns float32.
    """

    def __init__(
        self, path: str | os.PathLike[str], manifest: dict[str, Any], arrays: _LazyArrays | Mapping[str, np.ndarray]
    ) -> None:
        self.path = str(path)
        self.manifest = manifest
        self._arrays = arrays
        self.layers = tuple(_layer_info(i, layer) for i, layer in enumerate(manifest["layers"]))
        self._by_name = {layer.name: layer for layer in self.layers}

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def epochs(self) -> list[int]:
        return list(self.manifest["epochs"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["input_shape"])

    @property
    def sample_count(self) -> int:
        return int(self.array(self.manifest["samples"]["inputs"]).shape[0])

    @property
    def inputs(self) -> tuple[InputInfo, ...]:
        """Every input layer with its samples, in the model's order; the first is the one ``input_shape`` and
        ``samples.inputs`` describe. Files without the manifest's ``inputs`` (one input) give that one."""
        listed = self.manifest.get("inputs")
        if listed:
            return tuple(InputInfo(entry["layer"], tuple(entry["shape"]), entry["array"]) for entry in listed)
        first = next((layer for layer in self.layers if not layer.inputs), self.layers[0])
        return (InputInfo(first.name, self.input_shape, self.manifest["samples"]["inputs"]),)

    @property
    def outputs(self) -> tuple[OutputInfo, ...]:
        """Every output head, in the model's order; the first is the one ``class_names`` and the samples'
        ``predictions`` and ``labels`` describe. Files without the manifest's ``outputs`` give the last layer."""
        listed = self.manifest.get("outputs")
        if listed:
            return tuple(
                OutputInfo(entry["layer"], tuple(entry["class_names"]), entry["predictions"], entry["labels"])
                for entry in listed
            )
        samples = self.manifest["samples"]
        return (OutputInfo(self.layers[-1].name, tuple(self.class_names), samples["predictions"], samples["labels"]),)

    def layer(self, name: str) -> LayerInfo:
        try:
            return self._by_name[name]
        except KeyError:
            raise BlenderCNNError(self.path, f"has no layer named {name!r}") from None

    def array(self, key: str) -> np.ndarray:
        return self._arrays[key]

    def epoch_index(self, epoch: int) -> int:
        """Position of ``epoch`` on the epoch axis; negative numbers count from the end."""
        epochs = self.epochs
        if epoch < 0:
            epoch = epochs[epoch]
        if epoch not in epochs:
            raise BlenderCNNError(self.path, f"has no epoch {epoch}; it holds epochs {epochs}")
        return epochs.index(epoch)

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    def activations(self, layer_name: str, epoch: int = -1, sample: int = 0) -> np.ndarray:
        """One layer's output for one epoch and sample as float32, shaped like the layer's output."""
        layer = self.layer(layer_name)
        values = self.array(layer.activations)
        if not 0 <= sample < values.shape[1]:
            raise BlenderCNNError(self.path, f"has {values.shape[1]} samples; sample {sample} does not exist")
        epoch_axis = self.epoch_index(epoch) if values.shape[0] > 1 else 0
        return np.asarray(values[epoch_axis, sample], dtype=np.float32)

    def layer_activations(self, layer_name: str, epoch: int = -1) -> np.ndarray:
        """One layer's output for every sample at one epoch as float32, ``(S, *output_shape)``."""
        layer = self.layer(layer_name)
        values = self.array(layer.activations)
        return np.asarray(values[self.epoch_index(epoch) if values.shape[0] > 1 else 0], dtype=np.float32)

    @property
    def importance_info(self) -> dict[str, Any] | None:
        """The manifest's ``importance`` object (how the stored importance was computed), or None."""
        return self.manifest.get("importance")

    def importance(self, layer_name: str, epoch: int = -1) -> np.ndarray | None:
        """Stored importance of one layer at one epoch, ``(K+1, channels)`` float32, or None if it has none.

        Row ``k < K`` is class ``k``, row ``K`` all classes; see docs/importance.md.
        """
        layer = self.layer(layer_name)
        return None if layer.importance is None else self.array(layer.importance)[self.epoch_index(epoch)]

    def output_gradients(self, layer_name: str, epoch: int = -1) -> np.ndarray | None:
        """d(score_k)/d(pre-activation) of a Dense layer at one epoch, ``(S, K, units)`` float32, or None."""
        layer = self.layer(layer_name)
        if layer.output_gradients is None:
            return None
        return self.array(layer.output_gradients)[self.epoch_index(epoch)]

    def weights(self, layer_name: str, epoch: int = -1) -> dict[str, np.ndarray]:
        """``{weight name: array}`` of one layer at one epoch."""
        layer = self.layer(layer_name)
        index = self.epoch_index(epoch)
        return {weight.name: self.array(weight.array)[index] for weight in layer.weights}

    def metric(self, name: str) -> np.ndarray | None:
        key = self.manifest.get("metrics", {}).get(name)
        return None if key is None else self.array(key)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read and validate a bundle; raise BlenderCNNError naming the file otherwise.

    Only the manifest and the array headers are read here; the arrays' data is
    read on first use.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such file")
    if not zipfile.is_zipfile(path):
        raise BlenderCNNError(path, "is not a network bundle (expected a .npz archive written by blender_cnn)")
    encoded, headers = _read_members(path)
    manifest = _read_manifest(path, encoded)
    arrays = _LazyArrays(path, headers)
    validate(
        path, manifest, {key: _stand_in(shape, dtype) for key, (shape, dtype) in headers.items()}, labels_of=arrays.read
    )
    return Bundle(path, manifest, arrays)


def write_bundle(path: str | os.PathLike[str], manifest: Mapping[str, Any], arrays: Mapping[str, npt.ArrayLike]) -> str:
    """Validate ``manifest`` against ``arrays`` and write them as one bundle file."""
    path = os.fspath(path)
    writer = BundleWriter(path)
    try:
        for key, value in arrays.items():
            writer.add(key, value)
        return writer.finish(manifest)
    finally:
        writer.discard()


class BundleWriter:
    """Write a bundle whose big arrays arrive one slice at a time, with bounded memory.

    Small arrays are given whole with ``add``; big ones are declared with
    ``reserve(key, shape, dtype)`` and filled with ``write`` into a temporary
    ``.npy`` file beside the bundle, one epoch (or a run of samples of one
    epoch) at a time. ``finish(manifest)`` validates, then streams every array
    into ``<path>.partial`` and renames it to ``path``, so readers never see a
    half-written bundle. ``discard()`` removes the temporary files (call it in
    a ``finally``; it is a no-op after ``finish``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._small: dict[str, np.ndarray] = {}
        self._slots: dict[str, _ArraySlot] = {}
        self._work_dir: str | None = None

    def add(self, key: str, value: npt.ArrayLike) -> None:
        value = np.ascontiguousarray(value)
        if value.dtype.hasobject:  # it would need pickle, and readers refuse pickles
            raise BlenderCNNError(self.path, f"array {key!r} holds Python objects; bundles hold numbers only")
        self._check_new_key(key)
        self._small[key] = value

    def reserve(self, key: str, shape: Iterable[int], dtype: npt.DTypeLike = np.float32) -> _ArraySlot:
        """Declare array ``key`` of ``shape`` (epochs first); return the slot to ``write`` it through."""
        self._check_new_key(key)
        if self._work_dir is None:
            # Beside the bundle rather than in /tmp, which may be memory (tmpfs) or too small.
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            self._work_dir = tempfile.mkdtemp(prefix=".bcnn-parts-", dir=directory)
        slot = _ArraySlot(
            self.path,
            key,
            os.path.join(self._work_dir, f"{len(self._slots)}.npy"),
            tuple(int(size) for size in shape),
            np.dtype(dtype),
        )
        self._slots[key] = slot
        return slot

    def finish(self, manifest: Mapping[str, Any]) -> str:
        """Validate and write the bundle; return its path."""
        for slot in self._slots.values():
            slot.check_complete()
        arrays = dict(self._small)
        arrays.update({key: _stand_in(slot.shape, slot.dtype) for key, slot in self._slots.items()})
        manifest = dict(manifest, format=FORMAT_NAME, version=_needed_version(manifest, arrays, self._small))
        validate(self.path, manifest, arrays, labels_of=self._small.get)
        encoded = np.frombuffer(json.dumps(manifest, indent=1).encode("utf-8"), dtype=np.uint8)
        tmp_path = self.path + ".partial"
        try:
            # Stored, not deflated: float data hardly compresses, and stored members can be read in place.
            with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for key, value in {MANIFEST_KEY: encoded, **self._small}.items():
                    with archive.open(key + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, value, allow_pickle=False)
                for key, slot in self._slots.items():
                    with (
                        archive.open(key + ".npy", "w", force_zip64=True) as member,
                        open(slot.file_path, "rb") as source,
                    ):
                        shutil.copyfileobj(source, member, COPY_CHUNK_BYTES)
            os.replace(tmp_path, self.path)
        except BaseException:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)
            raise
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _check_new_key(self, key: object) -> None:
        if not isinstance(key, str) or not key or key == MANIFEST_KEY:
            raise BlenderCNNError(self.path, f"{key!r} cannot name an array of a bundle")
        if key in self._small or key in self._slots:
            raise BlenderCNNError(self.path, f"array {key!r} is given twice")


class _ArraySlot:
    """One array of a ``BundleWriter`` in a temporary ``.npy`` file, written slice by slice."""

    def __init__(self, bundle_path: str, key: str, file_path: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.bundle_path, self.key, self.file_path, self.shape, self.dtype = bundle_path, key, file_path, shape, dtype
        with open(file_path, "wb") as handle:
            np.lib.format.write_array_header_2_0(
                handle, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
            )
            self._data_offset = handle.tell()
            handle.truncate(self._data_offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        self._written = np.zeros(shape[:2] if len(shape) >= 2 else shape[:1], dtype=bool)

    def write(self, values: npt.ArrayLike, epoch: int, first_sample: int | None = None) -> None:
        """Write ``values`` at ``[epoch]``, or at ``[epoch, first_sample:first_sample + len(values)]``."""
        values = np.asarray(values)
        position: tuple[int, ...]
        if first_sample is None:
            expected, position, count = self.shape[1:], (epoch,), 0
        else:
            expected, position, count = (len(values), *self.shape[2:]), (epoch, first_sample), len(values)
        if (
            values.shape != expected
            or not 0 <= epoch < self.shape[0]
            or (first_sample is not None and not 0 <= first_sample <= first_sample + count <= self.shape[1])
        ):
            raise BlenderCNNError(
                self.key,
                f"cannot write values of shape {values.shape} at {position} into an array of shape {self.shape}",
            )
        with np.errstate(over="ignore"):  # overflow is reported below, naming the array
            converted = np.ascontiguousarray(values, dtype=self.dtype)
        if converted.dtype.kind == "f" and converted.dtype.itemsize < values.dtype.itemsize:
            overflowed = np.isinf(converted) & np.isfinite(values)
            if overflowed.any():
                raise BlenderCNNError(
                    self.key,
                    f"holds values up to {float(np.abs(values[overflowed]).max()):.4g}, "
                    f"beyond what {self.dtype} can store; store it as float32",
                )
        row = int(np.prod(self.shape[2:], dtype=np.int64)) if len(self.shape) >= 2 else 1
        start = epoch * (self.shape[1] if len(self.shape) >= 2 else 1) + (first_sample or 0)
        with open(self.file_path, "r+b") as handle:
            handle.seek(self._data_offset + start * row * self.dtype.itemsize)
            handle.write(memoryview(converted).cast("B"))
        if first_sample is None:
            self._written[epoch] = True
        else:
            self._written[epoch, first_sample : first_sample + count] = True

    def check_complete(self) -> None:
        if not self._written.all():
            missing = sorted({int(index[0]) for index in np.argwhere(~self._written)})
            raise BlenderCNNError(
                self.bundle_path, f"array {self.key!r} was never written for epoch positions {missing}"
            )


class _LazyArrays:
    """``{key: array}`` of a bundle file, each read on first access and kept.

    The archive stays open between reads: opening it reads its whole central
    directory, and a DenseNet's bundle has thousands of members, so reopening it
    per array took 16 ms a read, 9 s of a scene build (measured). It closes
    when the bundle is collected.
    """

    def __init__(self, path: str, headers: dict[str, Header]) -> None:
        self._path, self._headers = path, headers
        self._loaded: dict[str, np.ndarray] = {}
        self._archive: zipfile.ZipFile | None = None

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._loaded:
            self._loaded[key] = self.read(key)
        return self._loaded[key]

    def read(self, key: str) -> np.ndarray:
        """The array ``key`` from the file, not kept (validation reads the labels once)."""
        return _read_array(self._path, key, self._headers[key], self._open())

    def _open(self) -> zipfile.ZipFile:
        if self._archive is None:
            try:
                self._archive = zipfile.ZipFile(self._path)
            except (OSError, zipfile.BadZipFile) as error:
                raise BlenderCNNError(self._path, f"cannot be read ({error})") from None
        return self._archive

    def __del__(self) -> None:
        if self._archive is not None:
            self._archive.close()

    def __contains__(self, key: object) -> bool:
        return key in self._headers

    def keys(self) -> KeysView[str]:
        return self._headers.keys()


def _read_members(path: str) -> tuple[np.ndarray | None, dict[str, Header]]:
    """The manifest bytes (or None) and ``{key: (shape, dtype)}`` from the .npy headers of the other members."""
    encoded: np.ndarray | None = None
    headers: dict[str, Header] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise BlenderCNNError(
                        path, f"member {info.filename!r} is not a .npy array; every member of a bundle must be one"
                    )
                key = info.filename[: -len(".npy")]
                with archive.open(info) as member:
                    if key == MANIFEST_KEY:
                        encoded = np.lib.format.read_array(member, allow_pickle=False)
                    else:
                        headers[key] = _read_header(path, key, member)
    except ValueError as error:
        raise BlenderCNNError(path, f"holds an array numpy cannot read without pickle ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise BlenderCNNError(path, f"is damaged and cannot be read ({error})") from None
    return encoded, headers


def _read_header(path: str, key: str, member: IO[bytes]) -> Header:
    version = np.lib.format.read_magic(member)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:  # format 3.0 only differs in its header's text encoding; read the array whole
        array = np.lib.format.read_array(member, allow_pickle=False)
        return array.shape, array.dtype
    shape, _fortran_order, dtype = read(member)
    if dtype.hasobject:
        raise BlenderCNNError(path, f"array {key!r} holds Python objects that numpy cannot read without pickle")
    return tuple(shape), dtype


def _read_array(path: str, key: str, header: Header, archive: zipfile.ZipFile) -> np.ndarray:
    try:
        with archive.open(key + ".npy") as member:
            array = np.lib.format.read_array(member, allow_pickle=False)
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise BlenderCNNError(path, f"array {key!r} cannot be read ({error})") from None
    if (array.shape, array.dtype) != tuple(header):
        raise BlenderCNNError(path, f"array {key!r} changed since the bundle was opened; open it again")
    return array


def _stand_in(shape: Sequence[int], dtype: npt.DTypeLike) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` that takes no memory, for checks that look at shapes only."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def _needed_version(
    manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray], small_arrays: Mapping[Any, np.ndarray]
) -> int:  # looked up with a key that may be None
    """The oldest version whose readers read this content right: 4 for several inputs or outputs, 3 for
    importance, 2 for float16 activations or unlabelled samples.

    Stamping the oldest fitting version keeps float32, labelled bundles readable by older add-ons.
    """
    if _multi_io_fields(manifest):
        return MULTI_IO_VERSION
    if _importance_fields(manifest):
        return IMPORTANCE_VERSION
    activation_keys: set[Any] = {
        layer.get("activations") for layer in manifest.get("layers", []) if isinstance(layer, dict)
    }
    if any(key in arrays and arrays[key].dtype == np.float16 for key in activation_keys):
        return 2
    labels = small_arrays.get(
        manifest.get("samples", {}).get("labels") if isinstance(manifest.get("samples"), dict) else None
    )
    if labels is not None and labels.dtype.kind in "iu" and np.any(labels == UNLABELLED):
        return 2
    return 1


def _importance_fields(manifest: Mapping[str, Any]) -> list[str]:
    """Names of the version-3 fields the manifest uses, e.g. ``["importance", "layer 'dense' output_gradients"]``."""
    used = ["importance"] if "importance" in manifest else []
    for layer in manifest.get("layers", []):
        if isinstance(layer, dict):
            used += [
                f"layer {layer.get('name')!r} {field}" for field in ("importance", "output_gradients") if field in layer
            ]
    return used


def _multi_io_fields(manifest: Mapping[str, Any]) -> list[str]:
    """The version-4 fields the manifest uses: ``inputs`` and ``outputs`` (several inputs or output heads)."""
    return [field for field in ("inputs", "outputs") if field in manifest]


def _read_manifest(path: str, encoded: np.ndarray | None) -> dict[str, Any]:
    if encoded is None:
        raise BlenderCNNError(path, f"has no {MANIFEST_KEY}; it is a .npz file but not a network bundle")
    try:
        manifest = json.loads(encoded.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BlenderCNNError(path, f"{MANIFEST_KEY} is not valid JSON ({error})") from None
    if not isinstance(manifest, dict):
        raise BlenderCNNError(path, f"{MANIFEST_KEY} must be a JSON object")
    return manifest


def validate(
    path: str,
    manifest: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    labels_of: Callable[[str], np.ndarray | None] | None = None,
) -> None:
    """Check the manifest's fields and that every array it names exists with its dtype and shape.

    Only ``dtype``, ``shape`` and ``ndim`` of ``arrays`` are looked at. ``labels_of(key)``,
    if given, returns the labels array so their values can be checked too.
    """

    def fail(message: str) -> NoReturn:
        raise BlenderCNNError(path, message)

    if manifest.get("format") != FORMAT_NAME:
        fail(f"manifest format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        fail(f"manifest version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        fail(
            f"is bundle version {version}; this blender_cnn reads up to version {FORMAT_VERSION}, please update the add-on"
        )
    for field, kind in (
        ("name", str),
        ("input_shape", list),
        ("class_names", list),
        ("epochs", list),
        ("layers", list),
        ("samples", dict),
    ):
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
    activation_dtypes = ACTIVATION_DTYPES if version >= 2 else ("float32",)
    activation_hint = "" if version >= 2 else " (float16 activations need bundle version 2)"

    def check_array(
        key: str, expected_shape: Sequence[int | None], what: str, dtypes: Sequence[str] = ("float32",), hint: str = ""
    ) -> np.ndarray:
        if key not in arrays:
            fail(f"{what}: array {key!r} is missing")
        array = arrays[key]
        if array.dtype.name not in dtypes or array.dtype.byteorder == ">":
            fail(
                f"{what}: array {key!r} has dtype {array.dtype}, expected {' or '.join(dtypes)}"
                f"{hint if array.dtype == np.float16 else ''}"
            )
        if len(array.shape) != len(expected_shape) or any(
            want is not None and want != got for want, got in zip(expected_shape, array.shape)
        ):
            shown = tuple("*" if want is None else want for want in expected_shape)
            fail(f"{what}: array {key!r} has shape {array.shape}, expected {shown}")
        return array

    samples = manifest["samples"]
    for field in ("inputs", "labels", "predictions"):
        if not isinstance(samples.get(field), str):
            fail(f"manifest 'samples' lacks the array name {field!r}")
    inputs = check_array(samples["inputs"], (None, *manifest["input_shape"]), "samples inputs")
    sample_count = inputs.shape[0]
    check_array(samples["labels"], (sample_count,), "samples labels", dtypes=("int32",))
    labels = labels_of(samples["labels"]) if labels_of is not None else None
    if labels is not None and len(labels):
        lowest = UNLABELLED if version >= 2 else 0
        if labels.min() < lowest or labels.max() >= class_count:
            fail(
                f"samples labels must be class indices from {lowest} to {class_count - 1}"
                f"{' (-1: unlabelled)' if lowest < 0 else ''}, got values from {labels.min()} to {labels.max()}"
            )
    check_array(samples["predictions"], (epoch_count, sample_count, class_count), "samples predictions")
    for metric, key in manifest.get("metrics", {}).items():
        check_array(key, (epoch_count,), f"metric {metric!r}")

    multi_io = _multi_io_fields(manifest)
    if multi_io and version < MULTI_IO_VERSION:
        fail(
            f"uses the manifest's {multi_io[0]!r}, which needs bundle version {MULTI_IO_VERSION} "
            f"(the file says {version})"
        )
    used = _importance_fields(manifest)
    if used and version < IMPORTANCE_VERSION:
        fail(f"uses {used[0]}, which needs bundle version {IMPORTANCE_VERSION} (the file says {version})")
    if used and not isinstance(manifest.get("importance"), dict):
        fail(f"{used[0]} is given but the manifest's 'importance' object, which says how it was computed, is missing")
    if "importance" in manifest:
        described = manifest["importance"]
        if not isinstance(described, dict) or not all(
            isinstance(described.get(field), str) for field in ("method", "score")
        ):
            fail("manifest 'importance' must be an object with the strings 'method' and 'score'")

    def check_key(key: object, what: str) -> None:
        if not isinstance(key, str):
            fail(f"{what} must be an array name, got {key!r}")

    seen: set[str] = set()
    shapes: dict[str, list[int]] = {}
    for position, layer in enumerate(manifest["layers"]):
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str):
            fail(f"layer #{position} has no name")
        where = f"layer {layer['name']!r}"
        if layer["name"] in seen:
            fail(f"{where} appears twice")
        for field, kind in (
            ("type", str),
            ("inputs", list),
            ("output_shape", list),
            ("weights", list),
            ("activations", str),
        ):
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
        check_array(
            layer["activations"],
            (leading, sample_count, *layer["output_shape"]),
            f"{where} activations",
            dtypes=activation_dtypes,
            hint=activation_hint,
        )
        if "importance" in layer:
            check_key(layer["importance"], f"{where} 'importance'")
            check_array(
                layer["importance"], (epoch_count, class_count + 1, layer["output_shape"][-1]), f"{where} importance"
            )
        if "output_gradients" in layer:
            check_key(layer["output_gradients"], f"{where} 'output_gradients'")
            sources = [shapes.get(source) for source in layer["inputs"]]
            if (
                layer["type"] != "Dense"
                or len(layer["output_shape"]) != 1
                or len(sources) != 1
                or sources[0] is None
                or len(sources[0]) != 1
            ):
                fail(f"{where}: 'output_gradients' belong to Dense layers with a one-dimensional input and output")
            check_array(
                layer["output_gradients"],
                (epoch_count, sample_count, class_count, layer["output_shape"][0]),
                f"{where} output gradients",
            )
        shapes[layer["name"]] = layer["output_shape"]
        seen.add(layer["name"])
    if "inputs" in manifest:
        input_layers = [entry["name"] for entry in manifest["layers"] if not entry["inputs"]]
        _check_inputs(manifest, shapes, input_layers, sample_count, check_array, fail)
    if "outputs" in manifest:
        _check_outputs(manifest, shapes, epoch_count, sample_count, check_array, labels_of, fail)


def _entry_list(
    manifest: Mapping[str, Any], key: str, fields: Mapping[str, type], fail: Callable[[str], NoReturn]
) -> list[dict[str, Any]]:
    """The manifest's list ``key`` (version 4), refused unless it is non-empty and every entry is an object whose
    ``fields`` have their types."""
    entries = manifest[key]
    if (
        not isinstance(entries, list)
        or not entries
        or not all(
            isinstance(entry, dict) and all(isinstance(entry.get(name), kind) for name, kind in fields.items())
            for entry in entries
        )
    ):
        named = [f"'{name}'" for name in fields]
        fail(f"manifest '{key}' must be a non-empty list of objects with {', '.join(named[:-1])} and {named[-1]}")
    return entries


def _check_inputs(
    manifest: Mapping[str, Any],
    shapes: Mapping[str, list[int]],
    sources: Sequence[str],
    sample_count: int,
    check_array: Callable[..., np.ndarray],
    fail: Callable[[str], NoReturn],
) -> None:
    """The manifest's ``inputs`` (version 4): every input layer once, each with its samples; the first the one
    ``input_shape`` and ``samples.inputs`` describe."""
    entries = _entry_list(manifest, "inputs", {"layer": str, "shape": list, "array": str}, fail)
    names = [entry["layer"] for entry in entries]
    if len(set(names)) != len(names) or set(names) != set(sources):
        fail(
            f"manifest 'inputs' must list every input layer (every layer without inputs: {', '.join(sources)}) "
            f"once, got {', '.join(names)}"
        )
    for entry in entries:
        where = f"input {entry['layer']!r}"
        if entry["shape"] != shapes[entry["layer"]]:
            fail(f"{where}: 'shape' {entry['shape']} is not its layer's output_shape {shapes[entry['layer']]}")
        check_array(entry["array"], (sample_count, *entry["shape"]), f"{where} samples")
    if entries[0]["array"] != manifest["samples"]["inputs"] or entries[0]["shape"] != manifest["input_shape"]:
        fail("the first of the manifest's 'inputs' must be the input that 'input_shape' and 'samples.inputs' describe")


def _check_outputs(
    manifest: Mapping[str, Any],
    shapes: Mapping[str, list[int]],
    epoch_count: int,
    sample_count: int,
    check_array: Callable[..., np.ndarray],
    labels_of: Callable[[str], np.ndarray | None] | None,
    fail: Callable[[str], NoReturn],
) -> None:
    """The manifest's ``outputs`` (version 4): each head's layer, classes, predictions and labels; the first the
    one ``class_names`` and the samples' ``predictions`` and ``labels`` describe."""
    entries = _entry_list(
        manifest, "outputs", {"layer": str, "class_names": list, "predictions": str, "labels": str}, fail
    )
    names = [entry["layer"] for entry in entries]
    if len(set(names)) != len(names):
        fail(f"manifest 'outputs' names a layer twice: {', '.join(names)}")
    for entry in entries:
        where = f"output {entry['layer']!r}"
        if entry["layer"] not in shapes:
            fail(f"{where} is not a layer of the bundle")
        classes = len(entry["class_names"])
        if classes != int(np.prod(shapes[entry["layer"]])):
            fail(f"{where}: {classes} class names for a layer of {int(np.prod(shapes[entry['layer']]))} outputs")
        check_array(entry["predictions"], (epoch_count, sample_count, classes), f"{where} predictions")
        check_array(entry["labels"], (sample_count,), f"{where} labels", dtypes=("int32",))
        labels = labels_of(entry["labels"]) if labels_of is not None else None
        if labels is not None and len(labels) and (labels.min() < UNLABELLED or labels.max() >= classes):
            fail(
                f"{where} labels must be class indices from {UNLABELLED} to {classes - 1} (-1: unlabelled), "
                f"got values from {labels.min()} to {labels.max()}"
            )
    first, samples = entries[0], manifest["samples"]
    if (
        first["class_names"] != manifest["class_names"]
        or first["predictions"] != samples["predictions"]
        or first["labels"] != samples["labels"]
    ):
        fail(
            "the first of the manifest's 'outputs' must be the head that 'class_names' and the samples' "
            "'predictions' and 'labels' describe"
        )


def _is_shape(value: object, allow_empty: bool = False) -> bool:
    return (
        isinstance(value, list)
        and (allow_empty or bool(value))
        and all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in value)
    )


def _layer_info(index: int, layer: Mapping[str, Any]) -> LayerInfo:
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
        importance=layer.get("importance"),
        output_gradients=layer.get("output_gradients"),
    )
