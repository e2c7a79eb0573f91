"""Networks: output shapes, parameter counts worked out by hand from the reference's layer
tables (§3), which variables train, and the layer names that map onto the checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from avdistill.networks import acoustic, audio, build, layers, video


def conv(kh, kw, cin, cout, bias=True, kt=1):
    return kt * kh * kw * cin * cout + (cout if bias else 0)


def batch_norm(channels, scale=True):
    """Trainable (beta, gamma) and moving (mean, variance) parameters."""
    return (2 if scale else 1) * channels, 2 * channels


def count(model):
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    return trainable, model.count_params()


SHARED_HEAD = conv(1, 1, 1024, 1000) + conv(1, 1, 1000, 14)
DUALCAM_FEATURES = (
    conv(1, 1, 12, 12, kt=7)  # conv1: [7,1,1,12,12] + 12
    + conv(5, 5, 12, 32)
    + conv(5, 5, 32, 64)
    + conv(9, 12, 64, 1024)  # full1
)


def resnet50_backbone(temporal=False):
    """(trainable-if-all, moving) parameters of slim resnet_v1_50 without logits."""
    params = conv(7, 7, 3, 64, bias=False)
    moving = 0
    t, m = batch_norm(64)
    params, moving = params + t, moving + m
    depth_in = 64
    for depth, units in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for unit in range(1, units + 1):
            layers = [(1, depth_in, depth), (3, depth, depth), (1, depth, 4 * depth)]
            if depth_in != 4 * depth:
                layers.append((1, depth_in, 4 * depth))  # projection shortcut
            for k, cin, cout in layers:
                t, m = batch_norm(cout)
                params, moving = params + conv(k, k, cin, cout, bias=False) + t, moving + m
            if temporal and unit == 2:
                t, m = batch_norm(depth)
                params, moving = params + 3 * depth * depth + t, moving + m
            depth_in = 4 * depth
    return params, moving


def test_dualcamnet_shapes_and_parameters():
    model = acoustic.dualcamnet(sample_length=1)
    assert tuple(model.output.shape) == (None, 12, 14)
    out = model(np.zeros((2, 12, 36, 48, 12), np.float32))
    assert out.shape == (2, 12, 14)
    expected = DUALCAM_FEATURES + SHARED_HEAD
    assert count(model) == (expected, expected)  # everything trains, no batch norm
    assert expected == 8_179_842


def test_dualcamnet_convolves_time_only_within_each_second():
    """conv1's SAME padding zero-pads time inside each 12-frame group: seconds are independent."""
    model = acoustic.dualcamnet(sample_length=2)
    x = np.random.default_rng(0).normal(size=(1, 24, 36, 48, 12)).astype(np.float32)
    changed = x.copy()
    changed[0, 12:] += 1.0  # change only the second second
    a, b = np.asarray(model(x)), np.asarray(model(changed))
    np.testing.assert_array_equal(a[0, :12], b[0, :12])
    assert not np.allclose(a[0, 12:], b[0, 12:])


def test_hearnet_shapes_and_parameters():
    model = audio.hearnet(sample_length=5)
    # 5 s at 22,050 Hz, frame 440, step 220: (110250 - 440) // 220 + 1 = 500 frames.
    assert tuple(model.input.shape) == (None, 500, 1, 257)
    assert tuple(model.output.shape) == (None, 14)
    expected = (
        conv(11, 1, 257, 128)
        + conv(5, 1, 128, 256)
        + conv(3, 1, 256, 256)
        + conv(4, 1, 256, 1024)
        + conv(1, 1, 1024, 1024)
        + SHARED_HEAD
    )
    assert count(model) == (expected, expected)
    # slim L2 5e-4 is Keras L2 2.5e-4 on conv1..conv5; the shared head has none.
    regularized = [layer.name for layer in model.layers if getattr(layer, "kernel_regularizer", None)]
    assert regularized == [f"hear_net.conv{i}" for i in range(1, 6)]
    assert model.get_layer("hear_net.conv1").kernel_regularizer.l2 == pytest.approx(2.5e-4)
    with pytest.raises(ValueError, match="sample_length"):
        audio.hearnet(sample_length=1)


def test_soundnet5_shapes_parameters_and_batch_norm():
    model = audio.soundnet5(sample_length=5)
    assert tuple(model.input.shape) == (None, 110250)
    assert tuple(model.output.shape) == (None, 14)
    convs = [(64, 1, 32), (32, 32, 64), (16, 64, 128), (8, 128, 256), (16, 256, 1024)]
    trainable = moving = 0
    for k, cin, cout in convs:
        t, m = batch_norm(cout)
        trainable += conv(k, 1, cin, cout) + t
        moving += m
    trainable += conv(1, 1, 1024, 1024) + SHARED_HEAD
    assert count(model) == (trainable, trainable + moving)
    norm = model.get_layer("SoundNet.conv1.norm")
    assert (norm.momentum, norm.epsilon) == (0.999, 1e-3)  # slim defaults, not Torch's 1e-5
    with pytest.raises(ValueError, match="sample_length 5"):
        audio.soundnet5(sample_length=1)


def test_resnet50_trains_only_logits_and_mirrors_slim():
    model = video.resnet50(sample_length=1, crop_size=224)
    assert tuple(model.output.shape) == (None, 12, 14)
    backbone, moving = resnet50_backbone()
    logits = conv(1, 1, 2048, 14)
    assert count(model) == (logits, backbone + moving + logits)
    assert {v.path for v in model.trainable_weights} == {"resnet_v1_50.logits/kernel", "resnet_v1_50.logits/bias"}
    # Stride 2 on the 3x3 conv2 of the LAST unit of blocks 1-3 (slim), identity-pool shortcut.
    assert model.get_layer("resnet_v1_50.block1.unit_3.bottleneck_v1.conv2").strides == (2, 2)
    assert model.get_layer("resnet_v1_50.block1.unit_1.bottleneck_v1.conv1").strides == (1, 1)
    assert model.get_layer("resnet_v1_50.block4.unit_3.bottleneck_v1.conv2").strides == (1, 1)
    bn = model.get_layer("resnet_v1_50.block2.unit_1.bottleneck_v1.conv1.BatchNorm")
    assert (bn.momentum, bn.epsilon) == (0.997, 1e-5)
    assert not any(v.path.endswith("/bias") for v in model.weights if "logits" not in v.path)


def test_resnet50_frozen_backbone_still_updates_batch_norm_statistics():
    """As slim's train op: frozen variables, but BN in training mode updates its moving averages."""
    model = video.resnet50(sample_length=1, crop_size=32)
    bn = model.get_layer("resnet_v1_50.conv1.BatchNorm")
    before = np.asarray(bn.moving_mean.numpy()).copy()
    model(np.random.default_rng(0).normal(size=(1, 12, 32, 32, 3)).astype(np.float32) * 50, training=True)
    assert not np.allclose(before, bn.moving_mean.numpy())


def test_batch_norm_decay_replaces_the_original_decay_everywhere():
    """A short run from scratch needs fast moving averages: one training step moves the
    moving mean (1 - decay) of the way to the batch mean."""
    import keras

    decay = 0.9
    model = build.build_model("resnet50", 1, crop_size=32, batch_norm_decay=decay)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 53 and {layer.momentum for layer in norms} == {decay}  # conv1 + 52 in the units
    frames = np.random.default_rng(0).normal(size=(2, 12, 32, 32, 3)).astype(np.float32)
    conv1 = keras.Model(model.input, model.get_layer("resnet_v1_50.conv1").output)
    batch_mean = np.asarray(conv1(frames)).mean(axis=(0, 1, 2))
    model(frames, training=True)
    moving_mean = np.asarray(model.get_layer("resnet_v1_50.conv1.BatchNorm").moving_mean.numpy())
    np.testing.assert_allclose(
        moving_mean, (1 - decay) * batch_mean, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(batch_mean).max())
    )
    # None keeps the original's; out of range is refused.
    assert build.build_model("soundnet5", 5, batch_norm_decay=None).get_layer("SoundNet.conv1.norm").momentum == 0.999
    with pytest.raises(ValueError, match="batch_norm_decay"):
        build.build_model("soundnet5", 5, batch_norm_decay=1.0)


@pytest.mark.parametrize("name", ["dualcamnet", "hearnet", "soundnet5"])
def test_head_init_changes_only_the_shared_head(name):
    """head_init "original" keeps shared.py's truncated normal (0.01, cut at 2 standard
    deviations); "glorot_uniform" draws fc1 and fc2 from U(-b, b), b = sqrt(6 / (fan_in +
    fan_out)). Every other weight is drawn as before."""
    import keras
    from scipy import stats

    length = 1 if name == "dualcamnet" else 5
    weights = {}
    for head_init in ("original", "glorot_uniform"):
        keras.utils.set_random_seed(3)
        model = build.build_model(name, length, head_init=head_init)
        weights[head_init] = {w.path: np.asarray(w.numpy()) for w in model.weights}
    scope = {"dualcamnet": "DualCamNet", "hearnet": "hear_net", "soundnet5": "SoundNet"}[name]
    head = {f"{scope}.fc1/kernel", f"{scope}.fc2/kernel"}
    assert set(weights["original"]) == set(weights["glorot_uniform"])
    for path, original in weights["original"].items():
        if path not in head:
            np.testing.assert_array_equal(weights["glorot_uniform"][path], original, err_msg=path)
    truncated_std = 0.01 * stats.truncnorm(-2, 2).std()
    for path in head:
        original, glorot = weights["original"][path], weights["glorot_uniform"][path]
        fan_in, fan_out = int(np.prod(original.shape[:-1])), original.shape[-1]
        bound = np.sqrt(6 / (fan_in + fan_out))
        assert np.abs(original).max() <= 0.02 and np.isclose(original.std(), truncated_std, rtol=0.05), path
        assert np.abs(glorot).max() <= np.float32(bound) * (1 + 1e-6) and np.isclose(
            glorot.std(), bound / np.sqrt(3), rtol=0.05
        ), path


def test_head_init_is_refused_by_a_network_without_the_shared_head():
    assert build.build_model("resnet50", 1, crop_size=32, head_init="original").name  # the default builds
    with pytest.raises(build.NetworkError, match="resnet50.*takes no head_init"):
        build.build_model("resnet50", 1, crop_size=32, head_init="glorot_uniform")
    with pytest.raises(ValueError, match="head_init must be one of"):
        build.build_model("hearnet", 5, head_init="xavier")


def test_temporal_resnet50_identity_temporal_convolutions():
    model = video.temporal_resnet50(crop_size=224)
    assert tuple(model.input.shape) == (None, 5, 224, 224, 3)
    assert tuple(model.output.shape) == (None, 14)
    backbone, moving = resnet50_backbone(temporal=True)
    logits = conv(1, 1, 2048, 14)
    assert count(model) == (logits, backbone + moving + logits)
    kernel = model.get_layer("resnet_v1_50.block2.unit_2.bottleneck_v1.conv_temp").kernel.numpy()
    assert kernel.shape == (3, 1, 1, 128, 128)
    np.testing.assert_array_equal(kernel[1, 0, 0], np.eye(128))
    assert not kernel[0].any() and not kernel[2].any()


def test_temporal_resnet50_averages_frame_logits():
    model = video.temporal_resnet50(crop_size=32)
    clip = np.random.default_rng(1).normal(size=(2, 5, 32, 32, 3)).astype(np.float32)
    # With identity temporal convolutions a clip of 5 equal frames gives that frame's logits.
    same = np.repeat(clip[:, :1], 5, axis=1)
    out = np.asarray(model(same, training=False))
    assert out.shape == (2, 14)
    single = np.asarray(model(np.repeat(clip[:1, :1], 5, axis=1), training=False))
    # Random weights give logits in the hundreds, and a batch of 1 and of 2 may take other
    # CPU kernels: float32 agreement is relative to the logits' magnitude, not absolute.
    np.testing.assert_allclose(out[:1], single, rtol=1e-5, atol=1e-5 * np.abs(single).max())


def test_audio_visual_model():
    model = video.av_model(sample_length=1, crop_size=224)
    assert tuple(model.output.shape) == (None, 12, 14)
    backbone, moving = resnet50_backbone()
    visual_logits = conv(1, 1, 2048, 1024)
    head = conv(1, 1, 2048, 1000) + conv(1, 1, 1000, 14)
    trainable = DUALCAM_FEATURES + visual_logits + head
    assert count(model) == (trainable, backbone + moving + trainable)
    scopes = {v.path.split(".")[0] for v in model.trainable_weights}
    assert scopes == {"DualCamNet", "resnet_v1_50", "AVNet"}


def test_trainable_all_trains_the_backbone():
    model = video.resnet50(sample_length=1, crop_size=32, trainable="all")
    backbone, _ = resnet50_backbone()
    assert count(model)[0] == backbone + conv(1, 1, 2048, 14)


# --- layers computed as the matmuls they are (issue 13) ---------------------------------


def _outputs_and_gradients(model, inputs, labels):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = model(inputs, training=True)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels, logits))
    gradients = tape.gradient(loss, model.trainable_weights)
    return np.asarray(logits), {v.path: np.asarray(g) for v, g in zip(model.trainable_weights, gradients, strict=True)}


@pytest.mark.parametrize(
    "name, length, rewritten",
    [
        ("dualcamnet", 1, {"DualCamNet.conv1", "DualCamNet.full1", "DualCamNet.fc1", "DualCamNet.fc2"}),
        ("hearnet", 5, {f"hear_net.{name}" for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2")}),
        (
            "soundnet5",
            5,
            {f"SoundNet.{name}" for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1", "fc2")}
            | {f"SoundNet.conv{index}.norm" for index in range(1, 6)},
        ),
        # At a 32-pixel crop the maps are 16 (conv1), 8 (pool1), then halved by the last
        # unit of blocks 1-3: block3's last unit reaches 1x1 at its strided conv2, and
        # block4 works on 1x1 maps. Every convolution with one output position is a matmul.
        (
            "resnet50",
            1,
            {"resnet_v1_50.logits"}
            | {f"resnet_v1_50.block3.unit_6.bottleneck_v1.{conv}" for conv in ("conv2", "conv3")}
            | {
                f"resnet_v1_50.block4.unit_{unit}.bottleneck_v1.{conv}"
                for unit in (1, 2, 3)
                for conv in ("conv1", "conv2", "conv3")
            }
            | {"resnet_v1_50.block4.unit_1.bottleneck_v1.shortcut"},
        ),
    ],
)
def test_rewritten_layers_match_their_convolutions(name, length, rewritten):
    """Every layer that is a dense layer (or a 2-D conv) in disguise gives the outputs and
    gradients of the convolution it replaces, on random weights and inputs, with the same
    variable names and shapes."""
    import keras

    keras.utils.set_random_seed(3)
    model = build.build_model(name, length, crop_size=32, trainable="all")
    kinds = (
        layers.DenseConv2D,
        layers.FramedConv2D,
        layers.TimeConv2D,
        layers.TemporalConv3D,
        layers.FusedBatchNormalization,
    )
    assert {layer.name for layer in model.layers if isinstance(layer, kinds)} == rewritten
    reference = layers.as_convolutions(model)
    assert [(v.path, tuple(v.shape)) for v in reference.weights] == [(v.path, tuple(v.shape)) for v in model.weights]
    assert not any(isinstance(layer, kinds) for layer in reference.layers)
    # A batch of 8, not 2: a training-mode batch norm over a 1x1 map (ResNet-50's block4,
    # SoundNet5's conv5) normalises `batch` values per channel, and two values normalise to
    # +-1 whatever they are: the gradient through it is zero but for rounding noise.
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(8, *model.input.shape[1:])).astype(np.float32)
    labels = np.eye(14, dtype=np.float32)[rng.integers(0, 14, size=(8, *model.output.shape[1:-1]))]
    logits, gradients = _outputs_and_gradients(model, inputs, labels)
    expected_logits, expected_gradients = _outputs_and_gradients(reference, inputs, labels)
    # Float32 sums in another order: agreement relative to each array's magnitude.
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-4, atol=1e-4 * np.abs(expected_logits).max())
    assert gradients.keys() == expected_gradients.keys()
    # How far float32 alone moves a gradient: the convolution form itself, on the same
    # batch in another order (the same sum, other roundings). Through the training-mode
    # batch norms of a random network this is not small: SoundNet5's gradients moved by 2.5
    # % of their norm on a Zen 5, as far as the rewritten form's from the convolution form's.
    # So each gradient must be within ten times that noise (and 1e-4 of its norm) of the
    # convolution form's; a wrong rewrite (a tap, a transpose, a padding off) moves it by
    # its whole size.
    order = rng.permutation(len(inputs))
    _, reordered_gradients = _outputs_and_gradients(reference, inputs[order], labels[order])
    largest = max(np.abs(g).max() for g in expected_gradients.values())
    names = {layer.name for layer in model.layers}
    for path, expected in expected_gradients.items():
        layer, variable = path.split("/")
        if variable == "bias" and f"{layer}.norm" in names:
            # A bias in front of a batch norm has an exact zero gradient (the norm removes
            # shifts): both forms give rounding noise there, to compare with zero.
            assert np.abs(gradients[path]).max() < 1e-2 * largest, path
            continue
        noise = np.linalg.norm(reordered_gradients[path] - expected)
        difference = np.linalg.norm(gradients[path] - expected)
        assert difference <= 10 * noise + 1e-4 * np.linalg.norm(expected), (path, difference, noise)
    assert any(np.abs(g).max() > 0 for g in gradients.values())


def test_fused_batch_norm_updates_the_moving_statistics_as_keras_does():
    """The fused training step normalises with the biased batch variance and moves the
    averages by it, as Keras' BatchNormalization does: both are checked against NumPy."""
    import keras

    rng = np.random.default_rng(5)
    x = (rng.normal(size=(4, 300, 1, 6)) * rng.uniform(0.5, 3, size=6) + rng.normal(size=6)).astype(np.float32)
    norm = layers.FusedBatchNormalization(momentum=0.9, epsilon=1e-3, name="norm")
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, name="norm")
    for layer in (norm, plain):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 6))
        layer.beta.assign(np.linspace(-1.0, 1.0, 6))
    import tensorflow as tf

    # The training step is the fused kernel, not a silent fallback to Keras' ops.
    graph = tf.function(lambda inputs: norm(inputs, training=True)).get_concrete_function(tf.constant(x)).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}
    norm.moving_mean.assign(np.zeros(6))
    norm.moving_variance.assign(np.ones(6))
    outputs, expected_outputs = np.asarray(norm(x, training=True)), np.asarray(plain(x, training=True))
    values = x.astype(np.float64).reshape(-1, 6)
    mean, variance = values.mean(axis=0), values.var(axis=0)  # biased, as Keras
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.moving_variance.numpy(), 0.9 + 0.1 * variance, rtol=1e-5)
    np.testing.assert_allclose(plain.moving_variance.numpy(), 0.9 + 0.1 * variance, rtol=1e-5)
    normalised = (values - mean) / np.sqrt(variance + 1e-3) * np.linspace(0.5, 2.0, 6) + np.linspace(-1.0, 1.0, 6)
    np.testing.assert_allclose(outputs.reshape(-1, 6), normalised, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-4, atol=1e-4)
    # Inference uses the moving statistics, through Keras' own path.
    norm.moving_mean.assign(plain.moving_mean)
    norm.moving_variance.assign(plain.moving_variance)
    np.testing.assert_array_equal(np.asarray(norm(x, training=False)), np.asarray(plain(x, training=False)))
    assert [(v.path, tuple(v.shape)) for v in norm.weights] == [(v.path, tuple(v.shape)) for v in plain.weights]


def test_rewritten_layers_refuse_shapes_they_do_not_cover():
    import keras

    with pytest.raises(ValueError, match="one output position"):
        layers.DenseConv2D(8, 3, name="wide")(keras.Input((5, 5, 2)))
    with pytest.raises(ValueError, match="one output position"):
        layers.DenseConv2D(8, 3, padding="same", name="padded")(keras.Input((3, 3, 2)))


def test_dense_conv_over_a_map_smaller_than_its_kernel_uses_the_taps_that_land_on_it():
    """SAME padding over a 1x1 (or 2x1) map: only the kernel taps over the input count, as in
    TensorFlow's convolution, which pads the larger half after the input."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(6)
    for size, kernel in (((1, 1), 3), ((2, 1), 3), ((1, 1), 5), ((2, 2), 4)):
        x = rng.normal(size=(3, *size, 4)).astype(np.float32)
        dense = layers.DenseConv2D(5, kernel, strides=2, padding="same", use_bias=False, name="dense")
        dense.build(x.shape)
        weights = rng.normal(size=(kernel, kernel, 4, 5)).astype(np.float32)
        dense.kernel.assign(weights)
        expected = tf.nn.conv2d(x, weights, 2, "SAME").numpy()
        assert expected.shape == (3, 1, 1, 5)
        np.testing.assert_allclose(np.asarray(dense(x)), expected, rtol=1e-5, atol=1e-5)
        assert isinstance(dense, keras.layers.Conv2D)
    with pytest.raises(ValueError, match="k x 1"):
        layers.FramedConv2D(8, (4, 2), name="square")(keras.Input((16, 2, 1)))
    with pytest.raises(ValueError, match=r"\[B, T, 1, C\]"):
        layers.TimeConv2D(8, (3, 1), name="two_columns")(keras.Input((16, 2, 1)))
    with pytest.raises(ValueError, match=r"\[B, T, 1, C\]"):
        layers.TimeConv2D(8, (3, 2), padding="same", name="square")(keras.Input((16, 1, 1)))
    with pytest.raises(ValueError, match=r"\(k, 1, 1\)"):
        layers.TemporalConv3D(8, (3, 3, 1), padding="same", name="spatial")(keras.Input((4, 5, 5, 2)))
