"""The command line: every subcommand documents its options."""

from __future__ import annotations

import subprocess
import sys

import pytest
import scipy.io

OPTIONS = {
    "synth": ["--locations", "--subjects", "--actions", "--seconds", "--frame-size", "--seed", "--jobs"],
    "convert": ["--modalities", "--locations", "--jobs"],
    "lists": ["--num-samples", "--split-mode", "--location", "--out"],
    "stats": ["--tfrecord-root", "--out", "--total-length", "--batch-size"],
    "distill": [
        "--teacher",
        "--teacher-logits",
        "--weights",
        "--alpha",
        "--lambda",
        "--temperature",
        "--train-file",
        "--init-from",
    ],
    "teacher-logits": ["--lists", "--restore-checkpoint", "--out"],
    "convert-soundnet": ["source", "out"],
    "convert-resnet": ["source", "out"],
}


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_help_documents_every_option(command):
    result = subprocess.run([sys.executable, "-m", "avdistill.cli", command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for option in OPTIONS[command]:
        assert option in result.stdout


def test_synth_is_deterministic_for_a_seed(tmp_path):
    def run(out, seed):
        args = [
            "synth",
            str(out),
            "--locations",
            "2",
            "--subjects",
            "1",
            "--actions",
            "4",
            "--seconds",
            "1",
            "--frame-size",
            "32x48",
            "--seed",
            str(seed),
            "--jobs",
            "1",
        ]
        subprocess.run([sys.executable, "-m", "avdistill.cli", *args], check=True, capture_output=True)
        # A .mat header carries its creation time; its content is what must repeat.
        return {
            p.relative_to(out): scipy.io.loadmat(p)["MFCC"].tobytes() if p.suffix == ".mat" else p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file()
        }

    first, again, other = run(tmp_path / "a", 1), run(tmp_path / "b", 1), run(tmp_path / "c", 2)
    assert first == again
    assert first.keys() == other.keys() and first != other


def test_teacher_logits_and_distill_from_the_command_line(tiny_records, tiny_lists, tmp_path):
    """main_s2.py's path: a teacher's logits, then a student distilled from them."""
    from avdistill.networks.build import build_model
    from avdistill.train.weights import save_weights

    save_weights(build_model("dualcamnet", 1), tmp_path / "teacher.weights.npz")
    lists = [str(tiny_lists / "training.txt"), str(tiny_lists / "validation.txt")]
    teacher = [sys.executable, "-m", "avdistill.cli", "teacher-logits", "--model", "dualcamnet"]
    teacher += [
        "--tfrecord-root",
        str(tiny_records["acoustic"]),
        "--restore-checkpoint",
        str(tmp_path / "teacher.weights.npz"),
    ]
    teacher += ["--lists", *lists, "--out", str(tmp_path / "logits.npz"), "--batch-size", "16"]
    result = subprocess.run(teacher, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    student = [sys.executable, "-m", "avdistill.cli", "distill", "--model", "hearnet", "--teacher", "dualcamnet"]
    student += ["--teacher-logits", str(tmp_path / "logits.npz"), "--tfrecord-root", str(tiny_records["audio"])]
    student += ["--train-file", lists[0], "--valid-file", lists[1], "--num-epochs", "1", "--number-of-crops", "1"]
    student += ["--batch-size", "8", "--out", str(tmp_path / "student")]
    result = subprocess.run([*student, "--lambda", "1.5"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().endswith("lambda 1.5 is outside [0, 1]")
    # An ensemble: one logits file and one weight per teacher.
    ensemble = [*student, "--teacher", "dualcamnet", "resnet50", "--weights", "1"]
    result = subprocess.run(ensemble, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip().endswith(
        "1 weights for the 2 teachers dualcamnet, resnet50"
    )
    result = subprocess.run(student, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "student/model.weights.npz").exists() and "best epoch 1" in result.stdout
