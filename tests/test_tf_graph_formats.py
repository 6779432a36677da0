"""TensorFlow graphs without Keras layers, each written with the real API, against TensorFlow's own outputs.

TF1 ``Saver`` checkpoints (``tf.compat.v1``: placeholders, layers or ``tf.nn`` ops, a ``Session``) and
graph-only SavedModels (Keras 3 ``model.export``, a ``tf.Module``) import as networks whose every layer's
activations are what TensorFlow computes for the graph; what cannot be translated is refused in one line
that names the file, what it is, and what to save instead.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from bundle_files import random_samples, small_design, write_samples

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from blender_cnn.core.bundle import load_bundle  # noqa: E402
from blender_cnn.core.errors import BlenderCNNError  # noqa: E402
from blender_cnn.extract import __main__ as extract_cli  # noqa: E402
from blender_cnn.extract.keras_bundle import extract  # noqa: E402

pytestmark = pytest.mark.tf
tf1 = tf.compat.v1
QUIET = {"log": lambda message: None}
CLASSES = 3
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def data():
    return random_samples(16, (8, 8, 1), CLASSES, label_dtype=np.int64)


def assert_close(stored, expected, what):
    stored, expected = np.asarray(stored), np.asarray(expected)
    assert stored.shape == expected.shape, what
    assert np.max(np.abs(stored - expected)) <= TOLERANCE * max(1.0, float(np.max(np.abs(expected)))), what


# --- TF1 Saver checkpoints -------------------------------------------------------------------------------

# A TF1 program as the tutorials wrote it, with tf.compat.v1.layers (which need Keras 2, so it runs in its own
# Python with TF_USE_LEGACY_KERAS=1). Batch norm and dropout switch on a training flag (tf.cond); the run is
# written twice, with TensorFlow 2's conditionals (If) and with TensorFlow 1's (Switch/Merge).
TF1_LAYERS_PROGRAM = textwrap.dedent("""
    import os, sys
    import numpy as np, tensorflow as tf
    tf1 = tf.compat.v1
    data = np.load(sys.argv[1])
    inputs, labels = data["inputs"], data["labels"]
    TENSORS = {"conv1": "conv1/Relu:0", "pool1": "pool1/MaxPool:0", "bn1": "{bn}", "conv2": "relu2:0",
               "flatten": "flatten/Reshape:0", "logits": "probs:0"}

    def write_run(folder, bn_output):
        graph = tf.Graph()
        with graph.as_default():
            tf1.set_random_seed(0)
            x = tf1.placeholder(tf.float32, [None, 8, 8, 1], name="images")
            y = tf1.placeholder(tf.int64, [None], name="labels")
            training = tf1.placeholder_with_default(False, [], name="training")
            h = tf1.layers.conv2d(x, 4, 3, padding="same", activation=tf.nn.relu, name="conv1")
            h = tf1.layers.max_pooling2d(h, 2, 2, name="pool1")
            h = tf1.layers.batch_normalization(h, training=training, name="bn1")
            h = tf.nn.relu(tf1.layers.conv2d(h, 4, 3, name="conv2"), name="relu2")
            h = tf1.layers.flatten(h, name="flatten")
            h = tf1.layers.dropout(h, rate=0.5, training=training, name="dropout")
            logits = tf1.layers.dense(h, 3, name="logits")
            probs = tf.nn.softmax(logits, name="probs")
            loss = tf1.losses.sparse_softmax_cross_entropy(y, logits)
            update = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
            with tf.control_dependencies(update):
                train = tf1.train.AdamOptimizer(0.05).minimize(loss)
            saver = tf1.train.Saver(max_to_keep=None)
            with tf1.Session(graph=graph) as session:
                session.run(tf1.global_variables_initializer())
                references = {}
                for epoch in (1, 2):
                    for _ in range(3):
                        session.run(train, {x: inputs, y: labels, training: True})
                    saver.save(session, os.path.join(folder, "model.ckpt"), global_step=epoch)
                    fetches = {name: tensor.replace("{bn}", bn_output) for name, tensor in TENSORS.items()}
                    for name, value in session.run(fetches, {x: inputs[:4]}).items():
                        references[f"{epoch}/{name}"] = value
        np.savez(os.path.join(folder, "references.npz"), **references)

    write_run(sys.argv[2], "bn1/cond/Identity:0")
    tf1.disable_control_flow_v2()
    write_run(sys.argv[3], "bn1/cond/Merge:0")
""")


def test_tf1_saver_run_of_tf_compat_v1_layers_imports_with_the_sessions_activations(tmp_path, data):
    inputs, labels = data
    data_file = tmp_path / "data.npz"
    np.savez(data_file, inputs=inputs, labels=labels)
    program = tmp_path / "train_tf1.py"
    program.write_text(TF1_LAYERS_PROGRAM)
    runs = [tmp_path / "run_cond_v2", tmp_path / "run_cond_v1"]
    for run in runs:
        run.mkdir()
    environment = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    written = subprocess.run(
        [sys.executable, str(program), str(data_file), *map(str, runs)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert written.returncode == 0, written.stderr[-3000:]

    for run in runs:
        assert {"model.ckpt-1.index", "model.ckpt-1.meta", "model.ckpt-2.index", "checkpoint"} <= set(os.listdir(run))
        write_samples(run / "samples.npz", (inputs, labels))
        bundle = load_bundle(extract(run, tmp_path / f"{run.name}.bcnn.npz", **QUIET))

        assert bundle.epochs == [1, 2]  # model.ckpt-N is global step N
        assert [(layer.name, layer.type) for layer in bundle.layers] == [
            ("images", "InputLayer"),
            ("conv1", "Conv2D"),
            ("pool1", "MaxPooling2D"),
            ("bn1", "BatchNormalization"),
            ("conv2", "Conv2D"),
            ("flatten", "Flatten"),
            ("logits", "Dense"),
        ]
        assert bundle.manifest["source"]["kind"] == "tf1"
        assert bundle.manifest["source"]["architecture"] == "model.ckpt-1.meta"
        references = np.load(run / "references.npz")
        for epoch in (1, 2):
            for layer in bundle.layers[1:]:
                assert_close(
                    bundle.array(layer.activations)[bundle.epoch_index(epoch)],
                    references[f"{epoch}/{layer.name}"],
                    f"{run.name} epoch {epoch} {layer.name}",
                )
        assert set(bundle.weights("bn1", 1)) == {"gamma", "beta", "moving_mean", "moving_variance"}
        assert not np.array_equal(bundle.weights("conv1", 1)["kernel"], bundle.weights("conv1", 2)["kernel"])


def tf_nn_graph(variable):
    """A CNN of tf.nn operations on variables made by ``variable(name, shape, initial, trainable)``."""
    pixels = tf1.placeholder(tf.float32, [None, 64], name="pixels")  # flat, reshaped as the MNIST tutorials did
    keep_prob = tf1.placeholder(tf.float32, [], name="keep_prob")
    image = tf.reshape(pixels, [-1, 8, 8, 1], name="image")
    with tf1.variable_scope("conv1"):
        conv1 = tf.nn.relu(
            tf.nn.conv2d(image, variable("weights", [3, 3, 1, 4]), 1, "SAME") + variable("biases", [4], 0.1)
        )
    pool1 = tf.nn.max_pool2d(conv1, 2, 2, "VALID", name="pool1")
    with tf1.variable_scope("norm1"):
        norm1 = tf.nn.batch_normalization(
            pool1,
            variable("mean", [4], 0.2, False),
            variable("variance", [4], 0.5, False),
            variable("beta", [4], 0.0),
            variable("gamma", [4], 1.0),
            1e-3,
        )
    with tf1.variable_scope("depthwise"):
        depthwise = tf.nn.relu6(
            tf.nn.depthwise_conv2d(norm1, variable("weights", [3, 3, 4, 1]), [1, 1, 1, 1], "SAME")
            + variable("biases", [4], 0.0)
        )
    skip = tf.add(depthwise, norm1, name="skip")
    gap = tf.reduce_mean(skip, axis=[1, 2], name="gap")
    dropped = tf1.nn.dropout(gap, keep_prob=keep_prob)
    with tf1.variable_scope("fc"):
        logits = tf.matmul(dropped, variable("weights", [4, CLASSES])) + variable("biases", [CLASSES], 0.0)
    probs = tf.nn.softmax(logits, name="probs")
    return pixels, keep_prob, logits, probs


def ref_variable(name, shape, initial=None, trainable=True):
    initializer = tf1.constant_initializer(initial) if initial is not None else None
    return tf1.get_variable(name, shape, initializer=initializer, trainable=trainable, use_resource=False)


def test_tf1_saver_run_of_tf_nn_operations_and_reference_variables(tmp_path, data):
    inputs, labels = data
    pixels_in = inputs.reshape(len(inputs), 64)
    run = tmp_path / "run"
    tensors = {
        "image": "image:0",
        "conv1": "conv1/Relu:0",
        "pool1": "pool1:0",
        "norm1": "norm1/batchnorm/add_1:0",
        "depthwise": "depthwise/Relu6:0",
        "skip": "skip:0",
        "gap": "gap:0",
        "fc": "probs:0",
    }
    graph = tf.Graph()
    references = {}
    with graph.as_default():
        tf1.set_random_seed(1)
        pixels, keep_prob, logits, _ = tf_nn_graph(ref_variable)
        y = tf1.placeholder(tf.int64, [None], name="labels")
        loss = tf.reduce_mean(tf1.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train = tf1.train.AdamOptimizer(0.05).minimize(loss)
        saver = tf1.train.Saver(max_to_keep=None)
        fc_left_out = tf1.train.Saver([v for v in tf1.global_variables() if not v.name.startswith("fc/")])
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            for epoch in (1, 2):
                for _ in range(3):
                    session.run(train, {pixels: pixels_in, y: labels, keep_prob: 0.5})
                saver.save(session, str(run / "model.ckpt"), global_step=epoch)
                outputs = session.run(tensors, {pixels: pixels_in[:4], keep_prob: 1.0})
                references.update({(epoch, name): value for name, value in outputs.items()})
            fc_left_out.save(session, str(tmp_path / "partial" / "model.ckpt"), global_step=3)
    write_samples(run / "samples.npz", (pixels_in, labels))

    bundle = load_bundle(extract(run, tmp_path / "run.bcnn.npz", **QUIET))
    assert bundle.epochs == [1, 2]
    assert [(layer.name, layer.type) for layer in bundle.layers] == [
        ("pixels", "InputLayer"),
        ("image", "Reshape"),
        ("conv1", "Conv2D"),
        ("pool1", "MaxPooling2D"),
        ("norm1", "BatchNormalization"),
        ("depthwise", "DepthwiseConv2D"),
        ("skip", "Add"),
        ("gap", "GlobalAveragePooling2D"),
        ("fc", "Dense"),
    ]
    assert list(bundle.layer("skip").inputs) == ["depthwise", "norm1"]
    for (epoch, name), expected in references.items():
        assert_close(
            bundle.array(bundle.layer(name).activations)[bundle.epoch_index(epoch)], expected, f"epoch {epoch} {name}"
        )
    # tf.nn.batch_normalization's variables are the layer's, not a product of them
    assert set(bundle.weights("norm1", 2)) == {"gamma", "beta", "moving_mean", "moving_variance"}
    np.testing.assert_allclose(bundle.weights("norm1", 2)["moving_variance"], 0.5)

    one = load_bundle(
        extract(run / "model.ckpt-2.index", tmp_path / "one.bcnn.npz", samples=run / "samples.npz", **QUIET)
    )
    assert one.epochs == [2]
    np.testing.assert_array_equal(one.array("activations/fc"), bundle.array("activations/fc")[1:])

    with pytest.raises(
        BlenderCNNError,
        match=r"model\.ckpt-3: does not fit model\.ckpt-3\.meta: it lacks the "
        r"variables fc/biases, fc/weights",
    ):
        extract(tmp_path / "partial", tmp_path / "partial.bcnn.npz", samples=run / "samples.npz", **QUIET)
    assert not (tmp_path / "partial.bcnn.npz").exists()


SMALL_PRESET = small_design((8, 8, 1))


def test_tf1_checkpoint_takes_a_keras_architecture_matched_by_order_and_shape(tmp_path, data):
    inputs, labels = data
    run = tmp_path / "run"
    graph = tf.Graph()
    with graph.as_default():  # the variables have TensorFlow's default names, Variable, Variable_1, ...
        x = tf1.placeholder(tf.float32, [None, 8, 8, 1], name="x")
        kernel = tf1.Variable(tf1.truncated_normal([3, 3, 1, 2], stddev=0.3, seed=1))
        bias = tf1.Variable(tf1.constant(0.1, shape=[2]))
        hidden = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "VALID") + bias), 2, 2, "VALID")
        weights = tf1.Variable(tf1.truncated_normal([18, CLASSES], stddev=0.3, seed=2))
        out_bias = tf1.Variable(tf1.zeros([CLASSES]))
        probs = tf.nn.softmax(tf.matmul(tf.reshape(hidden, [-1, 18]), weights) + out_bias)
        with tf1.Session(graph=graph) as session:
            session.run(tf1.global_variables_initializer())
            tf1.train.Saver().save(session, str(run / "model.ckpt"), global_step=5, write_meta_graph=False)
            expected = session.run(probs, {x: inputs[:4]})
    write_samples(run / "samples.npz", (inputs, labels))
    preset = tmp_path / "small.json"
    preset.write_text(json.dumps(SMALL_PRESET))

    # Without a .meta graph, a TF1 checkpoint asks for its network like any weights-only file.
    with pytest.raises(BlenderCNNError, match="holds weights only; pass the network's architecture"):
        extract(run, tmp_path / "none.bcnn.npz", **QUIET)

    bundle = load_bundle(extract(run, tmp_path / "run.bcnn.npz", architecture=preset, **QUIET))
    assert bundle.epochs == [5]
    assert bundle.manifest["source"]["kind"] == "tf1"
    assert_close(bundle.array("activations/out")[0], expected, "out")
    assert_close(bundle.weights("conv", 5)["bias"], np.full(2, 0.1), "conv bias")

    wider = {**SMALL_PRESET, "layers": [{**SMALL_PRESET["layers"][0], "filters": 3}, *SMALL_PRESET["layers"][1:]]}
    preset.write_text(json.dumps(wider))
    with pytest.raises(
        BlenderCNNError,
        match=r"model\.ckpt-5: does not fit small\.json: its variable number 1, "
        r"Variable, has shape \(3, 3, 1, 2\) but the network's weight "
        r"conv/kernel \(3, 3, 1, 3\)",
    ):
        extract(run, tmp_path / "wider.bcnn.npz", architecture=preset, **QUIET)


# --- Graph-only SavedModels --------------------------------------------------------------------------------


def branchy_model():
    image = keras.Input((8, 8, 1), name="image")
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")(image)
    normed = keras.layers.BatchNormalization(name="bn")(conv)
    relu = keras.layers.Activation("relu", name="relu")(normed)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="depthwise")(relu)
    added = keras.layers.Add(name="add")([depthwise, relu])
    joined = keras.layers.Concatenate(name="concat")([added, conv])
    pooled = keras.layers.MaxPooling2D(name="pool")(joined)
    gap = keras.layers.GlobalAveragePooling2D(name="gap")(pooled)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="out")(gap)
    model = keras.Model(image, outputs, name="branchy")
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    return model


def test_keras_export_imports_with_the_models_own_activations(tmp_path, data):
    inputs, labels = data
    model = branchy_model()
    model.fit(inputs, labels, epochs=2, batch_size=8, verbose=0)  # moving statistics away from 0 and 1
    model.export(str(tmp_path / "exported"), verbose=False)
    samples = write_samples(tmp_path / "samples.npz", (inputs, labels))

    bundle = load_bundle(extract(tmp_path / "exported", samples=samples, **QUIET))
    assert (tmp_path / "exported.bcnn.npz").is_file()  # beside the SavedModel folder, not inside it
    assert bundle.manifest["source"]["kind"] == "saved_model"
    assert [(layer.name, layer.type) for layer in bundle.layers] == [
        ("image", "InputLayer"),
        ("conv", "Conv2D"),
        ("bn", "BatchNormalization"),
        ("relu", "Activation"),
        ("depthwise", "DepthwiseConv2D"),
        ("add", "Add"),
        ("concat", "Concatenate"),
        ("pool", "MaxPooling2D"),
        ("gap", "GlobalAveragePooling2D"),
        ("out", "Dense"),
    ]
    assert list(bundle.layer("concat").inputs) == ["add", "conv"]
    for layer in bundle.layers[1:]:
        expected = keras.Model(model.inputs, model.get_layer(layer.name).output)(inputs[:4])
        assert_close(bundle.array(layer.activations)[0], expected, layer.name)
        stored = bundle.weights(layer.name, 1)
        for variable in model.get_layer(layer.name).weights:
            np.testing.assert_array_equal(stored[variable.name], variable.numpy())


class TinyNet(tf.Module):
    """A network written as TensorFlow operations on variables, the way tf.Module code does."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(2)
        self.kernel = tf.Variable(rng.normal(0, 0.5, (3, 3, 1, 3)).astype("float32"), name="conv_kernel")
        self.bias = tf.Variable(np.full(3, 0.1, "float32"), name="conv_bias")
        self.dense = tf.Variable(rng.normal(0, 0.5, (3, CLASSES)).astype("float32"), name="dense_kernel")

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
    def __call__(self, x):
        x = (x - 0.5) / 0.25
        h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, self.kernel, 2, "SAME"), self.bias))
        h = tf.nn.avg_pool2d(h, 2, 2, "VALID")
        h = tf.reduce_max(h, axis=[1, 2])
        return tf.nn.softmax(tf.matmul(h, self.dense, transpose_b=False))


def test_tf_module_saved_model_imports_with_the_modules_own_activations(tmp_path, data):
    inputs, labels = data
    net = TinyNet()
    tf.saved_model.save(net, str(tmp_path / "module"))
    samples = write_samples(tmp_path / "samples.npz", (inputs, labels))

    bundle = load_bundle(extract(tmp_path / "module", tmp_path / "module.bcnn.npz", samples=samples, **QUIET))
    assert [(layer.name, layer.type) for layer in bundle.layers] == [
        ("x", "InputLayer"),
        ("sub", "Rescaling"),
        ("Conv2D", "Conv2D"),
        ("AvgPool2D", "AveragePooling2D"),
        ("Max", "GlobalMaxPooling2D"),
        ("MatMul", "Dense"),
    ]
    x = (inputs[:4] - 0.5) / 0.25
    conv = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, net.kernel, 2, "SAME"), net.bias))
    expected = {"sub": x, "Conv2D": conv, "AvgPool2D": tf.nn.avg_pool2d(conv, 2, 2, "VALID"), "MatMul": net(inputs[:4])}
    for name, value in expected.items():
        assert_close(bundle.array(bundle.layer(name).activations)[0], value, name)
    np.testing.assert_array_equal(bundle.weights("Conv2D", 1)["bias"], net.bias.numpy())


def test_graphs_with_an_operation_no_layer_computes_are_refused_saying_what_to_save(tmp_path, data, capsys):
    samples = write_samples(tmp_path / "samples.npz", data)
    image = keras.Input((8, 8, 1))
    normed = keras.layers.LayerNormalization(name="norm")(keras.layers.Conv2D(2, 3, name="conv")(image))
    outputs = keras.layers.Dense(CLASSES, name="out")(keras.layers.Flatten(name="flat")(normed))
    keras.Model(image, outputs).export(str(tmp_path / "exported"), verbose=False)

    code = extract_cli.main([str(tmp_path / "exported"), "--samples", str(samples)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "Traceback" not in error
    assert error.startswith(
        f"error: {tmp_path / 'exported'}: is a Keras 3 export() artifact: an inference graph "
        "without Keras layers, and it uses the operation"
    )
    assert error.endswith('save the model with model.save("model.keras") and import that file')
    assert not (tmp_path / "exported.bcnn.npz").exists()

    class Normalized(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
        def __call__(self, x):
            return tf.nn.local_response_normalization(x)

    tf.saved_model.save(Normalized(), str(tmp_path / "module"))
    with pytest.raises(
        BlenderCNNError,
        match=r"module: is a SavedModel of TensorFlow operations without Keras "
        r"layers .*the operation 'LRN' \(LRN\), which no Keras layer computes "
        r"here; build the network from Keras layers and save the model",
    ):
        extract(tmp_path / "module", tmp_path / "module.bcnn.npz", samples=samples, **QUIET)

    # A TF1 graph is refused at the operation, not cut short before it.
    for name, finish in (
        ("lrn", lambda h, training: tf.nn.local_response_normalization(h)),
        ("cond", lambda h, training: tf.cond(training, lambda: h * 0.5, lambda: h)),
    ):
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, [None, 8, 8, 1], name="x")
            y = tf1.placeholder(tf.int64, [None], name="y")
            training = tf1.placeholder(tf.bool, [], name="training")
            with tf1.variable_scope("conv"):
                h = tf.nn.conv2d(x, tf1.get_variable("kernel", [3, 3, 1, 2]), 1, "VALID")
            h = finish(h, training)
            with tf1.variable_scope("out"):
                logits = tf.matmul(tf.reshape(h, [-1, 72]), tf1.get_variable("kernel", [72, CLASSES]))
            tf.reduce_mean(tf1.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
            with tf1.Session(graph=graph) as session:
                session.run(tf1.global_variables_initializer())
                tf1.train.Saver().save(session, str(tmp_path / name / "model.ckpt"), global_step=1)
        with pytest.raises(BlenderCNNError) as refused:
            extract(tmp_path / name, tmp_path / f"{name}.bcnn.npz", samples=samples, **QUIET)
        assert str(refused.value).startswith(f"{tmp_path / name / 'model.ckpt-1.meta'}: its graph uses the operation")
        assert ("'LRN' (LRN)" if name == "lrn" else "If) (a tf.cond on a value fed at run time") in str(refused.value)
        assert str(refused.value).endswith("else by order and shape")
