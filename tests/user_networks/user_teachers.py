"""A teacher of a user's, outside the package: a per-frame linear read-out of pooled acoustic
images. The workflow knows it only from the config (`models.acoustic_mlp.builder`)."""

from __future__ import annotations

import keras

FRAMES_PER_SECOND = 12
ACOUSTIC_IMAGE_SHAPE = (36, 48, 12)


def acoustic_mlp(sample_length: int, num_classes: int) -> keras.Model:
    frames = FRAMES_PER_SECOND * sample_length
    acoustic_images = keras.Input((frames, *ACOUSTIC_IMAGE_SHAPE), name="acoustic_images")
    pooled = keras.layers.TimeDistributed(keras.layers.AveragePooling2D(4), name="acoustic_mlp.pool")(acoustic_images)
    features = keras.layers.Reshape((frames, -1), name="acoustic_mlp.flatten")(pooled)
    hidden = keras.layers.Dense(32, activation="relu", name="acoustic_mlp.fc1")(features)
    logits = keras.layers.Dense(num_classes, name="acoustic_mlp.fc2")(hidden)  # [B, frames, 14]
    return keras.Model(acoustic_images, logits, name="acoustic_mlp")
