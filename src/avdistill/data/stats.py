"""Per-frequency-bin min and max of HearNet spectrograms over a training list.

The original `utils/compute_stats.py` ran the loader on `training.txt` in inference mode
with 5-second samples and reduced min and max over batch, time and width (§2.3 step 8).
Its mean and standard deviation used a wrong divisor and were never read; they are not
computed here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from avdistill.data import records
from avdistill.data.lists import read_list
from avdistill.data.pipeline import PipelineOptions, make_dataset
from avdistill.errors import DataError
from avdistill.fileio import atomic_path

log = logging.getLogger(__name__)


def compute_spectrogram_stats(
    list_path: str | Path, audio_root: str | Path, options: PipelineOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(global_min, global_max), each (257,) float32, over every sample of the list."""
    options = options or PipelineOptions(sample_length=5, batch_size=64)
    dataset = make_dataset(list_path, {"audio": audio_root}, ["spectrogram"], training=False, options=options)
    low = np.full(257, np.inf, np.float32)
    high = np.full(257, -np.inf, np.float32)
    with records.diagnose_errors(read_list(list_path, audio_root, options.total_length), ["audio"]):
        for batch in dataset:
            spec = batch["spectrogram"]
            low = np.minimum(low, tf.reduce_min(spec, axis=(0, 1, 2)).numpy())
            high = np.maximum(high, tf.reduce_max(spec, axis=(0, 1, 2)).numpy())
    if not np.all(np.isfinite(low)):
        raise DataError(list_path, "produced no spectrogram")
    return low, high


def write_stats(out_dir: str | Path, global_min: np.ndarray, global_max: np.ndarray) -> None:
    out_dir = Path(out_dir)
    for name, array in (("global_min.npy", global_min), ("global_max.npy", global_max)):
        with atomic_path(out_dir / name) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, array)


def write_spectrogram_stats(
    list_path: str | Path, audio_root: str | Path, out_dir: str | Path, total_length: int = 10, resampler: str = "fft"
) -> None:
    """Compute the statistics of a training list and write global_{min,max}.npy to `out_dir`."""
    options = PipelineOptions(sample_length=5, total_length=total_length, batch_size=64, resampler=resampler)
    global_min, global_max = compute_spectrogram_stats(list_path, audio_root, options)
    write_stats(out_dir, global_min, global_max)
    log.info("spectrogram statistics of %s: min %.3g, max %.3g", list_path, global_min.min(), global_max.max())
