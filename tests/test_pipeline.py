"""Input pipelines: shapes, crops, windows, labels, seeding, and modalities read from several roots."""

from __future__ import annotations

import numpy as np
import pytest

from avdistill.data import records
from avdistill.data.pipeline import PipelineOptions, make_dataset, num_samples
from avdistill.networks import registry


def _all(dataset):
    batches = list(dataset)
    return {key: np.concatenate([b[key].numpy() for b in batches]) for key in batches[0]}


@pytest.mark.parametrize(
    "name, length, shape",
    [
        ("acoustic_images", 1, (12, 36, 48, 12)),
        ("waveform", 5, (110250,)),
        ("spectrogram", 5, (500, 1, 257)),
        ("video_frames", 1, (12, 224, 224, 3)),
        ("video_clip", 1, (5, 224, 224, 3)),
    ],
)
def test_inference_shapes_and_sample_count(tiny_records, tiny_lists, name, length, shape):
    options = PipelineOptions(sample_length=length, batch_size=8)
    roots = {"acoustic": tiny_records["acoustic"], "audio": tiny_records["audio"], "video": tiny_records["video"]}
    data = _all(make_dataset(tiny_lists / "testing.txt", roots, [name], training=False, options=options))
    lines = len((tiny_lists / "testing.txt").read_text().splitlines())
    assert data[name].shape == (lines // length, *shape)  # non-overlapping windows
    assert data["action"].shape == (lines // length, 14)
    assert num_samples(tiny_lists / "testing.txt", False, options) == lines // length


def test_windows_are_consecutive_seconds_labelled_by_the_first(tiny_records, tiny_lists):
    options = PipelineOptions(sample_length=5, batch_size=4)
    data = _all(
        make_dataset(
            tiny_lists / "testing.txt", {"acoustic": tiny_records["acoustic"]}, ["acoustic_images"], False, options
        )
    )
    paths = (tiny_lists / "testing.txt").read_text().split()
    for sample in (0, 3):
        seconds = [
            records.read_record(tiny_records["acoustic"] / p, ["acoustic"]) for p in paths[5 * sample : 5 * sample + 5]
        ]
        np.testing.assert_array_equal(
            data["acoustic_images"][sample], np.concatenate([s["acoustic_images"] for s in seconds])
        )
        assert np.argmax(data["action"][sample]) == seconds[0]["action"]
        assert np.argmax(data["location"][sample]) == seconds[0]["location"]


def test_training_crops_are_seeded_by_seed_and_epoch(tiny_records, tiny_lists):
    roots = {"acoustic": tiny_records["acoustic"]}
    options = PipelineOptions(sample_length=1, number_of_crops=3, batch_size=16, seed=7)

    def epoch(e, opts=options):
        return _all(make_dataset(tiny_lists / "training.txt", roots, ["acoustic_images"], True, opts, epoch=e))

    first, again, second = epoch(0), epoch(0), epoch(1)
    blocks = len((tiny_lists / "training.txt").read_text().split()) // 10
    assert first["acoustic_images"].shape[0] == blocks * 3
    np.testing.assert_array_equal(first["acoustic_images"], again["acoustic_images"])
    assert not np.array_equal(first["acoustic_images"], second["acoustic_images"])
    other_seed = epoch(0, PipelineOptions(sample_length=1, number_of_crops=3, batch_size=16, seed=8))
    assert not np.array_equal(first["acoustic_images"], other_seed["acoustic_images"])
    # Shuffled: the labels do not come block by block in list order.
    labels = np.argmax(first["action"], axis=1)
    assert not np.array_equal(labels, np.sort(labels))


def test_every_epoch_runs_without_the_autotuner(tiny_records, tiny_lists):
    """Releasing a half-read iterator with tf.data's autotuner on sometimes stalled a job for
    half a minute at 0 % CPU (pipeline.py); every dataset the trainers read has it off."""
    roots = {"acoustic": tiny_records["acoustic"]}
    options = PipelineOptions(sample_length=1, number_of_crops=1, batch_size=4)
    for training in (True, False):
        dataset = make_dataset(tiny_lists / "training.txt", roots, ["acoustic_images"], training, options)
        assert dataset.options().autotune.enabled is False


def test_modalities_from_separate_roots_stay_aligned(tiny_raw, tiny_records, tiny_lists, tmp_path):
    from avdistill.data.convert import convert_dataset

    convert_dataset(tiny_raw / "matfiles", tiny_raw / "sync", tmp_path, ["acoustic", "audio"], jobs=1)
    options = PipelineOptions(sample_length=5, number_of_crops=2, batch_size=4, seed=1)
    separate = {"acoustic": tiny_records["acoustic"], "audio": tiny_records["audio"]}
    together = {"acoustic": tmp_path, "audio": tmp_path}
    inputs = ["acoustic_images", "waveform"]
    a = _all(make_dataset(tiny_lists / "training.txt", separate, inputs, True, options, epoch=2))
    b = _all(make_dataset(tiny_lists / "training.txt", together, inputs, True, options, epoch=2))
    for key in (*inputs, "action"):
        np.testing.assert_array_equal(a[key], b[key])


def test_normalised_spectrogram_uses_the_statistics(tiny_records, tiny_lists):
    from avdistill.data.stats import compute_spectrogram_stats

    low, high = compute_spectrogram_stats(tiny_lists / "training.txt", tiny_records["audio"])
    assert low.shape == high.shape == (257,) and np.all(high > low)
    options = PipelineOptions(sample_length=5, batch_size=8, normalize=True, stats=(low, high))
    data = _all(
        make_dataset(tiny_lists / "training.txt", {"audio": tiny_records["audio"]}, ["spectrogram"], False, options)
    )
    # Over the list the statistics came from, every bin spans exactly [0, 1].
    np.testing.assert_allclose(data["spectrogram"].min(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(data["spectrogram"].max(axis=(0, 1, 2)), 1, atol=1e-5)


# The paper's input shapes for 5-second samples and 32-pixel crops (§2.3), written out here.
PAPER_INPUTS = {
    "acoustic_images": (60, 36, 48, 12),
    "spectrogram": (500, 1, 257),
    "waveform": (110250,),
    "video_frames": (60, 32, 32, 3),
    "video_clip": (5, 32, 32, 3),
}


@pytest.mark.parametrize("name", [n.name for n in registry.networks()])
def test_the_pipeline_gives_every_registered_network_the_input_it_declares(name, tiny_lists, tiny_records):
    network = registry.get(name)
    options = PipelineOptions(sample_length=5, batch_size=2, video_crop_size=32)
    batch = next(iter(make_dataset(tiny_lists / "testing.txt", tiny_records, list(network.inputs), False, options)))
    for input_name in network.inputs:
        assert tuple(batch[input_name].shape[1:]) == PAPER_INPUTS[input_name]
        assert registry.input_shape(input_name, 5, 32) == PAPER_INPUTS[input_name]
    assert network.modalities == tuple(sorted({registry.INPUT_MODALITIES[i] for i in network.inputs}))
