"""benchmarks/diagnose_distillation.py: the pieces its figures rest on (no training here)."""

import numpy as np

from tests.conftest import load_benchmark


def _diagnosis():
    return load_benchmark("diagnose_distillation")


def _entry(location, subject, action, second):
    return f"Location_{location:02d}/Subject_{subject:02d}/Action_{action:03d}/Data_{second:03d}.tfrecord"


def test_training_samples_are_every_window_inside_each_block(tmp_path):
    # Two 10-second blocks of one recording (seconds 11-20, then 1-10, as a shuffled split
    # lists them) and one of another: 6 five-second windows per block, none across blocks.
    entries = (
        [_entry(2, 1, 3, s) for s in range(11, 21)]
        + [_entry(2, 1, 3, s) for s in range(1, 11)]
        + [_entry(1, 4, 7, s) for s in range(21, 31)]
    )
    training = tmp_path / "training.txt"
    training.write_text("\n".join(entries) + "\n")
    samples = _diagnosis().training_samples(training, 5)
    assert len(samples) == 3 * (10 - 5 + 1)
    for sample in samples:
        seconds = [int(e[-12:-9]) for e in sample]
        assert seconds == list(range(seconds[0], seconds[0] + 5))
        assert (seconds[0] - 1) // 10 == (seconds[-1] - 1) // 10  # inside one block
        assert len({e.rsplit("/", 1)[0] for e in sample}) == 1


def test_labels_as_teacher_logits_name_each_record_s_action(tmp_path):
    records = np.array([_entry(1, 1, 1, 1), _entry(3, 2, 11, 5)])  # folders count actions from 1
    source = tmp_path / "teacher_logits.npz"
    np.savez(source, records=records, logits=np.zeros((2, 12, 14), np.float32), teacher=np.array("dualcamnet"))
    out = tmp_path / "labels.npz"
    _diagnosis().control_logits(source, out, None)
    with np.load(out) as data:
        assert data["logits"].shape == (2, 12, 14)
        assert data["logits"].argmax(-1).tolist() == [[0] * 12, [10] * 12]
        assert list(data["records"]) == list(records)
