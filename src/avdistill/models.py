"""Every network of the paper in Keras 3, layer by layer as the original built them (§3).

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

Models take the pipeline's batches (`avdistill.pipeline.MODEL_INPUTS`) as named inputs.
Frame models (DualCamNet, ResNet-50, the audio-visual model) return per-frame logits
[B, F, 14]; the others return one row per sample, [B, 14].
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from avdistill.constants import (
    ACOUSTIC_IMAGE_SHAPE,
    FRAMES_PER_SECOND,
    NUM_ACTIONS,
    STFT_FFT_LENGTH,
    STFT_FRAME_LENGTH,
    STFT_FRAME_STEP,
    TARGET_SAMPLE_RATE,
    TEMPORAL_FRAMES,
    VIDEO_CROP_SIZE,
)

MODEL_NAMES = ("dualcamnet", "hearnet", "soundnet5", "resnet50", "temporal_resnet50", "av_model")
TRAINABLE_CHOICES = ("original", "all")


def slim_l2(scale: float) -> keras.regularizers.Regularizer:
    """slim.l2_regularizer(scale) in Keras terms: slim halves the sum of squares."""
    return keras.regularizers.L2(scale / 2.0)


def _truncated_normal(stddev: float):
    return keras.initializers.TruncatedNormal(mean=0.0, stddev=stddev)


def _he_truncated():
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
    """A VALID Conv2D with a single output position: a dense layer in disguise.

    The original wrote its fully connected layers as convolutions whose kernel covers the
    whole input (DualCamNet's 9x12 `full1`, HearNet's 4x1 `conv4`, every 1x1 head layer
    over a 1x1 map) and SoundNet5's `conv5` reads one window of its input. TensorFlow's CPU
    convolution kernels, the gradients above all, are far from the matmul rate for such
    shapes (with TensorFlow's own kernels, the default on AVX2-only CPUs, `full1` alone
    took 10.1 s of an 11.9 s DualCamNet step at batch 32), so this layer computes the one output position as the matmul it is: the first
    window of the input, flattened in (row, column, channel) order, times the kernel
    reshaped to [rows * columns * channels, filters]. The variables (`kernel` of shape
    [rows, columns, in, out], `bias`) and the layer's config are Conv2D's, so checkpoints,
    converted weights and saved `.npz` files load unchanged.
    """

    def build(self, input_shape):
        super().build(input_shape)
        rows, columns = input_shape[1:3]
        output_shape = self.compute_output_shape(input_shape)[1:3]
        if self.padding != "valid" or self.data_format != "channels_last" or tuple(output_shape) != (1, 1):
            raise ValueError(
                f"{self.name}: DenseConv2D needs VALID padding, channels_last and one output position; "
                f"got padding {self.padding!r} over a {rows}x{columns} input (output {output_shape})"
            )

    def convolution_op(self, inputs, kernel):
        rows, columns, channels, filters = kernel.shape
        window = inputs[:, :rows, :columns, :]  # the only window a single output position reads
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


def as_convolutions(model: keras.Model) -> keras.Model:
    """The same network with the layers above back in their plain Keras form (DenseConv2D
    and FramedConv2D as Conv2D, TemporalConv3D as Conv3D), with the same weights: the
    reference the tests compare against and the baseline `benchmarks/bench_train.py
    --baseline` measures."""
    plain = {DenseConv2D: layers.Conv2D, FramedConv2D: layers.Conv2D, TemporalConv3D: layers.Conv3D}

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


def _shared_net(x, scope: str, num_classes: int = NUM_ACTIONS):
    """shared.py::shared_net: fc1 1000 1x1 ReLU and fc2 linear, truncated-normal(0.01), no L2."""
    x = DenseConv2D(1000, 1, activation="relu", kernel_initializer=_truncated_normal(0.01), name=f"{scope}.fc1")(x)
    x = DenseConv2D(num_classes, 1, kernel_initializer=_truncated_normal(0.01), name=f"{scope}.fc2")(x)
    return layers.Reshape((num_classes,), name=f"{scope}.squeeze")(x)


# --- DualCamNet (acoustic images) ------------------------------------------------------


def _dualcamnet_features(acoustic_images, frames: int):
    """dualcamnet_v2 with num_classes=None: [B, F, 36, 48, 12] -> [B*F, 1, 1, 1024] ("full1")."""
    scope = "DualCamNet"
    x = layers.Reshape((frames // FRAMES_PER_SECOND, FRAMES_PER_SECOND, *ACOUSTIC_IMAGE_SHAPE))(acoustic_images)
    x = MergeFrames(name=f"{scope}.seconds")(x)  # [B*L, 12, 36, 48, 12]: one group per second
    # Temporal 7x1x1 convolution; SAME zero-pads time inside each 1-second group.
    x = TemporalConv3D(12, (7, 1, 1), padding="same", activation="relu", name=f"{scope}.conv1")(x)
    x = MergeFrames(name=f"{scope}.frames")(x)  # [B*F, 36, 48, 12]
    x = layers.Conv2D(32, 5, padding="same", activation="relu", name=f"{scope}.conv2")(x)
    x = layers.MaxPool2D(2, 2, name=f"{scope}.pool2")(x)
    x = layers.Conv2D(64, 5, padding="same", activation="relu", name=f"{scope}.conv3")(x)
    x = layers.MaxPool2D(2, 2, name=f"{scope}.pool3")(x)
    return DenseConv2D(1024, (9, 12), activation="relu", name=f"{scope}.full1")(x)


def dualcamnet(sample_length: int = 1) -> keras.Model:
    """The acoustic-image teacher ("DualCamHybridNet"): per-frame logits [B, 12L, 14]. All trainable."""
    frames = FRAMES_PER_SECOND * sample_length
    acoustic_images = keras.Input((frames, *ACOUSTIC_IMAGE_SHAPE), name="acoustic_images")
    x = _dualcamnet_features(acoustic_images, frames)
    logits = SplitFrames(frames, name="DualCamNet.per_frame")(_shared_net(x, "DualCamNet"))
    return keras.Model(acoustic_images, logits, name="dualcamnet")


# --- HearNet (spectrogram) -------------------------------------------------------------


def spectrogram_frames(sample_length: int) -> int:
    samples = TARGET_SAMPLE_RATE * sample_length
    return (samples - STFT_FRAME_LENGTH) // STFT_FRAME_STEP + 1


def hearnet(sample_length: int = 5) -> keras.Model:
    """HearNet on the magnitude spectrogram [B, T, 1, 257]: logits [B, 14]. All trainable."""
    scope, l2 = "hear_net", slim_l2(5e-4)
    time_steps = spectrogram_frames(sample_length)
    if time_steps < 500:
        # Three 5x1 poolings and a 4x1 VALID conv4 need at least 500 frames (5 s).
        raise ValueError(f"HearNet needs sample_length >= 5 s (500 spectrogram frames), got {sample_length} s")
    spectrogram = keras.Input((time_steps, 1, STFT_FFT_LENGTH // 2 + 1), name="spectrogram")
    x = spectrogram
    for index, (filters, kernel) in enumerate(((128, 11), (256, 5), (256, 3)), start=1):
        x = layers.Conv2D(
            filters, (kernel, 1), padding="same", activation="relu", kernel_regularizer=l2, name=f"{scope}.conv{index}"
        )(x)
        x = layers.MaxPool2D((5, 1), (5, 1), name=f"{scope}.pool{index}")(x)
    x = DenseConv2D(1024, (4, 1), activation="relu", kernel_regularizer=l2, name=f"{scope}.conv4")(x)
    x = DenseConv2D(1024, 1, activation="relu", kernel_regularizer=l2, name=f"{scope}.conv5")(x)
    return keras.Model(spectrogram, _shared_net(x, scope), name="hearnet")


# --- SoundNet5 (raw waveform) ----------------------------------------------------------

# (filters, kernel, stride, padding each side, pool) of conv1..conv5 (§3.3).
SOUNDNET5_LAYERS = (
    (32, 64, 2, 32, 8),
    (64, 32, 2, 16, 8),
    (128, 16, 2, 8, 8),
    (256, 8, 2, 4, None),
    (1024, 16, 12, 4, None),
)


def soundnet5(sample_length: int = 5) -> keras.Model:
    """SoundNet5 on the waveform [B, 22050L]: logits [B, 14]. All trainable (fine-tuning).

    slim soundnet_arg_scope: VALID convs with biases, no activation, truncated-normal(0.01)
    weights and L2 5e-4; then batch norm (decay 0.999, eps 0.001, with scale) and ReLU.
    """
    scope, l2 = "SoundNet", slim_l2(5e-4)
    samples = TARGET_SAMPLE_RATE * sample_length
    length = samples
    for _, kernel, stride, pad, pool in SOUNDNET5_LAYERS:
        length = (length + 2 * pad - kernel) // stride + 1
        length = length // pool if pool else length
    if length != 1:
        raise ValueError(f"SoundNet5 needs sample_length 5 s (conv5 output length 1), got {sample_length} s")
    waveform = keras.Input((samples,), name="waveform")
    x = layers.Reshape((samples, 1, 1))(waveform)
    for index, (filters, kernel, stride, pad, pool) in enumerate(SOUNDNET5_LAYERS, start=1):
        x = layers.ZeroPadding2D(((pad, pad), (0, 0)), name=f"{scope}.conv{index}.pad")(x)
        # conv1 reads one channel: a matmul of the waveform's frames. conv5 has one output
        # position (checked above): a dense layer over its first window.
        conv = FramedConv2D if index == 1 else DenseConv2D if index == len(SOUNDNET5_LAYERS) else layers.Conv2D
        x = conv(
            filters,
            (kernel, 1),
            strides=(stride, 1),
            kernel_initializer=_truncated_normal(0.01),
            kernel_regularizer=l2,
            name=f"{scope}.conv{index}",
        )(x)
        x = layers.BatchNormalization(momentum=0.999, epsilon=1e-3, name=f"{scope}.conv{index}.norm")(x)
        x = layers.ReLU(name=f"{scope}.conv{index}.relu")(x)
        if pool:
            x = layers.MaxPool2D((pool, 1), (pool, 1), name=f"{scope}.pool{index}")(x)
    x = DenseConv2D(
        1024,
        1,
        activation="relu",
        kernel_initializer=_truncated_normal(0.01),
        kernel_regularizer=l2,
        name=f"{scope}.conv6",
    )(x)
    return keras.Model(waveform, _shared_net(x, scope), name="soundnet5")


# --- ResNet-50 v1, slim layout ---------------------------------------------------------

RESNET_BLOCKS = ((64, 3), (128, 4), (256, 6), (512, 3))  # (bottleneck depth, units); output depth x4


class TemporalConv(layers.Layer):
    """`conv_temp`: a [3,1,1] conv3d over 5 frames, initialised to the identity (centre tap).

    In TF 1.4 `slim.conv3d` was `slim.conv2d`, so the ResNet arg scope gave it batch norm
    and ReLU and no bias (§3.5); the BN and ReLU follow as separate layers.
    """

    def __init__(self, frames: int, regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.frames = frames
        self.regularizer = regularizer

    def build(self, input_shape):
        channels = input_shape[-1]
        identity = np.zeros((3, 1, 1, channels, channels), np.float32)
        identity[1, 0, 0] = np.eye(channels, dtype=np.float32)
        self.kernel = self.add_weight(
            name="weights",
            shape=identity.shape,
            initializer=keras.initializers.Constant(identity),
            regularizer=self.regularizer,
        )

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        clips = keras.ops.reshape(inputs, (-1, self.frames, *shape[1:]))
        out = keras.ops.conv(clips, self.kernel, strides=1, padding="same")
        return keras.ops.reshape(out, (-1, *shape[1:]))

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}


def _batch_norm(x, name: str):
    return layers.BatchNormalization(momentum=0.997, epsilon=1e-5, name=f"{name}.BatchNorm")(x)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, l2, relu: bool = True):
    """slim conv2d with batch norm, no bias; strided convs use conv2d_same (explicit pad, VALID)."""
    padding = "same"
    if stride > 1:
        total = kernel - 1
        x = layers.ZeroPadding2D(((total // 2, total - total // 2),) * 2, name=f"{name}.pad")(x)
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=_he_truncated(),
        kernel_regularizer=l2,
        name=name,
    )(x)
    x = _batch_norm(x, name)
    return layers.ReLU(name=f"{name}.relu")(x) if relu else x


def _bottleneck(x, depth: int, stride: int, name: str, l2, temporal_frames: int | None):
    """bottleneck_v1: stride on the 3x3 conv2; 1x1 projection shortcut only when depth changes."""
    in_depth = x.shape[-1]
    if in_depth == 4 * depth:
        shortcut = x if stride == 1 else layers.MaxPool2D(1, stride, name=f"{name}.shortcut")(x)
    else:
        shortcut = _conv_bn(x, 4 * depth, 1, stride, f"{name}.shortcut", l2, relu=False)
    y = _conv_bn(x, depth, 1, 1, f"{name}.conv1", l2)
    y = _conv_bn(y, depth, 3, stride, f"{name}.conv2", l2)
    if temporal_frames:
        y = TemporalConv(temporal_frames, l2, name=f"{name}.conv_temp")(y)
        y = layers.ReLU(name=f"{name}.conv_temp.relu")(_batch_norm(y, f"{name}.conv_temp"))
    y = _conv_bn(y, 4 * depth, 1, 1, f"{name}.conv3", l2, relu=False)
    return layers.ReLU(name=f"{name}.out")(layers.Add(name=f"{name}.add")([shortcut, y]))


def _resnet_v1_50(images, num_classes: int, weight_decay: float, temporal_frames: int | None = None):
    """slim resnet_v1_50 on [N, H, W, 3] -> [N, 1, 1, num_classes] (logits, not squeezed)."""
    scope, l2 = "resnet_v1_50", slim_l2(weight_decay)
    x = layers.ZeroPadding2D(3, name=f"{scope}.conv1.pad")(images)
    x = layers.Conv2D(
        64,
        7,
        strides=2,
        use_bias=False,
        kernel_initializer=_he_truncated(),
        kernel_regularizer=l2,
        name=f"{scope}.conv1",
    )(x)
    x = layers.ReLU(name=f"{scope}.conv1.relu")(_batch_norm(x, f"{scope}.conv1"))
    x = layers.MaxPool2D(3, 2, padding="same", name=f"{scope}.pool1")(x)
    for block, (depth, units) in enumerate(RESNET_BLOCKS, start=1):
        for unit in range(1, units + 1):
            # Downsampling in the LAST unit of blocks 1-3 (slim), not the first (Keras).
            stride = 2 if unit == units and block < len(RESNET_BLOCKS) else 1
            name = f"{scope}.block{block}.unit_{unit}.bottleneck_v1"
            x = _bottleneck(x, depth, stride, name, l2, temporal_frames if unit == 2 else None)
    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{scope}.pool5")(x)
    return DenseConv2D(
        num_classes, 1, kernel_initializer=_he_truncated(), kernel_regularizer=l2, name=f"{scope}.logits"
    )(x)


def _check_trainable(trainable: str) -> None:
    if trainable not in TRAINABLE_CHOICES:
        raise ValueError(f"trainable must be one of {TRAINABLE_CHOICES}, got {trainable!r}")


def resnet50(sample_length: int = 1, crop_size: int = VIDEO_CROP_SIZE, trainable: str = "original") -> keras.Model:
    """Frame-level ResNet-50 on video frames [B, 12L, S, S, 3]: per-frame logits [B, 12L, 14].

    trainable="original": only `resnet_v1_50.logits` (the backbone comes from ImageNet);
    "all": every variable (sensible only when training from scratch).
    """
    _check_trainable(trainable)
    frames = FRAMES_PER_SECOND * sample_length
    video_frames = keras.Input((frames, crop_size, crop_size, 3), name="video_frames")
    logits = _resnet_v1_50(MergeFrames(name="frames")(video_frames), NUM_ACTIONS, weight_decay=5e-4)
    logits = layers.Reshape((NUM_ACTIONS,), name="resnet_v1_50.squeeze")(logits)
    model = keras.Model(video_frames, SplitFrames(frames, name="per_frame")(logits), name="resnet50")
    if trainable == "original":
        freeze_variables(model, ("resnet_v1_50.logits/",))
    return model


def temporal_resnet50(crop_size: int = VIDEO_CROP_SIZE, trainable: str = "original") -> keras.Model:
    """Temporal ResNet-50 on 5-frame clips [B, 5, S, S, 3]: logits averaged over the frames, [B, 14].

    Weight decay is slim's default 1e-4 here (its arg scope was built without 5e-4).
    trainable="original": only the logits; `conv_temp` stays at its identity initialisation.
    """
    _check_trainable(trainable)
    video_clip = keras.Input((TEMPORAL_FRAMES, crop_size, crop_size, 3), name="video_clip")
    frames = MergeFrames(name="frames")(video_clip)
    logits = _resnet_v1_50(frames, NUM_ACTIONS, weight_decay=1e-4, temporal_frames=TEMPORAL_FRAMES)
    logits = layers.Reshape((NUM_ACTIONS,), name="resnet_v1_50.squeeze")(logits)
    per_frame = SplitFrames(TEMPORAL_FRAMES, name="per_frame")(logits)
    clip_logits = layers.GlobalAveragePooling1D(name="frame_mean")(per_frame)
    model = keras.Model(video_clip, clip_logits, name="temporal_resnet50")
    if trainable == "original":
        freeze_variables(model, ("resnet_v1_50.logits/",))
    return model


def av_model(sample_length: int = 1, crop_size: int = VIDEO_CROP_SIZE, trainable: str = "original") -> keras.Model:
    """The audio-visual model (multimodal.py): ResNet-50 (1024 linear logits) and DualCamNet
    `full1` features concatenated per frame under the shared head `AVNet`: [B, 12L, 14].

    trainable="original": `DualCamNet.*`, `resnet_v1_50.logits` and `AVNet.*`.
    """
    _check_trainable(trainable)
    frames = FRAMES_PER_SECOND * sample_length
    video_frames = keras.Input((frames, crop_size, crop_size, 3), name="video_frames")
    acoustic_images = keras.Input((frames, *ACOUSTIC_IMAGE_SHAPE), name="acoustic_images")
    visual = _resnet_v1_50(MergeFrames(name="frames")(video_frames), 1024, weight_decay=5e-4)
    acoustic = _dualcamnet_features(acoustic_images, frames)
    # One video frame per acoustic frame: both are [B*F, 1, 1, 1024].
    fused = layers.Concatenate(axis=-1, name="AVNet.concat")([visual, acoustic])
    logits = SplitFrames(frames, name="AVNet.per_frame")(_shared_net(fused, "AVNet"))
    model = keras.Model({"video_frames": video_frames, "acoustic_images": acoustic_images}, logits, name="av_model")
    if trainable == "original":
        freeze_variables(model, ("DualCamNet.", "resnet_v1_50.logits/", "AVNet."))
    return model


def build_model(
    name: str,
    sample_length: int,
    crop_size: int = VIDEO_CROP_SIZE,
    trainable: str = "original",
    batch_norm_decay: float | None = None,
) -> keras.Model:
    """The network `name` (one of MODEL_NAMES) for samples of `sample_length` seconds.

    batch_norm_decay: None keeps the original's decay of each batch norm (0.997 in the
    ResNet-50s, 0.999 in SoundNet5); a value replaces it in all of them. Those decays suit
    thousands of steps from pretrained statistics; a network trained from scratch for a
    few dozen steps never gets moving averages near its batch statistics, and its
    inference-mode outputs are garbage (the moving variance still near its initial 1).
    """
    model = _build_model(name, sample_length, crop_size, trainable)
    if batch_norm_decay is not None:
        if not 0.0 <= batch_norm_decay < 1.0:
            raise ValueError(f"batch_norm_decay must be in [0, 1), got {batch_norm_decay}")
        for layer in model.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(batch_norm_decay)
    return model


def _build_model(name: str, sample_length: int, crop_size: int, trainable: str) -> keras.Model:
    if name == "dualcamnet":
        return dualcamnet(sample_length)
    if name == "hearnet":
        return hearnet(sample_length)
    if name == "soundnet5":
        return soundnet5(sample_length)
    if name == "resnet50":
        return resnet50(sample_length, crop_size, trainable)
    if name == "temporal_resnet50":
        return temporal_resnet50(crop_size, trainable)
    if name == "av_model":
        return av_model(sample_length, crop_size, trainable)
    raise ValueError(f"unknown model {name!r}; choose from {MODEL_NAMES}")


def is_frame_model(model: keras.Model) -> bool:
    """True when the model returns per-frame logits [B, F, 14] (labels are per sample)."""
    return len(model.output.shape) == 3
