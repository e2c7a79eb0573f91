"""Waveforms and spectrograms from microphone frames, in TensorFlow ops (no Python per sample).

The original (`_build_wav_py_function`) called librosa through `tf.py_func` for every
sample: flatten microphone 0, divide by max|x|, resample 12,288 -> 22,050 Hz with
resampy's `kaiser_best`, divide by max|x| again and multiply by 256. The default here
resamples with the FFT (band-limited, like `scipy.signal.resample` / librosa's `fft`
mode) in the graph: it differs from `kaiser_best` only by that filter's roll-off just below
the 6,144 Hz input Nyquist and by the treatment of the clip edges. `resampler="kaiser_best"`
reproduces the original bit for bit through librosa, at Python speed.
"""

from __future__ import annotations

import tensorflow as tf

from avdistill.constants import (
    MIC_SAMPLE_RATE,
    STFT_FFT_LENGTH,
    STFT_FRAME_LENGTH,
    STFT_FRAME_STEP,
    TARGET_SAMPLE_RATE,
    WAVEFORM_SCALE,
)

RESAMPLERS = ("fft", "kaiser_best")


def _normalize_peak(x: tf.Tensor) -> tf.Tensor:
    """x / max|x| per row. A silent clip stays zero (the original divided by zero: NaN)."""
    peak = tf.reduce_max(tf.abs(x), axis=-1, keepdims=True)
    return tf.math.divide_no_nan(x, peak)


def resample_fft(x: tf.Tensor, num_out: int) -> tf.Tensor:
    """Band-limited resampling of the last axis to `num_out` samples (scipy.signal.resample)."""
    num_in = x.shape[-1]
    spectrum = tf.signal.rfft(x, fft_length=[num_in])
    keep = min(num_in, num_out) // 2 + 1
    spectrum = spectrum[..., :keep]
    n = min(num_in, num_out)
    if n % 2 == 0 and num_in != num_out:
        # The Nyquist bin of the shorter signal is split between +f and -f (scipy does the same).
        factor = 0.5 if num_out > num_in else 2.0
        weights = tf.concat([tf.ones([keep - 1]), [factor]], axis=0)
        spectrum = spectrum * tf.cast(weights, spectrum.dtype)
    spectrum = tf.pad(spectrum, [[0, 0]] * (len(x.shape) - 1) + [[0, num_out // 2 + 1 - keep]])
    return tf.signal.irfft(spectrum, fft_length=[num_out]) * (num_out / num_in)


def _resample_kaiser_best(x, num_out):
    import numpy as np

    try:
        import librosa
        import resampy  # noqa: F401  (librosa imports it lazily; parallel map threads would race)
    except ImportError as error:
        raise ImportError(
            f"loader.resampler kaiser_best needs librosa and resampy ({error}): pip install -e '.[original]'"
        ) from None

    def resample_rows(rows):
        out = [
            librosa.resample(row, orig_sr=MIC_SAMPLE_RATE, target_sr=TARGET_SAMPLE_RATE, res_type="kaiser_best")
            for row in rows
        ]
        return np.stack(out).astype(np.float32)[:, :num_out]

    y = tf.numpy_function(resample_rows, [x], tf.float32, stateful=False)
    return tf.ensure_shape(y, [x.shape[0], num_out])


def waveform(audio_frames: tf.Tensor, resampler: str = "fft") -> tf.Tensor:
    """Microphone frames [B, F, 1024] int32 -> waveform [B, F·1024·22050/12288] in [-256, 256]."""
    if resampler not in RESAMPLERS:
        raise ValueError(f"resampler must be one of {RESAMPLERS}, got {resampler!r}")
    batch = tf.shape(audio_frames)[0]
    num_in = audio_frames.shape[1] * audio_frames.shape[2]
    num_out = -(-num_in * TARGET_SAMPLE_RATE // MIC_SAMPLE_RATE)  # ceil, as librosa
    x = tf.reshape(tf.cast(audio_frames, tf.float32), [batch, num_in])
    x = _normalize_peak(x)
    if resampler == "fft":
        y = resample_fft(x, num_out)
    else:
        y = _resample_kaiser_best(x, num_out)
    return _normalize_peak(y) * WAVEFORM_SCALE


def spectrogram(wave: tf.Tensor) -> tf.Tensor:
    """HearNet input: |STFT| (frame 440, step 220, FFT 512, periodic Hann) as [B, T, 1, 257]."""
    stft = tf.signal.stft(wave, frame_length=STFT_FRAME_LENGTH, frame_step=STFT_FRAME_STEP, fft_length=STFT_FFT_LENGTH)
    return tf.expand_dims(tf.abs(stft), axis=-2)


def normalize_spectrogram(spec: tf.Tensor, global_min, global_max) -> tf.Tensor:
    """Per-frequency-bin min-max normalisation with training-set statistics (257-vectors)."""
    global_min = tf.constant(global_min, tf.float32)
    global_max = tf.constant(global_max, tf.float32)
    return (spec - global_min) / (global_max - global_min)
