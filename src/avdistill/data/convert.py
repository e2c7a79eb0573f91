"""Raw dataset -> one GZIP TFRecord per second of each sequence (the original convert_data.py).

Each sequence becomes exactly 30 records `Data_001 ... Data_030` of 12 frames. Record `i`
holds frames 12·i ... 12·i+11 modulo n, so a sequence shorter than 30 s wraps around to its
start ("repeat until meeting minimum length") and frames past 30 s are dropped.

Output paths keep the raw Location and Subject numbers but shift the 0-based raw action
folder by one (`Action_{a+1:03d}`); the stored labels are `action = a`,
`location = L - 1`, `subject = S - 1` (reference §1.4).

Conversion streams: each worker holds one record (12 frames) at a time, so memory stays
bounded whatever the dataset size. Work is spread over processes, one sequence per task.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdistill.constants import FRAMES_PER_SECOND, MIN_SECONDS
from avdistill.data import raw
from avdistill.errors import DataError
from avdistill.fileio import atomic_directory
from avdistill.parallel import process_pool

log = logging.getLogger(__name__)

_READERS = {
    "acoustic": raw.read_acoustic_image,
    "audio": raw.read_audio_frame,
    "video": raw.read_video_frame,
}


def record_relative_path(location: int, subject: int, action: int, second: int) -> str:
    """Path of the record of `second` (0-based) of a raw sequence, relative to the output root."""
    return f"Location_{location:02d}/Subject_{subject:02d}/Action_{action + 1:03d}/Data_{second + 1:03d}.tfrecord"


def record_frame_indices(second: int, num_frames: int) -> list[int]:
    """1-based raw frame numbers in record `second`, wrapping around short sequences."""
    return [index % num_frames + 1 for index in range(FRAMES_PER_SECOND * second, FRAMES_PER_SECOND * (second + 1))]


def _read_frames(sequence: raw.RawSequence, modality: str, indices: list[int], shapes: dict) -> np.ndarray:
    """Frames `indices` of one modality, each checked against the sequence's first frame."""
    frames = []
    for index in indices:
        path = sequence.frame_path(modality, index)
        frame = _READERS[modality](path)
        expected = shapes.setdefault(modality, frame.shape)
        if frame.shape != expected:
            raise DataError(path, f"frame shape {frame.shape} differs from {expected} in the same sequence")
        frames.append(frame)
    return np.stack(frames)


def convert_sequence(sequence: raw.RawSequence, out_root: str | Path, modalities: list[str]) -> list[str]:
    """Write the 30 records of one sequence; returns their paths. Removes them on failure."""
    from avdistill.data import records

    out_root = Path(out_root)
    written: list[str] = []
    labels = {"action": sequence.action, "location": sequence.location - 1, "subject": sequence.subject - 1}
    shapes: dict = {}
    try:
        for second in range(MIN_SECONDS):
            indices = record_frame_indices(second, sequence.num_frames)
            frames = {m: _read_frames(sequence, m, indices, shapes) for m in modalities}
            path = out_root / record_relative_path(sequence.location, sequence.subject, sequence.action, second)
            records.write_record(path, records.sequence_example(labels, frames))
            written.append(str(path))
    except BaseException:
        for path in written:
            Path(path).unlink(missing_ok=True)
        raise
    return written


@dataclass
class ConversionReport:
    sequences: int
    records: int
    bytes_written: int
    seconds: float

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes_written / 1e6 / self.seconds


def convert_dataset(
    mat_root: str | Path,
    sync_root: str | Path,
    out_root: str | Path,
    modalities: list[str],
    locations: list[int] | None = None,
    jobs: int = 1,
) -> ConversionReport:
    """Convert every sequence (of `locations`, default all) into records under `out_root`.

    The layout of every sequence is checked before anything is written. On any error the
    records written by this call are removed, so no half-converted tree is left behind.
    """
    unknown = set(modalities) - set(_READERS)
    if unknown or not modalities:
        raise ValueError(f"modalities must be a non-empty subset of {sorted(_READERS)}, got {modalities}")
    start = time.perf_counter()
    sequences = raw.find_sequences(mat_root, sync_root, modalities, locations)
    log.info("converting %d sequences (%s) with %d jobs", len(sequences), ", ".join(modalities), jobs)
    written: list[str] = []
    try:
        if jobs <= 1:
            for sequence in sequences:
                written += convert_sequence(sequence, out_root, modalities)
        else:
            with process_pool(min(jobs, len(sequences))) as pool:
                futures = [pool.submit(convert_sequence, s, out_root, modalities) for s in sequences]
                try:
                    for future in futures:
                        future.result()  # the first failure stops the conversion
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
                    for future in futures:
                        if future.done() and not future.cancelled() and future.exception() is None:
                            written += future.result()
    except BaseException:
        for path in written:
            Path(path).unlink(missing_ok=True)
        raise
    elapsed = time.perf_counter() - start
    size = sum(os.path.getsize(p) for p in written)
    report = ConversionReport(len(sequences), len(written), size, elapsed)
    log.info(
        "wrote %d records (%.1f MB) in %.1f s: %.1f records/s, %.1f MB/s",
        report.records,
        size / 1e6,
        elapsed,
        report.records_per_second,
        report.megabytes_per_second,
    )
    return report


def convert_location(
    dataset_root: str | Path, out_dir: str | Path, modality: str, location: int, jobs: int = 1
) -> ConversionReport:
    """One modality of one location into `out_dir` (.../Location_LL), all or nothing.

    The records are written into a staging folder beside `out_dir` and renamed into place
    when every one is complete, so a job killed mid-way (a scheduler's time limit) never
    leaves a folder that looks converted.
    """
    dataset_root, out_dir = Path(dataset_root), Path(out_dir)
    with atomic_directory(out_dir) as staging:
        report = convert_dataset(
            dataset_root / "matfiles", dataset_root / "sync", staging, [modality], [location], jobs
        )
        nested = staging / f"Location_{location:02d}"
        if nested.is_dir():
            for child in nested.iterdir():
                child.rename(staging / child.name)
            nested.rmdir()
    return report
