"""Networks designed as data: shapes, parameter counts, problems, random weights and a bundle.

A *design* is a preset (``presets/*.json``, ``core.presets``): a dict
with ``name``, ``input_shape`` (channels last), ``class_names``, a ``layers``
list of ``{"type": Keras class name, "name": ..., keyword arguments...,
"inputs": [names] (optional)}`` and an optional ``training`` section. A layer
without ``inputs`` takes the previous layer's output; the network's input is
called ``"input"`` and its output is the last layer's. Unlike a preset file, a
design may name in ``inputs`` a layer listed *after* it (a node editor need not
sort its nodes); ``sorted_design`` puts such a design in preset order.

Everything here is numpy: no bpy, no TensorFlow. ``infer_shapes`` computes each
layer's output shape and Keras parameter count and the reason a layer is
invalid; ``problems`` gives ``{layer name: reason}`` for a UI to mark nodes;
``validate_design`` raises one ``BlenderCNNError`` listing every problem.
``random_weights`` draws weights as Keras initializes them (Glorot-uniform
kernels, zero biases, batch normalization at identity) and ``design_bundle``
writes a one-epoch bundle (epoch 0) whose activations are the numpy forward
pass's, so the scene builder can show a network nobody has trained.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import forward as forward_pass
from .bundle import write_bundle
from .design_rules import (  # noqa: F401
    DESIGNABLE_LAYER_TYPES,
    LayerProblem,
    check_type_and_arguments,
    infer_layer,
    is_positive_int,
    shape_text,
)
from .errors import BlenderCNNError
from .presets import INPUT_NAME, check_preset, load_design

DESIGN_KEY = "<design>"  # the key of problems that belong to the whole design, not one layer

# A design (or preset) as read from JSON, or the path of its file.
DesignSource = dict[str, Any] | str | os.PathLike[str]


class DesignCancelled(BlenderCNNError):
    """``design_bundle`` was told to stop (``should_stop``); nothing was written."""

    def __init__(self, where: object) -> None:
        super().__init__(where, "computing the bundle was cancelled")


@dataclass(eq=False)
class DesignLayer:
    """What the designer knows about one layer (the input included, first)."""

    name: str
    type: str
    inputs: tuple[str, ...]  # the layers it takes input from, resolved ("input" for the network input)
    output_shape: tuple[int, ...] | None = None  # channels last, no batch axis; None when it cannot be known
    params: int = 0  # as Keras' count_params()
    problem: str | None = None  # why the layer is invalid, None when it is fine
    config: dict[str, Any] = field(default_factory=dict)  # Keras-style config with defaults, as bundles store it
    weight_shapes: dict[str, tuple[int, ...]] = field(
        default_factory=dict
    )  # {Keras weight name: shape}, in Keras' order

    @property
    def ok(self) -> bool:
        return self.problem is None and self.output_shape is not None


# ---------------------------------------------------------------- reading designs


def design_and_where(design: DesignSource, where: str | None = None) -> tuple[dict[str, Any], str]:
    """``(design dict, what errors name)`` for a design dict or the path of a design or preset file."""
    if isinstance(design, (str, os.PathLike)):
        return load_design(design), where or os.fspath(design)
    if where is None:
        name = design.get("name") if isinstance(design, dict) else None
        where = f"design {name!r}" if isinstance(name, str) and name else "design"
    return design, where


# ---------------------------------------------------------------- the public API


def infer_shapes(design: object) -> list[DesignLayer]:
    """``[DesignLayer]``: the input, then every layer in an order where each follows its inputs.

    Never raises for a bad design: each offending layer carries its ``problem``;
    problems of the design as a whole are in ``problems(design)[DESIGN_KEY]``.
    """
    return _analyse(design)[0]


def problems(design: object) -> dict[str, str]:
    """``{layer name: reason}`` for every invalid layer; ``DESIGN_KEY`` for the design as a whole."""
    infos, design_problems = _analyse(design)
    found: dict[str, str] = {}
    for info in infos:
        if info.problem is not None:
            found[info.name] = info.problem if info.name not in found else f"{found[info.name]}; {info.problem}"
    if design_problems:
        found[DESIGN_KEY] = "; ".join(design_problems)
    return found


def validate_design(design: DesignSource, where: str | None = None) -> list[DesignLayer]:
    """The layers' ``[DesignLayer]``, or one BlenderCNNError naming the design and listing every problem.

    ``design`` is a dict or the path of a design file; ``where`` names it in the error.
    """
    design, where = design_and_where(design, where)
    infos, design_problems = _analyse(design)
    lines = list(design_problems) + [f"{info.name}: {info.problem}" for info in infos if info.problem is not None]
    if lines:
        count = f"{len(lines)} problem{'s' if len(lines) > 1 else ''}"
        raise BlenderCNNError(where, f"has {count}:\n  " + "\n  ".join(lines))
    return infos


def total_parameters(infos: Sequence[DesignLayer]) -> int:
    """Sum of the layers' parameter counts (Keras' ``model.count_params()``)."""
    return int(sum(info.params for info in infos))


def sorted_design(design: dict[str, Any]) -> dict[str, Any]:
    """A copy of a valid ``design`` whose layers follow their inputs, every input written out: a preset.

    The output layer stays last. Raises BlenderCNNError when the design is invalid.
    """
    infos = validate_design(design)
    entries = {entry["name"]: entry for entry in design["layers"]}
    layers = []
    for info in infos[1:]:
        entry = {key: value for key, value in entries[info.name].items() if key != "inputs"}
        layers.append({**entry, "inputs": list(info.inputs)})
    return {**design, "layers": layers}


def random_weights(design: DesignSource, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """``{layer name: {weight name: float32 array}}`` shaped as Keras' weights, as Keras initializes them.

    Kernels are Glorot-uniform, biases and ``beta``/``moving_mean`` zero,
    ``gamma``/``moving_variance`` one. Deterministic for ``seed``; each layer
    draws from its own stream (seed and layer name), so editing one layer does
    not change the others' weights. Layers without weights are left out.
    """
    infos = validate_design(design)
    return {info.name: layer_weights(info, seed) for info in infos if info.weight_shapes}


def layer_weights(info: DesignLayer, seed: int = 0) -> dict[str, np.ndarray]:
    """``{weight name: float32 array}`` of one ``DesignLayer``, as ``random_weights`` draws them."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(info.name.encode("utf-8"))])
    return {name: _initial_weight(name, shape, rng) for name, shape in info.weight_shapes.items()}


def synthetic_inputs(input_shape: Sequence[int]) -> np.ndarray:
    """Three inputs in 0..1 shaped like ``input_shape``: a centred square, a diagonal stripe, a checkerboard.

    ``(3, *input_shape)`` float32. For an image (H, W, C) the patterns are
    drawn on the H x W grid and tinted per channel; for any other shape they
    are drawn on the values in order, as a row.
    """
    shape = tuple(int(size) for size in input_shape)
    if len(shape) == 3:
        height, width, channels = shape
    else:
        height, width, channels = 1, int(np.prod(shape)), 1
    rows = (np.arange(height) + 0.5)[:, np.newaxis] / height
    cols = (np.arange(width) + 0.5)[np.newaxis, :] / width
    square = ((np.abs(rows - 0.5) < 0.25) & (np.abs(cols - 0.5) < 0.25)).astype(np.float32)
    stripe = (
        (np.abs(rows - cols) < 0.15).astype(np.float32)
        if height > 1
        else (np.abs(cols - 0.5) < 0.15).astype(np.float32)
    )
    cell = max(1, min(height, width) // 8)
    checker = ((np.arange(height) // cell)[:, np.newaxis] + (np.arange(width) // cell)[np.newaxis, :]) % 2
    patterns = np.stack([square + 0 * cols, stripe + 0 * rows, checker.astype(np.float32)])  # (3, H, W)
    tint = np.linspace(1.0, 0.5, channels, dtype=np.float32) if channels > 1 else np.ones(1, np.float32)
    images = patterns[..., np.newaxis] * tint
    return np.ascontiguousarray(images.reshape((3, *shape)), dtype=np.float32)


def design_bundle(
    design: DesignSource,
    path: str | os.PathLike[str],
    seed: int = 0,
    inputs: npt.ArrayLike | None = None,
    progress: Callable[[int, int, str], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> str:
    """Write a bundle of ``design`` with random weights (epoch 0) and the numpy forward pass's activations.

    ``inputs`` is ``(S, *input_shape)`` (default ``synthetic_inputs``). The
    samples are unlabelled (label -1); the predictions are the output layer's
    values (softmax applied when they are not probabilities). Returns ``path``.

    For a UI that shows progress and can cancel (VGG16 takes seconds):
    ``progress(done, total, layer name)`` is called as each layer's weights
    and activations are ready, and ``should_stop()`` before each layer; when
    it returns True, ``DesignCancelled`` is raised and nothing is written.
    """
    design, where = design_and_where(design, None)
    infos = validate_design(design, where)
    input_shape = tuple(design["input_shape"])
    synthetic = inputs is None
    inputs = synthetic_inputs(input_shape) if synthetic else np.asarray(inputs, dtype=np.float32)
    if inputs.shape == input_shape:
        inputs = inputs[np.newaxis]
    if inputs.ndim != len(input_shape) + 1 or inputs.shape[1:] != input_shape or not len(inputs):
        raise BlenderCNNError(
            "inputs",
            f"have shape {inputs.shape}; the design {design['name']!r} takes "
            f"(samples, {', '.join(map(str, input_shape))})",
        )
    arrays: dict[str, np.ndarray] = {}
    layers: list[dict[str, Any]] = []
    outputs: dict[str, np.ndarray] = {}
    for done, info in enumerate(infos):
        if should_stop is not None and should_stop():
            raise DesignCancelled(where)
        weights = layer_weights(info, seed)
        if info.type == "InputLayer":
            values = inputs
        else:
            values = forward_pass.compute_layer(
                info.type, info.config, weights, [outputs[name] for name in info.inputs], name=info.name
            )
        outputs[info.name] = values
        assert info.output_shape is not None  # validate_design gave every layer its shape
        key = f"activations/{info.name}"
        arrays[key] = values[np.newaxis]
        for weight_name, value in weights.items():
            arrays[f"weights/{info.name}/{weight_name}"] = value[np.newaxis]
        layers.append(
            {
                "name": info.name,
                "type": info.type,
                "inputs": list(info.inputs),
                "output_shape": list(info.output_shape),
                "config": info.config,
                "params": info.params,
                "weights": [
                    {"name": weight_name, "array": f"weights/{info.name}/{weight_name}", "shape": list(value.shape)}
                    for weight_name, value in weights.items()
                ],
                "activations": key,
            }
        )
        if progress is not None and done:
            progress(done, len(infos) - 1, info.name)
    arrays["samples/inputs"] = inputs
    arrays["samples/labels"] = np.full(len(inputs), -1, dtype=np.int32)
    arrays["samples/predictions"] = forward_pass.as_probabilities(outputs[infos[-1].name])[np.newaxis]
    manifest = {
        "name": design["name"],
        "description": design.get("description", ""),
        "input_shape": list(input_shape),
        "class_names": [str(name) for name in design["class_names"]],
        "epochs": [0],
        "layers": layers,
        "samples": {
            "inputs": "samples/inputs",
            "labels": "samples/labels",
            "predictions": "samples/predictions",
            "preprocessing": {
                "source": "synthetic patterns (centred square, diagonal stripe, checkerboard)"
                if synthetic
                else "inputs given to design_bundle",
                "range": [0.0, 1.0],
            },
        },
        "unrecognized_layers": [],
        "source": {
            "kind": "design",
            "seed": int(seed),
            "parameters": total_parameters(infos),
            "weights": "random: Glorot-uniform kernels, zero biases (Keras' defaults); epoch 0 is untrained",
        },
    }
    return write_bundle(path, manifest, arrays)


# ---------------------------------------------------------------- the analysis


def _analyse(design: object) -> tuple[list[DesignLayer], list[str]]:
    """``(infos, design problems)``."""
    design_problems: list[str] = []
    if not isinstance(design, dict):
        return [], ["a design must be a JSON object (a dict)"]
    if not isinstance(design.get("name"), str) or not design["name"]:
        design_problems.append("needs a 'name' (text)")
    class_names = design.get("class_names")
    if not isinstance(class_names, list) or not class_names:
        design_problems.append("needs 'class_names', a non-empty list")
        class_names = None
    training = design.get("training", {})
    if not isinstance(training, dict):
        design_problems.append("'training' must be an object")
    else:
        design_problems.extend(_training_problem(design))

    input_info = DesignLayer(INPUT_NAME, "InputLayer", ())
    shape = design.get("input_shape")
    if isinstance(shape, list) and shape and all(is_positive_int(size) for size in shape):
        input_info.output_shape = tuple(shape)
    else:
        input_info.problem = f"'input_shape' must be a list of positive integers, got {shape!r}"

    entries = design.get("layers")
    if not isinstance(entries, list) or not entries:
        design_problems.append("needs 'layers', a non-empty list")
        return [input_info], design_problems

    # Names and inputs.
    infos: list[DesignLayer] = []
    by_name = {INPUT_NAME: input_info}
    positions: dict[str, int] = {}
    for position, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not entry.get("name")
            or not isinstance(entry.get("type"), str)
        ):
            name = (
                entry["name"]
                if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry.get("name")
                else f"layer #{position}"
            )
            infos.append(DesignLayer(name, "?", (), problem="needs a 'type' (a Keras layer class) and a 'name'"))
            continue
        name = entry["name"]
        info = DesignLayer(name, entry["type"], ())
        infos.append(info)
        if name in by_name:
            info.problem = (
                f"the name {name!r} is taken by the network input"
                if name == INPUT_NAME
                else f"the name {name!r} is used by more than one layer (#{positions[name]} and #{position})"
            )
            continue
        by_name[name] = info
        positions[name] = position
    previous = INPUT_NAME
    for entry, info in zip(entries, infos):
        if info.problem is None:
            sources = entry.get("inputs")
            if sources is None or sources == []:
                info.inputs = (previous,)
            elif not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                info.problem = f"'inputs' must be a list of layer names, got {sources!r}"
            else:
                unknown = [s for s in sources if s not in by_name or by_name[s] is info]
                if unknown:
                    what = ", ".join(repr(s) for s in unknown)
                    info.problem = (
                        "takes input from itself"
                        if unknown == [info.name]
                        else f"takes input from {what}, which {'is' if len(unknown) == 1 else 'are'} "
                        f"not a layer of the design"
                    )
                else:
                    info.inputs = tuple(sources)
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry.get("name"):
            previous = entry["name"]

    order, cyclic = _topological_order(infos, by_name)
    for info in cyclic:
        info.problem = info.problem or f"is part of a cycle ({' -> '.join(_cycle_through(info, by_name))})"

    # Shapes, in dependency order.
    entry_of = {id(info): entry for entry, info in zip(entries, infos)}
    for info in order:
        if info.problem is not None:
            continue
        sources = [by_name[name] for name in info.inputs]
        try:
            if any(source.output_shape is None for source in sources):
                # An input's problem is reported on that input; this layer's own faults still show.
                check_type_and_arguments(info, entry_of[id(info)])
                continue
            infer_layer(info, entry_of[id(info)], sources)
        except LayerProblem as problem:
            info.problem = str(problem)
            info.output_shape, info.params, info.weight_shapes = None, 0, {}

    # Where the network ends.
    output = infos[-1]
    used = {name for info in infos for name in info.inputs}
    for info in infos[:-1]:
        if info.problem is None and info.name not in used and by_name.get(info.name) is info:
            info.problem = "leads nowhere: no layer takes its output and it is not the last layer (the output)"
    if (
        output.output_shape is not None
        and class_names is not None
        and output.problem is None
        and tuple(output.output_shape) != (len(class_names),)
    ):
        output.problem = (
            f"is the output, which must give one value per class ({len(class_names)}), but it "
            f"outputs {shape_text(output.output_shape)}; end with a Dense of "
            f"{len(class_names)} units"
        )
    ordered = [input_info] + [info for info in order if info in infos] + [info for info in infos if info not in order]
    return ordered, design_problems


def _training_problem(design: dict[str, Any]) -> list[str]:
    """check_preset's judgement of the training section, without its layer checks (those are per layer here)."""
    probe = {
        "name": "x",
        "input_shape": [1],
        "class_names": ["x"],
        "layers": [{"type": "Dense", "name": "x"}],
        "training": design.get("training", {}),
    }
    try:
        check_preset(probe)
    except BlenderCNNError as error:
        return [error.message]
    return []


def _topological_order(
    infos: list[DesignLayer], by_name: Mapping[str, DesignLayer]
) -> tuple[list[DesignLayer], list[DesignLayer]]:
    """``(order, cyclic)``: layers each after its inputs, list order kept where possible; layers on cycles."""
    valid = [info for info in infos if by_name.get(info.name) is info]
    done, waiting = {INPUT_NAME}, list(valid)
    order: list[DesignLayer] = []
    progress = True
    while waiting and progress:
        progress = False
        for info in list(waiting):
            if all(name in done for name in info.inputs):
                order.append(info)
                done.add(info.name)
                waiting.remove(info)
                progress = True
                break  # restart from the top so list order is kept
    cyclic = [info for info in waiting if info.name in _cycle_through(info, by_name)[1:]]
    return order + [info for info in infos if info not in valid], cyclic


def _cycle_through(info: DesignLayer, by_name: Mapping[str, DesignLayer]) -> list[str]:
    """The names on a path from ``info`` back to itself (``[info.name, ..., info.name]``), or ``[info.name]``."""
    stack = [(info.name, [info.name])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for source in by_name[name].inputs if name in by_name else ():
            if source == info.name:
                return list(reversed(path + [source]))
            if source not in seen and source in by_name:
                seen.add(source)
                stack.append((source, path + [source]))
    return [info.name]


# ---------------------------------------------------------------- small helpers


def _initial_weight(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Keras' default initial value of weight ``name``: Glorot-uniform kernels, else zeros or ones."""
    if name.endswith("kernel"):
        if len(shape) == 2:
            fan_in, fan_out = shape
        else:
            receptive = int(np.prod(shape[:-2]))
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)
    if name in ("gamma", "moving_variance"):
        return np.ones(shape, dtype=np.float32)
    return np.zeros(shape, dtype=np.float32)
