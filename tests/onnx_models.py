"""ONNX models as PyTorch's TorchScript exporter writes them, and their Keras twins: the fixtures of the ONNX importer.

PyTorch is not installed (nor wanted); the graphs are written with ``onnx.helper`` the way ``torch.onnx.export``
(TorchScript exporter, torch 2.x, opset 17, model in eval mode) writes these torchvision-style modules, so the
importer meets here what it meets in users' files. Each network is first a small numpy description (``Network``:
ordered ``Layer`` s with Keras-layout weights drawn from a seeded Generator); ``to_onnx`` writes it as torch would,
``to_keras`` builds the Keras 3 model that computes the same function channels-last, with the names the importer
gives its layers. The ONNX side needs numpy and onnx only; the Keras side imports keras when called.

Networks (``NETWORKS`` maps each name to its builder, ``builder(seed=0) -> Network``):

- ``small_cnn``: features (Conv, ReLU, MaxPool) x2, ``torch.flatten(x, 1)``, classifier (Linear, ReLU, Linear).
  ``small_cnn_view`` flattens with ``x.view(x.size(0), -1)``; ``small_cnn_matmul`` writes classifier.0 as
  MatMul + Add. The three share their weights (same seed, same function).
- ``resnet_block``: stem (conv1, bn1, relu, maxpool) and a BasicBlock layer1.0 going 8 -> 16 channels at stride 2
  (so with a downsample), avgpool, flatten, fc. ``resnet_block_fused``: the same with each BatchNormalization folded
  into the Conv before it, as torch's eval export does by default.
- ``inverted_residual``: MobileNetV2's stem and an expanding InvertedResidual with its residual Add, then SiLU,
  Hardswish, avgpool, flatten, classifier, softmax. ``inverted_residual_fused``: BatchNormalization folded likewise.

``resnet50(seed=0)``, torchvision's ResNet50 at 3x224x224 with 1000 classes and its BatchNormalization folded (25.5 M
weights, a 102 MB file), is not in ``NETWORKS``: the tests that run every network would take minutes. The ONNX
import benchmark (``scripts/bench_onnx.py``) uses it.

What the exporter writes, and these graphs copy (torch/onnx/utils.py, torch/csrc/jit/passes/onnx/naming.cpp,
eval_peephole.cpp, symbolic_opset*.py):

- Node names: each module scope's *unqualified* name, joined by ``/``, then the op type: the unqualified name of
  module ``features.1.conv.0.0`` is its path from its last non-numeric atom, ``conv.0.0``, so its Conv is
  ``/features/features.1/conv/conv.0/conv.0.0/Conv`` and ``layer1.0.conv1``'s is ``/layer1/layer1.0/conv1/Conv``.
  A node of the top module has no scope (``/Flatten``). A name taken already gets ``_1``, ``_2``: a module called
  twice has scopes ``relu`` and ``relu_1``, two Constants in one scope are ``.../Constant`` and ``.../Constant_1``.
- A node's output is ``<node name>_output_0``; the graph's input and output are named by the caller
  (``input``, ``output``), and the batch dimension is ``batch`` on both (``dynamic_axes``).
- Initializers keep the state_dict names (``features.0.weight``, ``bn1.running_var``); tensors the exporter makes
  (a BatchNormalization folded into its Conv, a transposed Linear weight) are ``onnx::<OpType>_<number>``.
- Conv: dilations, group, kernel_shape, pads, strides, always. MaxPool: ceil_mode, kernel_shape, pads, strides.
  Gemm (Linear on a 2-D input): alpha=1, beta=1, transB=1. BatchNormalization: epsilon, momentum (1 - torch's,
  0.9), training_mode=0. Flatten: axis=1. Reshape: allowzero=0. Softmax: axis. Linear on other ranks is MatMul with
  a pre-transposed ``(in, out)`` weight, then ``Add(bias, product)``, bias first.
- ReLU6 is Clip whose min and max are Constant nodes (scalars 0 and 6) in the ReLU6's scope; SiLU is
  ``Mul(x, Sigmoid(x))``, both nodes in the SiLU's scope; Hardswish is HardSwish (opset 14); AdaptiveAvgPool2d(1) is
  GlobalAveragePool; Dropout is absent.
- ir_version 8 (torch's table for opsets 15 to 18), opset_import the default domain only, producer ``pytorch``,
  graph ``main_graph``, initializers not listed among the graph inputs.

Naming rules, the importer's and ``to_keras``'s (``network.layers[i].name`` is the expected name):

1. Module path of a node, from the scopes of its name (``/features/features.1/conv/conv.0/conv.0.0/Conv`` has
   scopes features, features.1, conv, conv.0, conv.0.0): the first scope is the path; each next scope that holds a
   dot (only an unqualified name ending in numeric atoms does) adds its last atom, any other is added whole, after a
   dot: features -> features.1 -> features.1.conv -> features.1.conv.0 -> features.1.conv.0.0;
   ``/layer1/layer1.0/relu_1/Relu`` -> ``layer1.0.relu_1``; ``/Flatten`` -> no path.
   (The rule "a scope that starts with the path so far plus '.' replaces it, else it is appended" agrees on
   ``layer1.0.conv1`` and ``features.0.2`` but gives ``features.1.conv.conv.0.conv.0.0`` for the real name above.)
2. Layers: one per node, except that Constant nodes make none (their value belongs to their consumer),
   ``Sigmoid`` + ``Mul(x, sigmoid)`` make one (Activation silu), ``MatMul`` + ``Add`` of an initializer make one
   (Dense), ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` make one (Flatten) and ``Clip`` with constant bounds
   is one (ReLU). A layer's path and op type are those of the node making its output (the Mul, the Add, the Reshape).
3. A layer is named by its path when no other layer has that path and none has a path below it (``path + "."``);
   otherwise ``<path>.<op type lowercased>`` (``layer1.0.add``, ``features.1.add``); without a path, the lowercased
   op type (``flatten``, ``reshape``). A name taken already gets ``_1``, ``_2`` in graph order.
4. The graph input's layer is named after the ONNX input (``input``). A padding that Keras' ``same`` does not place
   becomes a ZeroPadding2D named ``<layer name>.pad`` before the layer.

Keras twins (``keras_layers`` lists them in numpy, ``to_keras`` builds them, ``keras_weights_of`` gives their
weights): Conv -> Conv2D, or DepthwiseConv2D when group == in == out channels; padding ``valid`` when the ONNX pads are
zero, ``same`` when they are what TensorFlow's ``same`` places for that input size, kernel and stride (symmetric for
stride 1 and odd kernels; for stride 2 on an even size TensorFlow puts the extra row at the bottom, torch's pad 1 does
not), else ZeroPadding2D + ``valid``. MaxPool the same way (zero padding is exact only on non-negative inputs, as after
a ReLU; -inf is what ONNX pads with). BatchNormalization with ONNX's epsilon and momentum; Relu -> ReLU; Clip(0, 6) ->
ReLU(max_value=6); Sigmoid+Mul -> Activation("silu"); HardSwish -> Activation("hard_silu"); GlobalAveragePool ->
GlobalAveragePooling2D(keepdims=True); Flatten -> Flatten; Gemm / MatMul+Add -> Dense, its kernel rows permuted from
PyTorch's CHW flatten order to Keras' HWC order when it reads a flattened feature map; Add -> Add; Softmax ->
Softmax. Keras 3 accepts dots in layer names (it refuses only "/").

Weights in a ``Layer`` are in Keras layout and Keras order: Conv2D ``kernel`` (kh, kw, in, out) and ``bias`` (out,);
DepthwiseConv2D ``depthwise_kernel`` (kh, kw, C, 1); Dense ``kernel`` (in, out), its rows in PyTorch's flatten order
(as the ONNX weight has them; ``keras_weights_of`` gives them permuted); BatchNormalization ``gamma``, ``beta``,
``moving_mean``, ``moving_variance``.
"""

import dataclasses
from pathlib import Path

import numpy as np

OPSET = 17
IR_VERSION = 8  # what torch's exporter writes for opsets 15 to 18
PRODUCER_NAME = "pytorch"
PRODUCER_VERSION = "2.5.1"
GRAPH_NAME = "main_graph"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
BATCH = "batch"
INPUT_SHAPE = (3, 16, 16)  # C, H, W
CLASSES = 10
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # ONNX's momentum is 1 - torch's (0.1)

KINDS = (
    "conv", "depthwise_conv", "batch_norm", "relu", "relu6", "max_pool", "flatten", "dense", "add", "silu",
    "hard_swish", "global_avg_pool", "softmax",
)  # fmt: skip

# Keras weight name -> the PyTorch parameter or buffer it comes from.
TORCH_PARAMETERS = {
    "kernel": "weight",
    "depthwise_kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


@dataclasses.dataclass
class Layer:
    """One layer of a network: what PyTorch computes there, with the name the importer gives it."""

    name: str  # the Keras layer name (naming rules above)
    kind: str  # one of KINDS
    module: str  # the PyTorch module path ("" for the top module)
    scope: str  # the start of its nodes' names: "/layer1/layer1.0/conv1"; "" for the top module
    inputs: list[str]  # names of the layers it reads, INPUT_NAME for the graph input
    config: dict = dataclasses.field(default_factory=dict)
    weights: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # Keras layout and order
    initializers: dict[str, str] = dataclasses.field(default_factory=dict)  # weight name -> ONNX initializer name


@dataclasses.dataclass
class Network:
    name: str
    layers: list[Layer]
    input_shape: tuple[int, int, int] = INPUT_SHAPE  # C, H, W

    def layer(self, name):
        return next(layer for layer in self.layers if layer.name == name)

    @property
    def classes(self):
        return next(layer.config["units"] for layer in reversed(self.layers) if layer.kind == "dense")


@dataclasses.dataclass
class KerasLayer:
    """One layer of a Keras twin: its class in ``keras.layers``, the arguments it is built with, its weights."""

    name: str
    class_name: str
    config: dict
    inputs: list[str]  # names of the Keras layers it reads
    weights: list[np.ndarray]


def torch_scope(module, call=0):
    """The scope part of the node names torch writes for a module's ``call``-th call (0: the first)."""
    if not module:
        return ""
    atoms = module.split(".")
    names = []
    for end in range(1, len(atoms) + 1):
        prefix = atoms[:end]
        # torch's _unqualified_variable_name: the path from its last non-numeric atom, or all of it.
        start = max((i for i, atom in enumerate(prefix) if not atom.isnumeric()), default=0)
        names.append(".".join(prefix[start:]))
    scope = "/" + "/".join(names)
    return f"{scope}_{call}" if call else scope


class _Builder:
    """Appends layers to a network in order, drawing their weights from one Generator."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.layers = []
        self.last = INPUT_NAME

    def _normal(self, scale, shape):
        return self.rng.normal(0.0, scale, shape).astype(np.float32)

    def add(self, kind, module, *, name=None, call=0, inputs=None, config=None, weights=None):
        weights = weights or {}
        layer = Layer(
            name=name or module,
            kind=kind,
            module=module,
            scope=torch_scope(module, call),
            inputs=list(inputs or [self.last]),
            config=config or {},
            weights=weights,
            initializers={key: f"{module}.{TORCH_PARAMETERS[key]}" for key in weights},
        )
        self.layers.append(layer)
        self.last = layer.name
        return layer.name

    def conv(self, module, channels_in, channels_out, kernel, *, stride=1, pad=0, bias=True, inputs=None, scale=1.0):
        weights = {
            "kernel": self._normal(
                scale / np.sqrt(channels_in * kernel * kernel), (kernel, kernel, channels_in, channels_out)
            )
        }
        if bias:
            weights["bias"] = self._normal(0.1, (channels_out,))
        config = {
            "filters": channels_out,
            "kernel_size": (kernel, kernel),
            "strides": (stride, stride),
            "pads": (pad,) * 4,
            "use_bias": bias,
        }
        return self.add("conv", module, inputs=inputs, config=config, weights=weights)

    def depthwise_conv(self, module, channels, kernel, *, stride=1, pad=0, bias=True):
        weights = {"depthwise_kernel": self._normal(1.0 / kernel, (kernel, kernel, channels, 1))}
        if bias:
            weights["bias"] = self._normal(0.1, (channels,))
        config = {
            "channels": channels,
            "kernel_size": (kernel, kernel),
            "strides": (stride, stride),
            "pads": (pad,) * 4,
            "use_bias": bias,
        }
        return self.add("depthwise_conv", module, config=config, weights=weights)

    def batch_norm(self, module, channels):
        weights = {
            "gamma": self.rng.uniform(0.5, 1.5, channels).astype(np.float32),
            "beta": self._normal(0.1, (channels,)),
            "moving_mean": self._normal(0.1, (channels,)),
            "moving_variance": self.rng.uniform(0.5, 1.5, channels).astype(np.float32),
        }
        return self.add("batch_norm", module, config={"epsilon": BN_EPSILON, "momentum": BN_MOMENTUM}, weights=weights)

    def max_pool(self, module, kernel, *, stride, pad=0):
        config = {"pool_size": (kernel, kernel), "strides": (stride, stride), "pads": (pad,) * 4}
        return self.add("max_pool", module, config=config)

    def dense(self, module, units_in, units_out, *, form="gemm", scale=1.0):
        weights = {
            "kernel": self._normal(scale / np.sqrt(units_in), (units_in, units_out)),
            "bias": self._normal(0.1, (units_out,)),
        }
        name = self.add("dense", module, config={"units": units_out, "form": form}, weights=weights)
        if form == "matmul":
            # The exporter folds Transpose(weight) into a tensor of its own, named after its consumer.
            self.layers[-1].initializers["kernel"] = "onnx::MatMul_57"
        return name


def small_cnn(seed=0, *, flatten="flatten", linear="gemm", name="small_cnn"):
    """torchvision-style ``features`` + ``classifier``; ``flatten`` "flatten" or "view", ``linear`` "gemm" or "matmul"."""
    b = _Builder(seed)
    b.conv("features.0", 3, 8, 3, pad=1)
    b.add("relu", "features.1")
    b.max_pool("features.2", 2, stride=2)
    b.conv("features.3", 8, 16, 3, pad=1)
    b.add("relu", "features.4")
    b.max_pool("features.5", 2, stride=2)
    b.add("flatten", "", name="flatten" if flatten == "flatten" else "reshape", config={"form": flatten})
    b.dense("classifier.0", 16 * 4 * 4, 32, form=linear)
    b.add("relu", "classifier.1")
    b.dense("classifier.2", 32, CLASSES)
    return Network(name, b.layers)


def small_cnn_view(seed=0):
    """small_cnn flattened by ``x.view(x.size(0), -1)``: Shape, Gather, Unsqueeze, Concat, Reshape."""
    return small_cnn(seed, flatten="view", name="small_cnn_view")


def small_cnn_matmul(seed=0):
    """small_cnn whose classifier.0 is MatMul with a pre-transposed weight, then Add of the bias."""
    return small_cnn(seed, linear="matmul", name="small_cnn_matmul")


def resnet_block(seed=0):
    """A ResNet stem and one BasicBlock (8 -> 16 channels, stride 2, with downsample), BatchNormalization kept."""
    b = _Builder(seed)
    b.conv("conv1", 3, 8, 3, stride=2, pad=1, bias=False)
    b.batch_norm("bn1", 8)
    b.add("relu", "relu")
    stem = b.max_pool("maxpool", 3, stride=2, pad=1)
    b.conv("layer1.0.conv1", 8, 16, 3, stride=2, pad=1, bias=False)
    b.batch_norm("layer1.0.bn1", 16)
    b.add("relu", "layer1.0.relu")
    b.conv("layer1.0.conv2", 16, 16, 3, pad=1, bias=False)
    residual = b.batch_norm("layer1.0.bn2", 16)
    b.conv("layer1.0.downsample.0", 8, 16, 1, stride=2, bias=False, inputs=[stem])
    identity = b.batch_norm("layer1.0.downsample.1", 16)
    b.add("add", "layer1.0", name="layer1.0.add", inputs=[residual, identity])
    b.add("relu", "layer1.0.relu", name="layer1.0.relu_1", call=1)
    b.add("global_avg_pool", "avgpool")
    b.add("flatten", "", name="flatten", config={"form": "flatten"})
    b.dense("fc", 16, CLASSES)
    return Network("resnet_block", b.layers)


def resnet_block_fused(seed=0):
    return fuse_batch_norm(resnet_block(seed), "resnet_block_fused")


def inverted_residual(seed=0):
    """MobileNetV2's stem and an expanding InvertedResidual (8 -> 32 -> 8, residual Add), then SiLU, Hardswish, head."""
    b = _Builder(seed)
    b.conv("features.0.0", 3, 8, 3, pad=1, bias=False)
    b.batch_norm("features.0.1", 8)
    block_input = b.add("relu6", "features.0.2")
    b.conv("features.1.conv.0.0", 8, 32, 1, bias=False)
    b.batch_norm("features.1.conv.0.1", 32)
    b.add("relu6", "features.1.conv.0.2")
    b.depthwise_conv("features.1.conv.1.0", 32, 3, pad=1, bias=False)
    b.batch_norm("features.1.conv.1.1", 32)
    b.add("relu6", "features.1.conv.1.2")
    b.conv("features.1.conv.2", 32, 8, 1, bias=False)
    projected = b.batch_norm("features.1.conv.3", 8)
    b.add("add", "features.1", name="features.1.add", inputs=[block_input, projected])
    b.add("silu", "features.2")
    b.add("hard_swish", "features.3")
    b.add("global_avg_pool", "avgpool")
    b.add("flatten", "", name="flatten", config={"form": "flatten"})
    # Logits spread wide enough that the softmax is far from uniform, and compares something.
    b.dense("classifier.0", 8, CLASSES, scale=8.0)
    b.add("softmax", "softmax", config={"axis": 1})
    return Network("inverted_residual", b.layers)


def inverted_residual_fused(seed=0):
    return fuse_batch_norm(inverted_residual(seed), "inverted_residual_fused")


# torchvision's ResNet50: Bottleneck blocks per layer, and each layer's bottleneck width (its output is 4x that).
RESNET50_LAYERS = ((3, 64), (4, 128), (6, 256), (3, 512))
RESNET50_INPUT_SHAPE = (3, 224, 224)
RESNET50_CLASSES = 1000


def resnet50(seed=0):
    """torchvision's ``resnet50()`` as its eval export writes it: each BatchNormalization folded into its Conv.

    Stem conv1 7x7/2 pad 3 (3 -> 64), relu, maxpool 3x3/2 pad 1; layer1..layer4 of 3, 4, 6, 3 Bottleneck blocks
    (conv1 1x1, relu, conv2 3x3 carrying the stride as torchvision v1.5 does, relu_1, conv3 1x1 to 4x the width,
    downsample.0 1x1 on each layer's first block, Add, relu_2: the block's one ReLU module called three times);
    avgpool, ``torch.flatten(x, 1)``, fc 2048 -> 1000. Input 3x224x224, 25.53 M weights (torchvision's 25.56 M
    less the 26,560 BatchNormalization scales the folding absorbs), about 100 MB as an ONNX file: too big for the
    tests that run every network of ``NETWORKS``, so it is not one of them (``scripts/bench_onnx.py`` uses it).
    Random weights: He-scaled (std sqrt(2 / fan_in)) for the convs a ReLU follows; conv3 and downsample.0, which end
    the two paths an Add joins, at a quarter of the variance (std 0.5 / sqrt(fan_in)), so every block's output stays
    about the size of its input (RMS 1 to 2 throughout, logits' std about 1) instead of doubling 16 times.
    """
    he, damped = np.sqrt(2.0), 0.5
    b = _Builder(seed)
    b.conv("conv1", 3, 64, 7, stride=2, pad=3, bias=False, scale=he)
    b.batch_norm("bn1", 64)
    b.add("relu", "relu")
    block_input = b.max_pool("maxpool", 3, stride=2, pad=1)
    channels = 64
    for number, (blocks, width) in enumerate(RESNET50_LAYERS, start=1):
        for index in range(blocks):
            block = f"layer{number}.{index}"
            stride = 2 if index == 0 and number > 1 else 1
            b.conv(f"{block}.conv1", channels, width, 1, bias=False, scale=he, inputs=[block_input])
            b.batch_norm(f"{block}.bn1", width)
            b.add("relu", f"{block}.relu")
            b.conv(f"{block}.conv2", width, width, 3, stride=stride, pad=1, bias=False, scale=he)
            b.batch_norm(f"{block}.bn2", width)
            b.add("relu", f"{block}.relu", name=f"{block}.relu_1", call=1)
            b.conv(f"{block}.conv3", width, 4 * width, 1, bias=False, scale=damped)
            residual = b.batch_norm(f"{block}.bn3", 4 * width)
            identity = block_input
            if index == 0:
                b.conv(
                    f"{block}.downsample.0", channels, 4 * width, 1, stride=stride, bias=False, scale=damped,
                    inputs=[block_input],
                )  # fmt: skip
                identity = b.batch_norm(f"{block}.downsample.1", 4 * width)
            b.add("add", block, name=f"{block}.add", inputs=[residual, identity])
            block_input = b.add("relu", f"{block}.relu", name=f"{block}.relu_2", call=2)
            channels = 4 * width
    b.add("global_avg_pool", "avgpool")
    b.add("flatten", "", name="flatten", config={"form": "flatten"})
    b.dense("fc", channels, RESNET50_CLASSES)
    return fuse_batch_norm(Network("resnet50", b.layers, RESNET50_INPUT_SHAPE), "resnet50")


NETWORKS = {
    "small_cnn": small_cnn,
    "small_cnn_view": small_cnn_view,
    "small_cnn_matmul": small_cnn_matmul,
    "resnet_block": resnet_block,
    "resnet_block_fused": resnet_block_fused,
    "inverted_residual": inverted_residual,
    "inverted_residual_fused": inverted_residual_fused,
}


def fuse_batch_norm(network, name):
    """The network as torch's eval export writes it: each BatchNormalization that is its Conv's only reader folded in.

    The Conv keeps its name and gains a bias; both its tensors become ``onnx::Conv_<n>`` as the exporter names the
    values it creates.
    """
    readers = {}
    for layer in network.layers:
        for source in layer.inputs:
            readers[source] = readers.get(source, 0) + 1
    layers, replaced, number = [], {}, 60
    for layer in network.layers:
        inputs = [replaced.get(source, source) for source in layer.inputs]
        conv = layers[-1] if layers else None
        if (
            layer.kind == "batch_norm"
            and conv is not None
            and inputs == [conv.name]
            and conv.kind in ("conv", "depthwise_conv")
            and readers[conv.name] == 1
        ):
            w = layer.weights
            scale = w["gamma"].astype(np.float64) / np.sqrt(
                w["moving_variance"].astype(np.float64) + layer.config["epsilon"]
            )
            key = "kernel" if conv.kind == "conv" else "depthwise_kernel"
            # Keras keeps output channels on the last axis of a Conv2D kernel, on the third of a depthwise one.
            kernel = conv.weights[key] * (scale if conv.kind == "conv" else scale[:, None])
            bias = conv.weights.get("bias", np.zeros_like(scale)) - w["moving_mean"]
            bias = bias * scale + w["beta"]
            layers[-1] = dataclasses.replace(
                conv,
                config={**conv.config, "use_bias": True},
                weights={key: kernel.astype(np.float32), "bias": bias.astype(np.float32)},
                initializers={key: f"onnx::Conv_{number}", "bias": f"onnx::Conv_{number + 1}"},
            )
            number += 3
            replaced[layer.name] = conv.name
            continue
        layers.append(dataclasses.replace(layer, inputs=inputs))
    return Network(name, layers, network.input_shape)


# --- ONNX -------------------------------------------------------------------------------------------------------


class _Graph:
    """Nodes and initializers in the order the exporter writes them, named as it names them."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.taken = {}

    def node(self, op, scope, inputs, *, output=None, **attributes):
        from onnx import helper

        base = f"{scope}/{op}"
        if base in self.taken:
            self.taken[base] += 1
            name = f"{base}_{self.taken[base]}"
        else:
            self.taken[base] = 0
            name = base
        output = output or f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    def constant(self, scope, value):
        from onnx import numpy_helper

        return self.node("Constant", scope, [], value=numpy_helper.from_array(np.asarray(value)))

    def initializer(self, name, array):
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name


def _onnx_layer(graph, layer, xs, output):
    """Appends one layer's nodes; ``output`` names the last node's output when it is the graph's."""
    scope, config, w, names = layer.scope, layer.config, layer.weights, layer.initializers
    kind = layer.kind
    if kind in ("conv", "depthwise_conv"):
        if kind == "conv":
            weight, group = w["kernel"].transpose(3, 2, 0, 1), 1  # (out, in, kh, kw)
            key = "kernel"
        else:
            weight, group = w["depthwise_kernel"].transpose(2, 3, 0, 1), config["channels"]  # (C, 1, kh, kw)
            key = "depthwise_kernel"
        inputs = [xs[0], graph.initializer(names[key], weight)]
        if "bias" in w:
            inputs.append(graph.initializer(names["bias"], w["bias"]))
        return graph.node(
            "Conv", scope, inputs, output=output, dilations=[1, 1], group=group,
            kernel_shape=list(config["kernel_size"]), pads=list(config["pads"]), strides=list(config["strides"]),
        )  # fmt: skip
    if kind == "batch_norm":
        inputs = [xs[0]] + [
            graph.initializer(names[key], w[key]) for key in ("gamma", "beta", "moving_mean", "moving_variance")
        ]
        return graph.node(
            "BatchNormalization", scope, inputs, output=output,
            epsilon=config["epsilon"], momentum=config["momentum"], training_mode=0,
        )  # fmt: skip
    if kind == "max_pool":
        return graph.node(
            "MaxPool", scope, xs, output=output, ceil_mode=0, kernel_shape=list(config["pool_size"]),
            pads=list(config["pads"]), strides=list(config["strides"]),
        )  # fmt: skip
    if kind == "relu6":
        low = graph.constant(scope, np.array(0.0, dtype=np.float32))
        high = graph.constant(scope, np.array(6.0, dtype=np.float32))
        return graph.node("Clip", scope, [xs[0], low, high], output=output)
    if kind == "silu":
        sigmoid = graph.node("Sigmoid", scope, xs)
        return graph.node("Mul", scope, [xs[0], sigmoid], output=output)
    if kind == "flatten" and config["form"] == "view":
        shape = graph.node("Shape", scope, xs)
        batch = graph.node("Gather", scope, [shape, graph.constant(scope, np.array(0, dtype=np.int64))], axis=0)
        batch = graph.node("Unsqueeze", scope, [batch, graph.constant(scope, np.array([0], dtype=np.int64))])
        target = graph.node("Concat", scope, [batch, graph.constant(scope, np.array([-1], dtype=np.int64))], axis=0)
        return graph.node("Reshape", scope, [xs[0], target], output=output, allowzero=0)
    if kind == "flatten":
        return graph.node("Flatten", scope, xs, output=output, axis=1)
    if kind == "dense" and config["form"] == "matmul":
        product = graph.node("MatMul", scope, [xs[0], graph.initializer(names["kernel"], w["kernel"])])
        return graph.node("Add", scope, [graph.initializer(names["bias"], w["bias"]), product], output=output)
    if kind == "dense":
        inputs = [xs[0], graph.initializer(names["kernel"], w["kernel"].T), graph.initializer(names["bias"], w["bias"])]
        return graph.node("Gemm", scope, inputs, output=output, alpha=1.0, beta=1.0, transB=1)
    if kind == "softmax":
        return graph.node("Softmax", scope, xs, output=output, axis=config["axis"])
    op = {"relu": "Relu", "add": "Add", "hard_swish": "HardSwish", "global_avg_pool": "GlobalAveragePool"}[kind]
    return graph.node(op, scope, xs, output=output)


def to_onnx(network, *, value_info=False):
    """The network as ``torch.onnx.export`` writes it (NCHW, batch dimension "batch"): an ``onnx.ModelProto``.

    ``value_info=True`` adds the shapes of the intermediate tensors (onnx's shape inference), as torch's exporter
    also records them; the importer should not need them.
    """
    import onnx
    from onnx import TensorProto, helper

    graph = _Graph()
    tensors = {INPUT_NAME: INPUT_NAME}
    for index, layer in enumerate(network.layers):
        last = index == len(network.layers) - 1
        tensors[layer.name] = _onnx_layer(
            graph, layer, [tensors[name] for name in layer.inputs], OUTPUT_NAME if last else None
        )
    proto = helper.make_graph(
        graph.nodes,
        GRAPH_NAME,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH, *network.input_shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH, network.classes])],
        initializer=graph.initializers,
    )
    model = helper.make_model(
        proto,
        ir_version=IR_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
    )
    if value_info:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model


def save_onnx(network, path, external_data=False):
    """Writes ``to_onnx(network)`` to ``path``; with ``external_data`` every initializer goes to ``<name>.data`` beside it."""
    import onnx

    path = Path(path)
    model = to_onnx(network)
    if external_data:
        onnx.save_model(
            model,
            path,
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
            size_threshold=0,
        )
    else:
        onnx.save_model(model, path)
    return path


def run_onnx(model, inputs):
    """onnxruntime's output for NCHW ``inputs``; ``model`` is a ModelProto, a Network or a path."""
    import onnxruntime

    if isinstance(model, Network):
        model = to_onnx(model)
    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(inputs, dtype=np.float32)})[0]


def sample_inputs(network, count=4, seed=1):
    """Random NCHW inputs for the network (``nchw.transpose(0, 2, 3, 1)`` gives the Keras twin's)."""
    return np.random.default_rng(seed).normal(0.0, 1.0, (count, *network.input_shape)).astype(np.float32)


# --- Keras --------------------------------------------------------------------------------------------------------


def _tf_same_pads(size, kernel, stride):
    """The (before, after) padding TensorFlow's "same" places on one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _keras_padding(spatial, kernel, strides, pads):
    """Keras' padding for ONNX ``pads`` (top, left, bottom, right), and the ZeroPadding2D needed before it, if any."""
    top, left, bottom, right = pads
    if not any(pads):
        return "valid", None
    same = [_tf_same_pads(n, k, s) for n, k, s in zip(spatial, kernel, strides)]
    if same == [(top, bottom), (left, right)]:
        return "same", None
    return "valid", ((top, bottom), (left, right))


def _output_shape(layer, shape):
    """The C, H, W (or units) shape of a layer's output for an input of ``shape`` (ceil_mode=0, dilations 1)."""
    config = layer.config
    if layer.kind in ("conv", "depthwise_conv", "max_pool"):
        kernel = config.get("kernel_size", config.get("pool_size"))
        top, left, bottom, right = config["pads"]
        (sh, sw), (kh, kw) = config["strides"], kernel
        channels = config["filters"] if layer.kind == "conv" else shape[0]
        return channels, (shape[1] + top + bottom - kh) // sh + 1, (shape[2] + left + right - kw) // sw + 1
    if layer.kind == "global_avg_pool":
        return shape[0], 1, 1
    if layer.kind == "flatten":
        return (int(np.prod(shape)),)
    if layer.kind == "dense":
        return (config["units"],)
    return shape


def _chw_to_hwc_rows(chw):
    """Row order that takes a kernel read by a CHW-flattened map to one read by the HWC-flattened map."""
    return np.arange(int(np.prod(chw))).reshape(chw).transpose(1, 2, 0).ravel()


def keras_layers(network):
    """The Keras twin's layers in build order (the graph input first), computed with numpy alone."""
    c, h, w = network.input_shape
    shapes = {INPUT_NAME: network.input_shape}
    by_name = {layer.name: layer for layer in network.layers}
    twin = [KerasLayer(INPUT_NAME, "InputLayer", {"shape": (h, w, c)}, [], [])]
    for layer in network.layers:
        config, weights, kind = layer.config, layer.weights, layer.kind
        inputs = list(layer.inputs)
        shape = shapes[inputs[0]]
        if kind in ("conv", "depthwise_conv", "max_pool"):
            kernel = config.get("kernel_size", config.get("pool_size"))
            padding, zero_padding = _keras_padding(shape[1:], kernel, config["strides"], config["pads"])
            if zero_padding:
                twin.append(KerasLayer(f"{layer.name}.pad", "ZeroPadding2D", {"padding": zero_padding}, inputs, []))
                inputs = [f"{layer.name}.pad"]
            spatial = {"strides": tuple(config["strides"]), "padding": padding}
            if kind == "conv":
                klass, kconfig = (
                    "Conv2D",
                    {
                        "filters": config["filters"],
                        "kernel_size": tuple(kernel),
                        **spatial,
                        "use_bias": config["use_bias"],
                    },
                )
                kweights = [weights["kernel"]] + ([weights["bias"]] if "bias" in weights else [])
            elif kind == "depthwise_conv":
                klass, kconfig = (
                    "DepthwiseConv2D",
                    {"kernel_size": tuple(kernel), **spatial, "use_bias": config["use_bias"]},
                )
                kweights = [weights["depthwise_kernel"]] + ([weights["bias"]] if "bias" in weights else [])
            else:
                klass, kconfig, kweights = "MaxPooling2D", {"pool_size": tuple(kernel), **spatial}, []
        elif kind == "batch_norm":
            klass, kconfig = "BatchNormalization", {"epsilon": config["epsilon"], "momentum": config["momentum"]}
            kweights = [weights[key] for key in ("gamma", "beta", "moving_mean", "moving_variance")]
        elif kind == "dense":
            kernel = weights["kernel"]
            source = by_name.get(inputs[0])
            if source is not None and source.kind == "flatten" and len(shapes[source.inputs[0]]) == 3:
                kernel = kernel[_chw_to_hwc_rows(shapes[source.inputs[0]])]
            klass, kconfig, kweights = "Dense", {"units": config["units"]}, [kernel, weights["bias"]]
        else:
            klass, kconfig = {
                "relu": ("ReLU", {}),
                "relu6": ("ReLU", {"max_value": 6.0}),
                "silu": ("Activation", {"activation": "silu"}),
                "hard_swish": ("Activation", {"activation": "hard_silu"}),
                "global_avg_pool": ("GlobalAveragePooling2D", {"keepdims": True}),
                "flatten": ("Flatten", {}),
                "add": ("Add", {}),
                # ONNX's axis 1 of a (batch, classes) tensor is Keras' last.
                "softmax": ("Softmax", {"axis": -1}),
            }[kind]
            kweights = []
        twin.append(KerasLayer(layer.name, klass, kconfig, inputs, kweights))
        shapes[layer.name] = _output_shape(layer, shape)
    return twin


def keras_weights_of(network):
    """Every Keras layer name of the twin -> its weight arrays in Keras order (``[]`` for layers without weights)."""
    return {layer.name: layer.weights for layer in keras_layers(network)}


def to_keras(network):
    """The Keras 3 functional model computing the network's function channels-last, its layers named as the importer's."""
    import keras

    tensors, model_input = {}, None
    for spec in keras_layers(network):
        if spec.class_name == "InputLayer":
            tensors[spec.name] = model_input = keras.Input(shape=spec.config["shape"], name=spec.name)
            continue
        layer = getattr(keras.layers, spec.class_name)(name=spec.name, **spec.config)
        inputs = [tensors[name] for name in spec.inputs]
        tensors[spec.name] = layer(inputs if len(inputs) > 1 else inputs[0])
        if spec.weights:
            layer.set_weights(spec.weights)
    return keras.Model(model_input, tensors[network.layers[-1].name], name=network.name)


# --- reading what onnxruntime computes, for the importer's tests ----------------------------------------


def every_tensor(model_path, nchw):
    """onnxruntime's value of every node output for ``nchw``, asked for independently of the importer."""
    import onnx
    import onnxruntime

    model = onnx.load(model_path)
    outputs = {value.name for value in model.graph.output}
    for node in model.graph.node:
        model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in node.output if name not in outputs)
        outputs.update(node.output)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return {model.graph.input[0].name: nchw, **dict(zip(names, session.run(None, {model.graph.input[0].name: nchw})))}


def expected_activations(bundle, layer, values, recorded_layouts=False):
    """onnxruntime's value of a layer's node in the bundle's layout: NCHW moved to NHWC; a Flatten of a feature
    map in Keras' HWC order, which is its NCHW input moved to NHWC, then flattened.

    PyTorch's files are NCHW throughout. tf2onnx's keep some tensors NHWC; with ``recorded_layouts`` the
    layout the importer recorded for each tensor (``source.onnx_layers``) says which.
    """
    recorded = bundle.manifest["source"]["onnx_layers"]

    def channels_last(name):
        value = values[recorded[name]["tensor"]]
        first = recorded[name]["layout"] == "channels_first" if recorded_layouts else value.ndim == 4
        return value.transpose(0, 2, 3, 1) if first and value.ndim == 4 else value

    value = channels_last(layer.name)
    if layer.type == "Flatten" and layer.inputs[0] in recorded:
        value = channels_last(layer.inputs[0]).reshape(len(value), -1)
    return value


def assert_close(actual, expected, what, relative=1e-5):
    scale = float(np.abs(expected).max()) or 1.0
    difference = float(np.abs(np.asarray(actual) - expected).max())
    assert difference <= relative * scale, f"{what}: differs by {difference:.3g} (largest value {scale:.3g})"
