"""The Keras layer types the add-on knows how to show and compute.

Plain Python (no numpy, no bpy) so the extractor, the forward pass and the
scene builder can all ask the same question. A layer of any other type is
still recorded in a bundle with its output activations, and the bundle's
manifest lists it under ``unrecognized_layers``.

Functional models also record keras.ops operations (``x + 3.0`` in a model's
code is ``keras.ops.add``), which are not layers. The extractor names their
type ``OPERATION_TYPE_PREFIX`` + the operation's class (``"ops.Add"``), so
they never pass for the layer of the same name, and keeps the constants of
the call in their config.
"""

KNOWN_LAYER_TYPES = frozenset({
    "InputLayer",
    "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "BatchNormalization",
    "Activation", "ReLU", "LeakyReLU", "Softmax",
    "Dropout", "Flatten", "Reshape", "ZeroPadding2D", "Rescaling",
    "Dense",
    "Add", "Concatenate",
})
OPERATION_TYPE_PREFIX = "ops."
# The layers of a nested model are named "<model>/<layer>" in a bundle.
NESTED_MODEL_SEPARATOR = "/"


def is_known_layer_type(type_name):
    """True when the add-on understands layers of Keras class ``type_name`` (e.g. ``"Conv2D"``)."""
    return type_name in KNOWN_LAYER_TYPES
