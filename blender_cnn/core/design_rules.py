"""Whether one layer of a design can be built, and its output shape, parameters and weights.

The per-layer half of ``core/design.py``. A layer's type must be one the
registry (``core.layer_specs``) gives a shape rule; its arguments must be
ones that type takes and its inputs of the kind it takes. The shape
arithmetic itself is the type's rule in ``core.shape_rules``. A layer that
cannot be built raises ``LayerProblem`` with the reason, which the design
records on that layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .layer_specs import FLAT_INPUT, IMAGE_INPUT, MANY_INPUTS, designable_layer_types, spec_of
from .shape_rules import IGNORED_ARGUMENTS, IGNORED_SUFFIXES, LayerProblem, Settings, is_positive_int, shape_text

if TYPE_CHECKING:
    from .design import DesignLayer

__all__ = [
    "DESIGNABLE_LAYER_TYPES",
    "LayerProblem",
    "check_type_and_arguments",
    "infer_layer",
    "is_positive_int",
    "shape_text",
]

DESIGNABLE_LAYER_TYPES = designable_layer_types()


def check_type_and_arguments(info: DesignLayer, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The checks that need no input shape: a known type and arguments it takes. Returns the keyword arguments."""
    kwargs = {key: value for key, value in entry.items() if key not in ("type", "name", "inputs")}
    spec = spec_of(info.type)
    if spec is None or spec.shape_rule is None:
        raise LayerProblem(
            f"{info.type!r} is not a layer type the designer knows; it knows {', '.join(DESIGNABLE_LAYER_TYPES)}"
        )
    allowed = spec.argument_names
    unknown = [
        key
        for key in kwargs
        if key not in allowed and key not in IGNORED_ARGUMENTS and not key.endswith(IGNORED_SUFFIXES)
    ]
    if unknown:
        raise LayerProblem(
            f"{info.type} has no argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; it takes {', '.join(allowed) or 'none'}"
        )
    return kwargs


def infer_layer(info: DesignLayer, entry: Mapping[str, Any], sources: Sequence[DesignLayer]) -> None:
    """Check ``entry`` (a layer of a design) against its ``sources`` and fill ``info``'s shape, parameters and weights."""
    kwargs = check_type_and_arguments(info, entry)
    spec = spec_of(info.type)
    assert spec is not None and spec.shape_rule is not None, "check_type_and_arguments refuses types without a rule"
    layer_type = info.type
    shapes = [_known_shape(source) for source in sources]
    if spec.takes == MANY_INPUTS:
        if len(sources) < 2:
            raise LayerProblem(f"{layer_type} merges two or more inputs, it has {len(sources)}")
    else:
        if len(sources) != 1:
            raise LayerProblem(
                f"{layer_type} takes one input, it has {len(sources)} ({', '.join(source.name for source in sources)})"
            )
        shape = shapes[0]
        if spec.takes == FLAT_INPUT and len(shape) != 1:
            raise LayerProblem(
                f"{layer_type} needs a flat input; add Flatten after {sources[0].name} "
                f"(its output is {shape_text(shape)})"
            )
        if spec.takes == IMAGE_INPUT and len(shape) != 3:
            raise LayerProblem(
                f"{layer_type} needs an image-shaped input (height x width x channels), but "
                f"{sources[0].name}'s output is {shape_text(shape)}"
            )
    info.output_shape, info.params, info.config, info.weight_shapes = spec.shape_rule(
        Settings(kwargs), shapes if spec.takes == MANY_INPUTS else shapes[0], [s.name for s in sources]
    )
    info.output_shape = tuple(int(size) for size in info.output_shape)
    if any(size <= 0 for size in info.output_shape):
        raise LayerProblem(f"would output {shape_text(info.output_shape)}, which has an empty size")


def _known_shape(source: DesignLayer) -> tuple[int, ...]:
    """An input's output shape: ``core.design`` infers a layer once all its inputs' shapes are known."""
    assert source.output_shape is not None, f"{source.name} has no output shape yet"
    return tuple(source.output_shape)
