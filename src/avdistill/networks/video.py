"""The video teachers: ResNet-50 v1 in slim's layout (§3.4), per frame and temporal (§3.5),
and the audio-visual model over video and acoustic images (§3.6)."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from avdistill.constants import ACOUSTIC_IMAGE_SHAPE, FRAMES_PER_SECOND, NUM_ACTIONS, TEMPORAL_FRAMES, VIDEO_CROP_SIZE
from avdistill.networks.acoustic import dualcamnet_features
from avdistill.networks.layers import (
    TRAINABLE_CHOICES,
    DenseConv2D,
    MergeFrames,
    SplitFrames,
    freeze_variables,
    he_truncated,
    shared_net,
    slim_l2,
)

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


def _output_positions(size: tuple, kernel: int, stride: int, padding: str) -> tuple:
    """(rows, columns) of a Conv2D's output map, as TensorFlow sizes it."""
    if padding == "same":
        return tuple(-(-length // stride) for length in size)
    return tuple((length - kernel) // stride + 1 for length in size)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, l2, relu: bool = True):
    """slim conv2d with batch norm, no bias; strided convs use conv2d_same (explicit pad, VALID)."""
    padding = "same"
    if stride > 1:
        total = kernel - 1
        x = layers.ZeroPadding2D(((total // 2, total - total // 2),) * 2, name=f"{name}.pad")(x)
        padding = "valid"
    # At small crops (32 pixels: block4 and block3's last unit) the map shrinks to 1x1 and
    # the convolution has one output position: computed as the matmul it is (DenseConv2D,
    # same variables), 4-8x faster forward and backward on CPU than TensorFlow's kernels.
    one_position = _output_positions(x.shape[1:3], kernel, stride, padding) == (1, 1)
    x = (DenseConv2D if one_position else layers.Conv2D)(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        use_bias=False,
        kernel_initializer=he_truncated(),
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
        kernel_initializer=he_truncated(),
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
        num_classes, 1, kernel_initializer=he_truncated(), kernel_regularizer=l2, name=f"{scope}.logits"
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


def temporal_resnet50(
    sample_length: int = 1, crop_size: int = VIDEO_CROP_SIZE, trainable: str = "original"
) -> keras.Model:
    """Temporal ResNet-50 on 5-frame clips [B, 5, S, S, 3]: logits averaged over the frames, [B, 14].

    The clip is 5 frames of the sample whatever its `sample_length` (the pipeline picks them).
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


def av_model(
    sample_length: int = 1, crop_size: int = VIDEO_CROP_SIZE, trainable: str = "original", head_init: str = "original"
) -> keras.Model:
    """The audio-visual model (multimodal.py): ResNet-50 (1024 linear logits) and DualCamNet
    `full1` features concatenated per frame under the shared head `AVNet`: [B, 12L, 14].

    trainable="original": `DualCamNet.*`, `resnet_v1_50.logits` and `AVNet.*`. head_init:
    the initialiser of the shared head (`layers.shared_net`).
    """
    _check_trainable(trainable)
    frames = FRAMES_PER_SECOND * sample_length
    video_frames = keras.Input((frames, crop_size, crop_size, 3), name="video_frames")
    acoustic_images = keras.Input((frames, *ACOUSTIC_IMAGE_SHAPE), name="acoustic_images")
    visual = _resnet_v1_50(MergeFrames(name="frames")(video_frames), 1024, weight_decay=5e-4)
    acoustic = dualcamnet_features(acoustic_images, frames)
    # One video frame per acoustic frame: both are [B*F, 1, 1, 1024].
    fused = layers.Concatenate(axis=-1, name="AVNet.concat")([visual, acoustic])
    logits = SplitFrames(frames, name="AVNet.per_frame")(shared_net(fused, "AVNet", head_init=head_init))
    model = keras.Model({"video_frames": video_frames, "acoustic_images": acoustic_images}, logits, name="av_model")
    if trainable == "original":
        freeze_variables(model, ("DualCamNet.", "resnet_v1_50.logits/", "AVNet."))
    return model
