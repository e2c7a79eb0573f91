"""Video frame preprocessing of the original: slim's `vgg_preprocessing` in eval mode.

Aspect-preserving resize so the smallest side is 256, a central 224 x 224 crop, then the
VGG means subtracted per channel. Two odd choices of the original are kept by default:
the frames are BGR (OpenCV) but the means are the RGB ones, subtracted by channel index;
and the resize is TF1's legacy bilinear kernel (no half-pixel centres). `channel_order=
"rgb"` and `resize="half_pixel"` give the corrected behaviour.
"""

from __future__ import annotations

import tensorflow as tf

from avdistill.constants import TEMPORAL_FRAMES, VGG_RGB_MEANS, VIDEO_CROP_SIZE, VIDEO_RESIZE_SMALLEST_SIDE

CHANNEL_ORDERS = ("bgr", "rgb")
RESIZE_METHODS = ("legacy", "half_pixel")


def resized_shape(height, width, smallest_side: int = VIDEO_RESIZE_SMALLEST_SIDE):
    """slim's `_smallest_size_at_least`: float32 scale, then rint."""
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    side = tf.constant(float(smallest_side))
    scale = tf.where(height > width, side / width, side / height)
    return tf.cast(tf.math.rint(height * scale), tf.int32), tf.cast(tf.math.rint(width * scale), tf.int32)


def resize_side(crop_size: int) -> int:
    """Smallest side before cropping: 256 for the original's 224 crop, in proportion otherwise."""
    return round(crop_size * VIDEO_RESIZE_SMALLEST_SIDE / VIDEO_CROP_SIZE)


def preprocess_frames(
    frames: tf.Tensor, channel_order: str = "bgr", resize: str = "legacy", crop_size: int = VIDEO_CROP_SIZE
) -> tf.Tensor:
    """Frames [N, H, W, 3] uint8 -> [N, S, S, 3] float32, mean-subtracted (S = crop_size, 224 originally).

    A smaller `crop_size` keeps the original's geometry (resize to 256/224 of the crop, centre
    crop) at a fraction of ResNet-50's cost; the default configuration uses it on CPU.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if resize not in RESIZE_METHODS:
        raise ValueError(f"resize must be one of {RESIZE_METHODS}, got {resize!r}")
    shape = tf.shape(frames)
    new_height, new_width = resized_shape(shape[1], shape[2], resize_side(crop_size))
    size = tf.stack([new_height, new_width])
    if resize == "legacy":
        resized = tf.compat.v1.image.resize_bilinear(frames, size, align_corners=False, half_pixel_centers=False)
    else:
        resized = tf.image.resize(frames, size, method="bilinear")
    # Offsets by true division then truncation: (341 - 224) / 2 = 58.5 -> 58, as slim did.
    top = tf.cast(tf.cast(new_height - crop_size, tf.float32) / 2.0, tf.int32)
    left = tf.cast(tf.cast(new_width - crop_size, tf.float32) / 2.0, tf.int32)
    crop = resized[:, top : top + crop_size, left : left + crop_size, :]
    crop = tf.ensure_shape(crop, [None, crop_size, crop_size, 3])
    if channel_order == "rgb":
        crop = crop[..., ::-1]  # stored BGR -> RGB, matching the means and ImageNet weights
    return tf.cast(crop, tf.float32) - tf.constant(VGG_RGB_MEANS, tf.float32)


def temporal_frame_indices(num_frames: int, count: int = TEMPORAL_FRAMES) -> list[int]:
    """Frames the temporal ResNet sees: int(linspace(0, F-1, 5)), deterministic, in order.

    The original called this "random pick" but it never was random: 12 frames -> [0, 2, 5, 8, 11].
    """
    step = (num_frames - 1) / (count - 1)
    return [int(i * step) for i in range(count)]
