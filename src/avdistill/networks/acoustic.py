"""DualCamNet, the acoustic-image teacher (§3.1: the original's `dualcamnet_v2`, hybrid)."""

from __future__ import annotations

import keras
from keras import layers

from avdistill.constants import ACOUSTIC_IMAGE_SHAPE, FRAMES_PER_SECOND
from avdistill.networks.layers import DenseConv2D, MergeFrames, SplitFrames, TemporalConv3D, shared_net


def dualcamnet_features(acoustic_images, frames: int):
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


def dualcamnet(sample_length: int = 1, head_init: str = "original") -> keras.Model:
    """The acoustic-image teacher ("DualCamHybridNet"): per-frame logits [B, 12L, 14]. All trainable.

    head_init: the initialiser of the shared head (`layers.shared_net`)."""
    frames = FRAMES_PER_SECOND * sample_length
    acoustic_images = keras.Input((frames, *ACOUSTIC_IMAGE_SHAPE), name="acoustic_images")
    x = dualcamnet_features(acoustic_images, frames)
    logits = SplitFrames(frames, name="DualCamNet.per_frame")(shared_net(x, "DualCamNet", head_init=head_init))
    return keras.Model(acoustic_images, logits, name="dualcamnet")
