"""Data-stage benchmark: synthesis, conversion throughput and input-pipeline samples/s.

    python benchmarks/bench_data.py [--work DIR] [--subjects 2] [--batches 15]

Synthesises the default dataset (or the size given), converts each modality with all
cores, makes the `all` split, then measures samples/s of every model's training pipeline
against a straightforward port of the original loader (tf.py_function + librosa per
sample) for the two audio students. Prints a table and writes JSON next to this file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402  (benchmarks/machine.py, beside this script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class PeakMemory:
    """Peak memory of this process and its children (the conversion workers), sampled every 50 ms.

    PSS shares each shared page among the processes that map it, so its sum over the tree is
    what the job really costs; RSS counts shared libraries once per process.
    """

    def __init__(self):
        import threading

        self.peak = {"rss": 0, "pss": 0, "uss": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.05):
            total = {"rss": 0, "pss": 0, "uss": 0}
            for process in [me, *me.children(recursive=True)]:
                try:
                    info = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                for key in total:
                    total[key] += getattr(info, key)
            self.peak = {key: max(self.peak[key], total[key]) for key in total}

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def megabytes(self) -> dict:
        return {f"peak_{key}_MB": round(value / 1e6) for key, value in self.peak.items()}


def samples_per_second(dataset, batches: int) -> float:
    iterator = iter(dataset)
    next(iterator)  # warm-up: graph tracing, first reads
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
        count += int(batch[next(iter(batch))].shape[0]) if isinstance(batch, dict) else int(batch[0].shape[0])
    return count / (time.perf_counter() - start)


def original_audio_loader(list_path, root, spectrogram: bool, batch_size: int, resample_type: str):
    """The original loader's audio path: sequential reads, py_function + librosa per sample."""
    import librosa
    import numpy as np
    import resampy  # noqa: F401  (librosa imports it lazily; racing threads would see half a module)
    import tensorflow as tf

    from avdistill.data import records

    paths = [str(Path(root) / p) for p in Path(list_path).read_text().split()]
    files = tf.data.Dataset.from_tensor_slices(paths)
    data = files.flat_map(lambda p: tf.data.TFRecordDataset(p, compression_type="GZIP"))
    data = data.map(records.parse_fn(["audio"]), num_parallel_calls=4).batch(5)

    def build_wav(audio):
        x = audio.numpy().astype(np.float32).flatten("C")
        x = x / np.abs(x).max()
        y = librosa.resample(x, orig_sr=12288, target_sr=22050, res_type=resample_type)
        return (y / np.abs(y).max() * 256.0).astype(np.float32)

    def to_wave(element):
        wave = tf.py_function(build_wav, [element["audio"]], tf.float32)
        return tf.ensure_shape(wave, [110250])

    data = data.map(to_wave, num_parallel_calls=4)
    if spectrogram:
        data = data.map(lambda w: tf.abs(tf.signal.stft(w, 440, 220, 512))[:, None, :], num_parallel_calls=4)
    return data.batch(batch_size).map(lambda x: (x,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="results/bench_data", help="scratch folder (default: results/bench_data)")
    parser.add_argument("--subjects", type=int, default=2, help="subjects per location (default config: 2)")
    parser.add_argument("--batches", type=int, default=15, help="batches timed per pipeline")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--reuse", action="store_true", help="keep the dataset and records of an earlier run in --work")
    args = parser.parse_args()

    from avdistill.data.convert import convert_dataset
    from avdistill.data.lists import make_lists
    from avdistill.data.synth import SynthOptions, synthesize_dataset

    work = Path(args.work)
    options = SynthOptions(subjects=args.subjects)
    results: dict = {"machine": machine_info()}
    out = Path(__file__).with_name("bench_data.json")
    if args.reuse and out.exists() and (work / "tfrecords" / "video").exists():
        previous = json.loads(out.read_text())
        results["synth"], results["convert"] = previous["synth"], previous["convert"]
    else:
        summary, seconds = timed(lambda: synthesize_dataset(work / "dataset", options, jobs=args.jobs))
        results["synth"] = {
            "sequences": summary["sequences"],
            "frames": summary["frames"],
            "seconds": round(seconds, 1),
        }
        print(f"synth: {summary['sequences']} sequences, {summary['frames']} frames in {seconds:.1f} s")
        results["convert"] = {}
        for modality in ("acoustic", "audio", "video"):
            with PeakMemory() as memory:
                report = convert_dataset(
                    work / "dataset/matfiles",
                    work / "dataset/sync",
                    work / "tfrecords" / modality,
                    [modality],
                    jobs=args.jobs,
                )
            results["convert"][modality] = {
                "records": report.records,
                "seconds": round(report.seconds, 1),
                "records_per_s": round(report.records_per_second, 1),
                "MB_written_per_s": round(report.megabytes_per_second, 1),
                "MB_written": round(report.bytes_written / 1e6, 1),
                **memory.megabytes(),
            }
            print(
                f"convert {modality}: {report.records_per_second:.1f} records/s, "
                f"{report.megabytes_per_second:.1f} MB/s written, memory {memory.megabytes()}"
            )
    roots = {m: work / "tfrecords" / m for m in ("acoustic", "audio", "video")}
    make_lists(list(roots.values()), work / "lists/all")
    training = work / "lists/all/training.txt"

    from avdistill.data.pipeline import PipelineOptions, make_dataset
    from avdistill.data.stats import compute_spectrogram_stats

    stats = compute_spectrogram_stats(training, roots["audio"])
    settings = {
        "dualcamnet": ("acoustic_images", PipelineOptions(sample_length=1, number_of_crops=30)),
        "hearnet": ("spectrogram", PipelineOptions(sample_length=5, number_of_crops=6, normalize=True, stats=stats)),
        "soundnet5": ("waveform", PipelineOptions(sample_length=5, number_of_crops=6)),
        "resnet50": ("video_frames", PipelineOptions(sample_length=1, number_of_crops=20)),
        "temporal_resnet50": ("video_clip", PipelineOptions(sample_length=1, number_of_crops=20)),
    }
    results["pipelines"] = {}
    for model, (name, opts) in settings.items():
        rate = samples_per_second(make_dataset(training, roots, [name], True, opts).repeat(), args.batches)
        results["pipelines"][model] = {"input": name, "samples_per_s": round(rate, 1)}
        print(f"pipeline {model} ({name}): {rate:.1f} samples/s")
    for model, spectrogram in (("hearnet", True), ("soundnet5", False)):
        for resample_type in ("kaiser_best", "soxr_hq"):
            baseline = original_audio_loader(training, roots["audio"], spectrogram, 32, resample_type).repeat()
            rate = samples_per_second(baseline, max(3, args.batches // 3))
            ours = results["pipelines"][model]["samples_per_s"]
            results["pipelines"][model][f"baseline_py_function_librosa_{resample_type}"] = round(rate, 1)
            results["pipelines"][model][f"speedup_vs_{resample_type}"] = round(ours / rate, 1)
            print(
                f"baseline {model} py_function+librosa {resample_type}: {rate:.1f} samples/s -> ours is {ours / rate:.1f}x"
            )
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
