"""The audio students: HearNet on the spectrogram (§3.2) and SoundNet5 on the waveform (§3.3)."""

from __future__ import annotations

import keras
from keras import layers

from avdistill.constants import STFT_FFT_LENGTH, TARGET_SAMPLE_RATE
from avdistill.networks.layers import (
    DenseConv2D,
    FramedConv2D,
    FusedBatchNormalization,
    TimeConv2D,
    shared_net,
    slim_l2,
    truncated_normal,
)
from avdistill.networks.registry import spectrogram_frames


def hearnet(sample_length: int = 5, head_init: str = "original") -> keras.Model:
    """HearNet on the magnitude spectrogram [B, T, 1, 257]: logits [B, 14]. All trainable.

    head_init: the initialiser of the shared head (`layers.shared_net`)."""
    scope, l2 = "hear_net", slim_l2(5e-4)
    time_steps = spectrogram_frames(sample_length)
    if time_steps < 500:
        # Three 5x1 poolings and a 4x1 VALID conv4 need at least 500 frames (5 s).
        raise ValueError(f"HearNet needs sample_length >= 5 s (500 spectrogram frames), got {sample_length} s")
    spectrogram = keras.Input((time_steps, 1, STFT_FFT_LENGTH // 2 + 1), name="spectrogram")
    x = spectrogram
    for index, (filters, kernel) in enumerate(((128, 11), (256, 5), (256, 3)), start=1):
        x = TimeConv2D(
            filters, (kernel, 1), padding="same", activation="relu", kernel_regularizer=l2, name=f"{scope}.conv{index}"
        )(x)
        x = layers.MaxPool2D((5, 1), (5, 1), name=f"{scope}.pool{index}")(x)
    x = DenseConv2D(1024, (4, 1), activation="relu", kernel_regularizer=l2, name=f"{scope}.conv4")(x)
    x = DenseConv2D(1024, 1, activation="relu", kernel_regularizer=l2, name=f"{scope}.conv5")(x)
    return keras.Model(spectrogram, shared_net(x, scope, head_init=head_init), name="hearnet")


# --- SoundNet5 (raw waveform) ----------------------------------------------------------

# (filters, kernel, stride, padding each side, pool) of conv1..conv5 (§3.3).
SOUNDNET5_LAYERS = (
    (32, 64, 2, 32, 8),
    (64, 32, 2, 16, 8),
    (128, 16, 2, 8, 8),
    (256, 8, 2, 4, None),
    (1024, 16, 12, 4, None),
)


def soundnet5(sample_length: int = 5, head_init: str = "original") -> keras.Model:
    """SoundNet5 on the waveform [B, 22050L]: logits [B, 14]. All trainable (fine-tuning).

    slim soundnet_arg_scope: VALID convs with biases, no activation, truncated-normal(0.01)
    weights and L2 5e-4; then batch norm (decay 0.999, eps 0.001, with scale) and ReLU.
    head_init: the initialiser of the shared head (`layers.shared_net`); conv1-conv6 keep
    the arg scope's.
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
        # conv1 reads one channel: a matmul of the waveform's frames. conv2-conv4 slide along
        # time over one column (TimeConv2D: time along the width). conv5 has one output
        # position (checked above): a dense layer over its first window.
        conv = FramedConv2D if index == 1 else DenseConv2D if index == len(SOUNDNET5_LAYERS) else TimeConv2D
        x = conv(
            filters,
            (kernel, 1),
            strides=(stride, 1),
            kernel_initializer=truncated_normal(0.01),
            kernel_regularizer=l2,
            name=f"{scope}.conv{index}",
        )(x)
        x = FusedBatchNormalization(momentum=0.999, epsilon=1e-3, name=f"{scope}.conv{index}.norm")(x)
        x = layers.ReLU(name=f"{scope}.conv{index}.relu")(x)
        if pool:
            x = layers.MaxPool2D((pool, 1), (pool, 1), name=f"{scope}.pool{index}")(x)
    x = DenseConv2D(
        1024,
        1,
        activation="relu",
        kernel_initializer=truncated_normal(0.01),
        kernel_regularizer=l2,
        name=f"{scope}.conv6",
    )(x)
    return keras.Model(waveform, shared_net(x, scope, head_init=head_init), name="soundnet5")
