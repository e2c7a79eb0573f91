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
