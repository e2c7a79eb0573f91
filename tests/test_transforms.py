"""Waveform, spectrogram and frame preprocessing against independent NumPy/SciPy computations."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from avdistill.data import audio, video


@pytest.fixture(scope="module")
def frames():
    """5 s of microphone frames: a chirp plus noise, as int32 like the sensor's."""
    rng = np.random.default_rng(0)
    t = np.arange(60 * 1024) / 12288
    signal = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * rng.standard_normal(t.size)
    return np.round(signal * 2**23).astype(np.int32).reshape(1, 60, 1024)


def reference_waveform(frames):
    x = frames[0].astype(np.float32).ravel().astype(np.float64)
    x /= np.abs(x).max()
    y = scipy.signal.resample(x, int(np.ceil(x.size * 22050 / 12288)))
    return y / np.abs(y).max() * 256


def test_waveform_matches_scipy_resample(frames):
    wave = audio.waveform(tf.constant(frames)).numpy()[0]
    expected = reference_waveform(frames)
    assert wave.shape == (110250,)  # 5 s at 22,050 Hz, as SoundNet5 expects
    assert np.abs(wave).max() == pytest.approx(256, rel=1e-6)
    np.testing.assert_allclose(wave, expected, atol=2e-3)


def test_waveform_is_close_to_the_originals_kaiser_best_away_from_the_edges(frames):
    fast = audio.waveform(tf.constant(frames)).numpy()[0]
    faithful = audio.waveform(tf.constant(frames), resampler="kaiser_best").numpy()[0]
    x = frames[0].astype(np.float32).ravel()
    x = x / np.abs(x).max()
    y = librosa.resample(x, orig_sr=12288, target_sr=22050, res_type="kaiser_best")
    np.testing.assert_allclose(faithful, y / np.abs(y).max() * 256, atol=1e-3)  # the original, exactly
    # Away from the clip edges (where the FFT assumes a periodic clip), the two differ only by
    # the overall gain set by the peak normalisation and by kaiser_best's roll-off above 5.8
    # kHz, which this broadband test signal reaches.
    inner = slice(2000, -2000)
    assert np.corrcoef(fast[inner], faithful[inner])[0, 1] > 0.995


def test_fft_and_kaiser_best_agree_up_to_gain_on_band_limited_audio():
    t = np.arange(60 * 1024) / 12288
    chirp = np.round(0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) * 2**23).astype(np.int32).reshape(1, 60, 1024)
    fast = audio.waveform(tf.constant(chirp)).numpy()[0, 2000:-2000].astype(np.float64)
    faithful = audio.waveform(tf.constant(chirp), resampler="kaiser_best").numpy()[0, 2000:-2000]
    gain = np.dot(fast, faithful) / np.dot(fast, fast)
    assert np.sqrt(np.mean((gain * fast - faithful) ** 2)) < 1e-3 * np.sqrt(np.mean(faithful**2))


def test_silent_clip_gives_zeros_not_nan():
    wave = audio.waveform(tf.zeros([1, 12, 1024], tf.int32)).numpy()
    assert np.all(wave == 0)


def test_spectrogram_matches_scipy_stft(frames):
    wave = reference_waveform(frames).astype(np.float32)
    spec = audio.spectrogram(tf.constant(wave[None])).numpy()[0]
    assert spec.shape == (500, 1, 257)  # 1 + (110250 - 440) // 220 frames, 512 / 2 + 1 bins
    window = scipy.signal.get_window("hann", 440)  # periodic, as tf.signal.stft
    starts = np.arange(500) * 220
    segments = np.stack([wave[s : s + 440] for s in starts]).astype(np.float64) * window
    expected = np.abs(np.fft.rfft(segments, n=512, axis=1))
    np.testing.assert_allclose(spec[:, 0, :], expected, rtol=1e-3, atol=1e-2 * expected.max() * 1e-3)


def test_min_max_normalisation_per_bin():
    spec = tf.constant(np.tile(np.linspace(0, 2, 257, dtype=np.float32), (1, 500, 1, 1)))
    low, high = np.full(257, 0.5, np.float32), np.full(257, 1.5, np.float32)
    out = audio.normalize_spectrogram(spec, low, high).numpy()
    np.testing.assert_allclose(out[0, 0, 0], (np.linspace(0, 2, 257) - 0.5) / 1.0, rtol=1e-6)


def legacy_bilinear(image, out_h, out_w):
    """TF1 resize_bilinear(align_corners=False): source = dest * in / out, no half-pixel shift."""
    in_h, in_w = image.shape[:2]
    ys, xs = np.arange(out_h) * in_h / out_h, np.arange(out_w) * in_w / out_w
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    dy, dx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    image = image.astype(np.float64)
    top = image[y0][:, x0] * (1 - dx) + image[y0][:, x1] * dx
    bottom = image[y1][:, x0] * (1 - dx) + image[y1][:, x1] * dx
    return top * (1 - dy) + bottom * dy


def test_frames_follow_slim_vgg_preprocessing_with_the_originals_odd_choices():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)  # same aspect as 480 x 640
    out = video.preprocess_frames(tf.constant(image[None])).numpy()[0]
    resized = legacy_bilinear(image, 256, 341)  # rint(128 * 256 / 96) = 341
    crop = resized[16 : 16 + 224, 58 : 58 + 224]  # (341 - 224) / 2 = 58.5 -> 58
    # BGR frames minus the RGB means, channel by channel: the original's choice.
    expected = crop - np.array([123.68, 116.78, 103.94])
    np.testing.assert_allclose(out, expected, atol=1e-3)
    corrected = video.preprocess_frames(tf.constant(image[None]), channel_order="rgb").numpy()[0]
    np.testing.assert_allclose(corrected, crop[..., ::-1] - np.array([123.68, 116.78, 103.94]), atol=1e-3)


def test_temporal_frames_are_the_originals_linspace_pick():
    assert video.temporal_frame_indices(12) == [0, 2, 5, 8, 11]
    assert video.temporal_frame_indices(60) == [0, 14, 29, 44, 59]
