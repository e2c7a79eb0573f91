"""Test-only TF-slim ResNet-50 v1: its checkpoint variables (§5.2 of the reference), a V1
checkpoint writer, and a forward pass in plain TensorFlow ops, written from slim's
`resnet_v1.py` / `resnet_utils.py` independently of avdistill.networks."""

from __future__ import annotations

import numpy as np

# slim resnet_v1_50: (scope, bottleneck depth, units); stride 2 on the last unit of blocks 1-3.
BLOCKS = [("block1", 64, 3, 2), ("block2", 128, 4, 2), ("block3", 256, 6, 2), ("block4", 512, 3, 1)]
BN_EPSILON = 1e-5


def _conv_bn(rng, arrays: dict, scope: str, k: int, c_in: int, c_out: int) -> None:
    arrays[f"{scope}/weights"] = rng.normal(0, np.sqrt(2.0 / (k * k * c_in)), (k, k, c_in, c_out)).astype(np.float32)
    arrays[f"{scope}/BatchNorm/gamma"] = rng.uniform(0.5, 1.0, c_out).astype(np.float32)
    arrays[f"{scope}/BatchNorm/beta"] = rng.normal(0, 0.1, c_out).astype(np.float32)
    arrays[f"{scope}/BatchNorm/moving_mean"] = rng.normal(0, 0.1, c_out).astype(np.float32)
    arrays[f"{scope}/BatchNorm/moving_variance"] = rng.uniform(0.5, 2.0, c_out).astype(np.float32)


def resnet_v1_50_variables(rng, classes: int = 1000) -> dict[str, np.ndarray]:
    """Random values under every name of resnet_v1_50.ckpt, with ImageNet's logits."""
    arrays: dict[str, np.ndarray] = {}
    _conv_bn(rng, arrays, "resnet_v1_50/conv1", 7, 3, 64)
    depth_in = 64
    for block, depth, units, _ in BLOCKS:
        for unit in range(1, units + 1):
            scope = f"resnet_v1_50/{block}/unit_{unit}/bottleneck_v1"
            if unit == 1:
                _conv_bn(rng, arrays, f"{scope}/shortcut", 1, depth_in, 4 * depth)
            _conv_bn(rng, arrays, f"{scope}/conv1", 1, depth_in if unit == 1 else 4 * depth, depth)
            _conv_bn(rng, arrays, f"{scope}/conv2", 3, depth, depth)
            _conv_bn(rng, arrays, f"{scope}/conv3", 1, depth, 4 * depth)
        depth_in = 4 * depth
    arrays["resnet_v1_50/logits/weights"] = rng.normal(0, 0.01, (1, 1, 2048, classes)).astype(np.float32)
    arrays["resnet_v1_50/logits/biases"] = np.zeros(classes, np.float32)
    return arrays


def write_v1_checkpoint(path, arrays: dict[str, np.ndarray]) -> None:
    """A V1 (TensorSliceReader) single-file checkpoint, as TF-slim's 2016 tarballs hold."""
    import tensorflow as tf

    names = sorted(arrays)
    tf.raw_ops.Save(
        filename=str(path),
        tensor_names=names + ["global_step"],
        data=[arrays[name] for name in names] + [np.int64(1_000_000)],
    )


# --- slim's forward pass, inference mode ------------------------------------------------


def _batch_norm(tf, x, arrays, scope):
    return tf.nn.batch_normalization(
        x,
        arrays[f"{scope}/BatchNorm/moving_mean"],
        arrays[f"{scope}/BatchNorm/moving_variance"],
        arrays[f"{scope}/BatchNorm/beta"],
        arrays[f"{scope}/BatchNorm/gamma"],
        BN_EPSILON,
    )


def _conv2d_same(tf, x, kernel, stride):
    """resnet_utils.conv2d_same: SAME when stride 1, else explicit symmetric padding + VALID."""
    if stride == 1:
        return tf.nn.conv2d(x, kernel, 1, "SAME")
    k = kernel.shape[0]
    pad_beg = (k - 1) // 2
    pad_end = k - 1 - pad_beg
    x = tf.pad(x, [[0, 0], [pad_beg, pad_end], [pad_beg, pad_end], [0, 0]])
    return tf.nn.conv2d(x, kernel, stride, "VALID")


def _bottleneck(tf, x, arrays, scope, depth, stride):
    if x.shape[-1] == 4 * depth:  # identity depth: slim's subsample (a 1x1 max pool)
        shortcut = x if stride == 1 else tf.nn.max_pool2d(x, 1, stride, "VALID")
    else:
        shortcut = _batch_norm(
            tf, tf.nn.conv2d(x, arrays[f"{scope}/shortcut/weights"], stride, "VALID"), arrays, f"{scope}/shortcut"
        )
    r = tf.nn.relu(
        _batch_norm(tf, tf.nn.conv2d(x, arrays[f"{scope}/conv1/weights"], 1, "VALID"), arrays, f"{scope}/conv1")
    )
    r = tf.nn.relu(
        _batch_norm(tf, _conv2d_same(tf, r, arrays[f"{scope}/conv2/weights"], stride), arrays, f"{scope}/conv2")
    )
    r = _batch_norm(tf, tf.nn.conv2d(r, arrays[f"{scope}/conv3/weights"], 1, "VALID"), arrays, f"{scope}/conv3")
    return tf.nn.relu(shortcut + r)


def resnet_v1_50_logits(images: np.ndarray, arrays: dict[str, np.ndarray], logits_kernel, logits_bias) -> np.ndarray:
    """slim resnet_v1_50(images, is_training=False) with the given logits layer: [N, classes]."""
    import tensorflow as tf

    x = tf.constant(images, tf.float32)
    x = _conv2d_same(tf, x, arrays["resnet_v1_50/conv1/weights"], 2)
    x = tf.nn.relu(_batch_norm(tf, x, arrays, "resnet_v1_50/conv1"))
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")
    for block, depth, units, block_stride in BLOCKS:
        for unit in range(1, units + 1):
            stride = block_stride if unit == units else 1
            x = _bottleneck(tf, x, arrays, f"resnet_v1_50/{block}/unit_{unit}/bottleneck_v1", depth, stride)
    x = tf.reduce_mean(x, [1, 2], keepdims=True)
    logits = tf.nn.conv2d(x, logits_kernel, 1, "VALID") + logits_bias
    return tf.squeeze(logits, [1, 2]).numpy()
