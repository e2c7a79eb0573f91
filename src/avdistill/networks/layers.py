"""Layers and conventions shared by the paper's networks (§3), and the rewritten layers that
compute dense-layers-in-disguise as matmuls with the convolutions' own variables.

Layer names are the original's variable scopes with "/" written "." (Keras forbids "/"):
`DualCamNet.conv1`, `hear_net.conv4`, `SoundNet.conv1.norm`,
`resnet_v1_50.block1.unit_1.bottleneck_v1.conv2.BatchNorm`, so a weight's path
(`<layer>/<variable>`) maps one to one onto the checkpoints' names.

Conventions carried over from TF 1.4 slim, on purpose:
- slim's `l2_regularizer(s)` is `s * sum(w^2) / 2`, Keras' `L2(l)` is `l * sum(w^2)`:
  `slim_l2(s)` returns `L2(s / 2)`.
- slim's batch norm `decay` is Keras' `momentum`; its epsilon is given explicitly.
- Frozen layers of the original (the ResNet-50 backbone) keep their *variables* frozen
  but still run batch norm in training mode and update its moving statistics during
  training, as slim's train op did. Keras would switch a `trainable=False` layer to
  inference mode, so `freeze_variables` marks the variables instead of the layers.
- The original passed `keep_prob=0.5` to every network in training, but none of the
  networks used here applies dropout (`shared_net`, HearNet, SoundNet5 and ResNet-50
  ignore it; DualCamNet's `drop1` exists only in the unused non-hybrid variant).

"""

from __future__ import annotations

import keras
from keras import layers

from avdistill.constants import NUM_ACTIONS
from avdistill.networks.registry import HEAD_INITS

TRAINABLE_CHOICES = ("original", "all")


def slim_l2(scale: float) -> keras.regularizers.Regularizer:
    """slim.l2_regularizer(scale) in Keras terms: slim halves the sum of squares."""
    return keras.regularizers.L2(scale / 2.0)


def truncated_normal(stddev: float):
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev)


def he_truncated():
    """slim's variance_scaling_initializer(): factor 2, fan-in, truncated normal."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_in", distribution="truncated_normal")


class MergeFrames(layers.Layer):
    """[B, F, ...] -> [B*F, ...]: frames become rows, as the original fed its networks."""

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(inputs, (-1, *shape[2:]))


class SplitFrames(layers.Layer):
    """[B*F, ...] -> [B, F, ...] for a fixed number of frames F."""

    def __init__(self, frames: int, **kwargs):
        super().__init__(**kwargs)
        self.frames = frames

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(inputs, (-1, self.frames, *shape[1:]))

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}


class TemporalConv3D(layers.Conv3D):
    """A (k x 1 x 1) SAME Conv3D over time, computed as the (k x 1) Conv2D it is.

    DualCamNet's conv1 mixes each pixel's 12 coefficients over 7 neighbouring frames and
    nothing across pixels. Folding the pixels into one axis ([N, T, H, W, C] ->
    [N, T, H * W, C]) gives TensorFlow's 2-D kernels, twice as fast as its 3-D ones for the
    same numbers (forward and both gradients, with and without oneDNN). The variables
    keep Conv3D's names and shapes ([k, 1, 1, in, out]).
    """

    def build(self, input_shape):
        super().build(input_shape)
        if self.kernel_size[1:] != (1, 1) or self.strides != (1, 1, 1) or self.data_format != "channels_last":
            raise ValueError(f"{self.name}: TemporalConv3D needs a (k, 1, 1) kernel, stride 1 and channels_last")

    def convolution_op(self, inputs, kernel):
        _, time, rows, columns, channels = inputs.shape
        pixels = keras.ops.reshape(inputs, (-1, time, rows * columns, channels))
        outputs = keras.ops.conv(pixels, kernel[:, 0], strides=1, padding=self.padding)
        return keras.ops.reshape(outputs, (-1, time, rows, columns, kernel.shape[-1]))


class DenseConv2D(layers.Conv2D):
    """A Conv2D with a single output position: a dense layer in disguise.

    The original wrote its fully connected layers as convolutions whose kernel covers the
    whole input (DualCamNet's 9x12 `full1`, HearNet's 4x1 `conv4`, every 1x1 head layer
    over a 1x1 map) and SoundNet5's `conv5` reads one window of its input. At the default
    config's 32-pixel crops the ResNet-50's block4 (and block3's last unit) works on 1x1
    maps too: its 1x1 convolutions and its SAME 3x3 ones have one output position.
    TensorFlow's CPU convolution kernels, the gradients above all, are far from the matmul
    rate for such shapes (with TensorFlow's own kernels, the default on AVX2-only CPUs,
    `full1` alone took 10.1 s of an 11.9 s DualCamNet step at batch 32; with oneDNN a 1x1
    convolution of 1024 to 2048 channels over a 1x1 map ran at 15 GFLOP/s, its matmul at
    119), so this layer computes the one output position as the matmul it is: the input
    window the output reads, flattened in (row, column, channel) order, times the kernel
    taps that touch it reshaped to [rows * columns * channels, filters]. VALID reads the
    first window with the whole kernel; SAME pads as TensorFlow does (the larger half
    after), so over an input smaller than the kernel only the taps that land on the input
    count (the centre tap of a 3x3 over a 1x1 map) and the zero padding costs nothing.
    The variables (`kernel` of shape [rows, columns, in, out], `bias`) and the layer's
    config are Conv2D's, so checkpoints, converted weights and saved `.npz` files load
    unchanged.
    """

    def build(self, input_shape):
        super().build(input_shape)
        rows, columns = input_shape[1:3]
        output_shape = self.compute_output_shape(input_shape)[1:3]
        if (
            self.data_format != "channels_last"
            or self.dilation_rate != (1, 1)
            or None in (rows, columns)
            or tuple(output_shape) != (1, 1)
        ):
            raise ValueError(
                f"{self.name}: DenseConv2D needs channels_last and one output position; "
                f"got padding {self.padding!r} over a {rows}x{columns} input (output {output_shape})"
            )

    def _taps(self, size: int, taps: int) -> tuple[slice, slice]:
        """(input positions, kernel taps) the one output position multiplies along an axis."""
        before = max(taps - size, 0) // 2 if self.padding == "same" else 0
        count = min(size, taps - before)
        return slice(0, count), slice(before, before + count)

    def convolution_op(self, inputs, kernel):
        (input_rows, kernel_rows), (input_columns, kernel_columns) = (
            self._taps(inputs.shape[1], kernel.shape[0]),
            self._taps(inputs.shape[2], kernel.shape[1]),
        )
        kernel = kernel[kernel_rows, kernel_columns]
        rows, columns, channels, filters = kernel.shape
        window = inputs[:, input_rows, input_columns, :]
        flat = keras.ops.reshape(window, (-1, rows * columns * channels))
        outputs = keras.ops.matmul(flat, keras.ops.reshape(kernel, (rows * columns * channels, filters)))
        return keras.ops.reshape(outputs, (-1, 1, 1, filters))


class FramedConv2D(layers.Conv2D):
    """A VALID (k x 1) Conv2D over a signal with few channels, computed as frames times kernel.

    SoundNet5's conv1 slides a 64-tap kernel with stride 2 over the one-channel waveform.
    With one input channel a convolution kernel has almost no work per loaded value, and
    oneDNN ran it (forward and kernel gradient) at about 5 % of the matmul rate: three
    quarters of the whole SoundNet5 step (3.9 s; 0.3 s framed). With TensorFlow's own
    kernels the two forms measured close to each other (benchmarks/README.md). Framing the signal
    (`tf.signal.frame`: [B, L, 1, C] -> [B, L', k, 1, C]) turns it into one matmul of
    [B * L', k * C] by [k * C, filters], the kernel in its own (k, 1, C) order. The
    variables and config are Conv2D's, so SoundNet's converted weights load unchanged.
    The frames cost k / stride times the input's memory (32 x for conv1), which is why
    only this layer is computed this way.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if self.padding != "valid" or self.kernel_size[1] != 1 or self.strides[1] != 1 or input_shape[2] != 1:
            raise ValueError(f"{self.name}: FramedConv2D needs a VALID (k x 1) kernel over a [B, L, 1, C] signal")

    def convolution_op(self, inputs, kernel):
        import tensorflow as tf

        taps, _, channels, filters = kernel.shape
        frames = tf.signal.frame(inputs[:, :, 0, :], taps, self.strides[0], axis=1)  # [B, L', k, C]
        outputs = tf.matmul(tf.reshape(frames, (-1, taps * channels)), tf.reshape(kernel, (taps * channels, filters)))
        return tf.reshape(outputs, (-1, tf.shape(frames)[1], 1, filters))


class TimeConv2D(layers.Conv2D):
    """A (k x 1) Conv2D over a [B, T, 1, C] map, computed as the (1 x k) Conv2D over [B, 1, T, C].

    HearNet's conv1-conv3 and SoundNet5's conv2-conv4 slide their kernels along time over
    maps one column wide. oneDNN (TensorFlow's default kernels on CPUs with AVX-512 VNNI or
    AMX) runs that layout slowly: HearNet's 11x1 conv1 over 257 channels was 82 % of its
    layers' time, and its whole step took 1.6x as long as with time along the width
    (`benchmarks/README.md`). Moving the axis of size 1 is a reshape, not a copy, of both the
    map and the kernel; TensorFlow's own kernels (AVX2-only CPUs) run both layouts alike.
    The variables (`kernel` [k, 1, in, out], `bias`) and the config are Conv2D's.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if (
            self.kernel_size[1] != 1
            or self.strides[1] != 1
            or self.dilation_rate != (1, 1)
            or self.data_format != "channels_last"
            or input_shape[2] != 1
        ):
            raise ValueError(f"{self.name}: TimeConv2D needs a (k x 1) kernel over a [B, T, 1, C] map")

    def convolution_op(self, inputs, kernel):
        taps, _, channels, filters = kernel.shape
        along_width = keras.ops.reshape(inputs, (-1, 1, inputs.shape[1], channels))
        outputs = keras.ops.conv(
            along_width,
            keras.ops.reshape(kernel, (1, taps, channels, filters)),
            strides=(1, self.strides[0]),
            padding=self.padding,
        )
        return keras.ops.reshape(outputs, (-1, outputs.shape[2], 1, filters))


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization whose training-mode step is TensorFlow's fused kernel.

    Keras 3 computes a training-mode batch norm from separate ops (moments, then the
    normalisation), each a pass over the map, and differentiates through all of them. Over
    SoundNet5's conv1 output ([B, 55126, 1, 32], 1.8 M positions per channel at batch 32)
    that was the largest layer of its step, 40-55 % of its layers' time on one thread
    (`benchmarks/README.md`). `FusedBatchNormV3` does the forward pass and its gradient in one
    kernel each: 3x faster on that map with oneDNN, 1.9x with oneDNN limited to AVX2, 1.6x
    with TensorFlow's own kernels. The variables, config, inference path and moving-average
    update are Keras'; only the order of the float32 sums differs. The op returns the
    Bessel-corrected batch variance for the moving average, which Keras updates with the
    biased one: the update undoes the correction.
    """

    def call(self, inputs, training=None, mask=None):
        fused = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and inputs.dtype == "float32"
        )
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.convert_to_tensor(self.gamma) if self.scale else tf.ones((channels,)),
            offset=tf.convert_to_tensor(self.beta) if self.center else tf.zeros((channels,)),
            mean=tf.zeros((0,)),
            variance=tf.zeros((0,)),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def as_convolutions(model: keras.Model) -> keras.Model:
    """The same network with the layers above back in their plain Keras form (DenseConv2D,
    FramedConv2D and TimeConv2D as Conv2D, TemporalConv3D as Conv3D), with the same weights: the
    reference the tests compare against and the baseline `benchmarks/bench_train.py
    --baseline` measures. FusedBatchNormalization becomes Keras' BatchNormalization."""
    plain = {
        FusedBatchNormalization: layers.BatchNormalization,
        DenseConv2D: layers.Conv2D,
        FramedConv2D: layers.Conv2D,
        TimeConv2D: layers.Conv2D,
        TemporalConv3D: layers.Conv3D,
    }

    def clone(layer):
        return plain.get(type(layer), type(layer)).from_config(layer.get_config())

    reference = keras.models.clone_model(model, clone_function=clone)
    by_path = {variable.path: variable for variable in reference.weights}
    for variable in model.weights:
        copy = by_path[variable.path]
        copy.assign(variable.numpy())
        copy.trainable = variable.trainable  # frozen variables stay frozen
    return reference


def freeze_variables(model: keras.Model, keep: tuple[str, ...]) -> None:
    """Freeze every variable whose path does not start with one of `keep` (layer-name prefixes).

    Layers stay `trainable`, so batch norm keeps its training-mode behaviour (see module doc).
    """
    for variable in model.weights:
        if not variable.path.startswith(keep):
            variable.trainable = False


def head_initializer(head_init: str):
    """The kernel initialiser of shared_net's fc1 and fc2 (one of HEAD_INITS)."""
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {HEAD_INITS}, got {head_init!r}")
    return truncated_normal(0.01) if head_init == "original" else keras.initializers.GlorotUniform()


def shared_net(x, scope: str, num_classes: int = NUM_ACTIONS, head_init: str = "original"):
    """shared.py::shared_net: fc1 1000 1x1 ReLU and fc2 linear, no L2.

    The original initialises both with a truncated normal of standard deviation 0.01
    (head_init "original"). Each then scales what passes through it, forward and backward,
    by about 0.3 (0.0088 x sqrt(1000), the truncation taking 12 % off the 0.01), against
    1 to 1.4 under Glorot's: the logits start near zero and the gradient reaching the layers
    below is about 10 times smaller. Over thousands of steps that passes, but HearNet
    trained for 8 epochs from scratch stayed at chance for 5 of them (README, "What the
    default run shows"). "glorot_uniform" is the initialiser of every other convolution of
    these networks.
    """
    x = DenseConv2D(1000, 1, activation="relu", kernel_initializer=head_initializer(head_init), name=f"{scope}.fc1")(x)
    x = DenseConv2D(num_classes, 1, kernel_initializer=head_initializer(head_init), name=f"{scope}.fc2")(x)
    return layers.Reshape((num_classes,), name=f"{scope}.squeeze")(x)
