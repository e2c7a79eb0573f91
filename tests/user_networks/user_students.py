"""A student of a user's, outside the package: a small 2-D CNN over log-mel spectrograms of
the waveform. The workflow knows it only from the config (`models.logmel_cnn.builder`)."""

from __future__ import annotations

import keras
import tensorflow as tf

SAMPLE_RATE = 22050  # the pipeline's waveform rate
MEL_BANDS = 32


class LogMel(keras.layers.Layer):
    """[B, samples] waveform -> [B, frames, MEL_BANDS, 1] log-mel magnitudes."""

    def call(self, waveform):
        spectrum = tf.abs(tf.signal.stft(waveform / 256.0, frame_length=1024, frame_step=512, fft_length=1024))
        mel = tf.signal.linear_to_mel_weight_matrix(MEL_BANDS, 513, SAMPLE_RATE, 60.0, 8000.0)
        return tf.math.log(tf.tensordot(spectrum, mel, 1) + 1e-6)[..., None]


def logmel_cnn(sample_length: int, num_classes: int) -> keras.Model:
    waveform = keras.Input((SAMPLE_RATE * sample_length,), name="waveform")
    x = LogMel(name="logmel_cnn.logmel")(waveform)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="logmel_cnn.conv1")(x)
    x = keras.layers.MaxPool2D(2, name="logmel_cnn.pool1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="logmel_cnn.conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="logmel_cnn.pool2")(x)
    logits = keras.layers.Dense(num_classes, name="logmel_cnn.logits")(x)
    return keras.Model(waveform, logits, name="logmel_cnn")


def wrong_classes(sample_length: int) -> keras.Model:
    """Returns 10 logits instead of the 14 actions: the workflow must refuse it."""
    waveform = keras.Input((SAMPLE_RATE * sample_length,), name="waveform")
    return keras.Model(waveform, keras.layers.Dense(10)(waveform))
