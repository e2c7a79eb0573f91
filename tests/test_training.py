"""Stage-1 training and testing on the tiny synthetic split: learning, determinism, resume,
metrics and every bad input the issue names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from avdistill.data.pipeline import PipelineOptions
from avdistill.errors import DataError
from avdistill.train.evaluate import clip_metrics, evaluate, score_test_logits
from avdistill.train.fit import train
from avdistill.train.options import TrainingError, TrainingOptions
from avdistill.train.weights import read_weights


def _train(
    tiny_records,
    tiny_lists,
    out,
    epochs=1,
    crops=2,
    learning_rate=1e-3,
    training_list=None,
    root=None,
    test_lists=None,
    **kwargs,
):
    options = TrainingOptions("dualcamnet", learning_rate=learning_rate, epochs=epochs, **kwargs)
    pipeline = PipelineOptions(sample_length=1, number_of_crops=crops, batch_size=8, seed=3)
    state = train(
        options,
        pipeline,
        training_list or tiny_lists / "training.txt",
        tiny_lists / "validation.txt",
        {"acoustic": root or tiny_records["acoustic"]},
        out / "state",
        out / "model.weights.npz",
        out / "history.csv",
        test_lists=test_lists,
        test_logits_out=out / "test_logits.npz" if test_lists else None,
    )
    return options, pipeline, state


# Epochs of the `trained` fixture's run. With the second person of the office and the terrace
# (two locations of three) the tiny DualCamNet run reached 0.47 training accuracy after 4.
EPOCHS = 6


@pytest.fixture(scope="module")
def trained(tiny_records, tiny_lists, tmp_path_factory):
    out = tmp_path_factory.mktemp("dualcamnet")
    test_lists = {"testing": tiny_lists / "testing.txt", "validation": tiny_lists / "validation.txt"}
    options, pipeline, state = _train(tiny_records, tiny_lists, out, epochs=EPOCHS, crops=4, test_lists=test_lists)
    return out, options, pipeline, state


def test_training_learns_the_tiny_split(trained, tiny_records, tiny_lists):
    out, options, pipeline, state = trained
    history = [row for row in state["history"]]
    assert len(history) == EPOCHS
    assert history[-1]["loss"] < history[0]["loss"]
    # 4 actions in the tiny set: chance is at most 1/4 on any list.
    assert history[-1]["accuracy"] > 0.5
    metrics = evaluate(
        options,
        pipeline,
        out / "model.weights.npz",
        tiny_lists / "testing.txt",
        {"acoustic": tiny_records["acoustic"]},
        out / "metrics.json",
    )
    assert metrics["clip_accuracy"] > 0.25
    stored = json.loads((out / "metrics.json").read_text())
    blocks = len((tiny_lists / "testing.txt").read_text().split()) // 10
    assert stored["samples"] == blocks * 10  # 1-s windows
    assert stored["clips"] == blocks * 2  # 5-s clips
    assert np.array(stored["confusion_matrix"]).sum() == stored["clips"]
    csv = (out / "history.csv").read_text().splitlines()
    assert csv[0] == "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate" and len(csv) == EPOCHS + 1
    assert list((out / "state" / "tensorboard").rglob("events.out.tfevents.*"))


def test_training_job_test_logits_score_as_a_separate_test(trained, tiny_records, tiny_lists):
    """The training job predicts the test lists with its best weights; scoring those logits
    (the test job, no network) gives the metrics that testing the saved weights gives."""
    out, options, pipeline, _ = trained
    separate = evaluate(
        options,
        pipeline,
        out / "model.weights.npz",
        tiny_lists / "testing.txt",
        {"acoustic": tiny_records["acoustic"]},
        out / "separate.json",
        other_lists={"validation": tiny_lists / "validation.txt"},
        run={"split": "tiny"},
    )
    scored = score_test_logits(
        "dualcamnet", out / "test_logits.npz", out / "model.weights.npz", out / "scored.json", 5, {"split": "tiny"}
    )
    assert scored == separate
    assert json.loads((out / "scored.json").read_text()) == json.loads((out / "separate.json").read_text())
    # Another clip length re-scores the same logits: 10-s clips are half as many.
    ten = score_test_logits(
        "dualcamnet", out / "test_logits.npz", out / "model.weights.npz", out / "ten.json", 10, None
    )
    assert ten["clips"] * 2 == separate["clips"] and ten["samples"] == separate["samples"]
    with pytest.raises(ValueError, match="clip_length 3 s must be a multiple of sample_length 1 s and divide the 10-s"):
        score_test_logits("dualcamnet", out / "test_logits.npz", out / "model.weights.npz", out / "bad.json", 3, None)
    assert not (out / "bad.json").exists()
    # The point of scoring apart: a test job never loads TensorFlow (seconds per job).
    code = (
        "import sys; from avdistill.train.evaluate import score_test_logits; "
        f"score_test_logits('dualcamnet', {str(out / 'test_logits.npz')!r}, 'w', {str(out / 'sub.json')!r}, 5, None); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_best_validation_weights_are_kept(trained):
    out, _, _, state = trained
    best = max(range(EPOCHS), key=lambda e: (state["history"][e]["val_accuracy"], e))  # ties: later epoch
    assert state["best_epoch"] == best
    kept = read_weights(out / "model.weights.npz")
    np.testing.assert_array_equal(
        kept["DualCamNet.fc2/kernel"], read_weights(out / "state" / "best.weights.npz")["DualCamNet.fc2/kernel"]
    )


def test_checkpoint_last_keeps_the_last_epoch_without_retraining(trained, tiny_records, tiny_lists):
    """checkpoint: last reuses the finished run's state (it trains the same) and keeps its last epoch."""
    out, options, pipeline, state = trained
    lists = (tiny_lists / "training.txt", tiny_lists / "validation.txt", {"acoustic": tiny_records["acoustic"]})

    def keep(checkpoint: str, name: str) -> dict:
        weights, history = out / f"{name}.weights.npz", out / f"{name}.csv"
        return train(replace(options, checkpoint=checkpoint), pipeline, *lists, out / "state", weights, history)

    again = keep("last", "last_kept")
    assert again["history"] == state["history"]  # resumed after the last epoch: nothing retrained
    kept, final = read_weights(out / "last_kept.weights.npz"), read_weights(out / "state" / "last.weights.npz")
    for key in kept:
        np.testing.assert_array_equal(kept[key], final[key], err_msg=key)
    with pytest.raises(ValueError, match="checkpoint must be one of"):
        keep("median", "never")
    assert not (out / "never.weights.npz").exists()


def _train_validating(trained, tiny_records, tiny_lists, tmp_path, validation: str):
    """The trained fixture's run again with checkpoint: last and `validation`: it must keep
    the weights of the run validated after every epoch, bit for bit (validating changes no
    weight). Returns (its result, its options, its lists)."""
    out, options, pipeline, _ = trained
    lists = (tiny_lists / "training.txt", tiny_lists / "validation.txt", {"acoustic": tiny_records["acoustic"]})
    changed = replace(options, checkpoint="last", validation=validation)
    result = train(changed, pipeline, *lists, tmp_path / "state", tmp_path / "w.npz", tmp_path / "history.csv")
    kept, every_epoch = read_weights(tmp_path / "w.npz"), read_weights(out / "state" / "last.weights.npz")
    assert kept.keys() == every_epoch.keys()
    for key in kept:
        np.testing.assert_array_equal(kept[key], every_epoch[key], err_msg=key)
    return result, changed, lists


def test_validation_after_the_last_epoch_only_trains_the_same_weights(trained, tiny_records, tiny_lists, tmp_path):
    """validation: last_epoch scores the validation list once, after the last epoch: the
    weights of the run validated after every epoch, bit for bit, and its last validation."""
    out, _, pipeline, state = trained
    result, once, lists = _train_validating(trained, tiny_records, tiny_lists, tmp_path, "last_epoch")
    history = result["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert [("val_accuracy" in row) for row in history] == [False] * (EPOCHS - 1) + [True]
    assert history[-1]["val_accuracy"] == state["history"][-1]["val_accuracy"]
    assert history[-1]["loss"] == state["history"][-1]["loss"]
    rows = (tmp_path / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[3:5] for row in rows[:-1]] == [["", ""]] * (EPOCHS - 1) and "" not in rows[-1].split(",")
    # The report's training curves read such a history (they failed on the empty columns).
    from avdistill.report.figures import training_curves

    training_curves([tmp_path / "history.csv", out / "history.csv"], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # `best` compares every epoch: validating only the last one is refused before training.
    with pytest.raises(ValueError, match="validation: last_epoch needs checkpoint: last"):
        train(replace(once, checkpoint="best"), pipeline, *lists, tmp_path / "s2", tmp_path / "w2.npz", tmp_path / "h2")
    assert not (tmp_path / "w2.npz").exists() and not (tmp_path / "h2").exists()


def test_never_validating_trains_the_same_weights_and_writes_no_validation(trained, tiny_records, tiny_lists, tmp_path):
    """validation: never (the default config's) scores no validation list: the weights of the
    run validated after every epoch, bit for bit, and a history without validation values."""
    _, _, pipeline, state = trained
    result, never, lists = _train_validating(trained, tiny_records, tiny_lists, tmp_path, "never")
    assert [row["loss"] for row in result["history"]] == [row["loss"] for row in state["history"]]
    assert not any("val_accuracy" in row or "val_loss" in row for row in result["history"])
    header, *rows = (tmp_path / "history.csv").read_text().splitlines()
    assert header.split(",")[3:5] == ["val_loss", "val_accuracy"]
    assert len(rows) == EPOCHS and all(row.split(",")[3:5] == ["", ""] for row in rows)
    from avdistill.report.figures import training_curves

    training_curves([tmp_path / "history.csv"], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="validation: never needs checkpoint: last"):
        train(
            replace(never, checkpoint="best"), pipeline, *lists, tmp_path / "s2", tmp_path / "w2.npz", tmp_path / "h2"
        )
    assert not (tmp_path / "w2.npz").exists()


def test_training_is_deterministic(tiny_records, tiny_lists, tmp_path):
    _train(tiny_records, tiny_lists, tmp_path / "a")
    _train(tiny_records, tiny_lists, tmp_path / "b")
    a, b = read_weights(tmp_path / "a/model.weights.npz"), read_weights(tmp_path / "b/model.weights.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert (tmp_path / "a/history.csv").read_text() == (tmp_path / "b/history.csv").read_text()


def test_cosine_schedule_decays_to_zero_over_the_run(tiny_records, tiny_lists, tmp_path, trained):
    """learning_rate_schedule: cosine follows 1e-3 * (1 + cos(pi * t)) / 2 over the run's
    fraction t of steps, ends at zero, and trains other weights than the constant rate."""
    _, _, _, constant = trained
    _, _, state = _train(tiny_records, tiny_lists, tmp_path, epochs=4, crops=4, learning_rate_schedule="cosine")
    expected = [1e-3 * (1 + np.cos(np.pi * epoch / 4)) / 2 for epoch in (1, 2, 3, 4)]
    np.testing.assert_allclose([row["learning_rate"] for row in state["history"]], expected, rtol=1e-6, atol=1e-12)
    assert [row["learning_rate"] for row in constant["history"]] == pytest.approx([1e-3] * EPOCHS)
    assert state["history"][1]["loss"] != constant["history"][1]["loss"]


def test_a_cosine_run_restarts_when_its_epochs_change():
    """Under cosine the epochs shape every step's rate, so a saved state of 2 epochs must not
    continue as a run of 3; under constant it does (more epochs extend a finished run)."""
    for schedule, same in (("cosine", False), ("constant", True)):
        two, three = (TrainingOptions("hearnet", epochs=n, learning_rate_schedule=schedule) for n in (2, 3))
        pipeline = PipelineOptions(sample_length=5)
        assert (two.fingerprint(pipeline, __file__) == three.fingerprint(pipeline, __file__)) is same, schedule
    with pytest.raises(TrainingError, match="learning_rate_schedule must be one of"):
        TrainingOptions("hearnet", learning_rate_schedule="linear")


def _cli_train(tiny_records, tiny_lists, out, epochs):
    # A cosine schedule: a resumed run must also continue the rate from the saved step count.
    return [
        sys.executable, "-m", "avdistill.cli", "train", "--model", "dualcamnet",
        "--tfrecord-root", str(tiny_records["acoustic"]), "--train-file", str(tiny_lists / "training.txt"),
        "--valid-file", str(tiny_lists / "validation.txt"), "--num-epochs", str(epochs), "--batch-size", "8",
        "--learning-rate", "1e-3", "--learning-rate-schedule", "cosine", "--sample-length", "1",
        "--number-of-crops", "2", "--threads", "2",
        "--out", str(out),
    ]  # fmt: skip


def test_killed_run_resumes_to_the_same_weights(tiny_records, tiny_lists, tmp_path):
    subprocess.run(_cli_train(tiny_records, tiny_lists, tmp_path / "whole", 3), check=True, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli_train(tiny_records, tiny_lists, killed, 3), stderr=subprocess.DEVNULL)
    state_file = killed / "train_state" / "state.json"
    while process.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["epochs_done"] >= 1:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    done = json.loads(state_file.read_text())["epochs_done"]
    assert done < 3, "the run finished before it could be killed"
    assert not (killed / "model.weights.npz").exists()

    rerun = subprocess.run(
        [
            *_cli_train(tiny_records, tiny_lists, killed, 3),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "best epoch" in rerun.stdout
    whole, resumed = read_weights(tmp_path / "whole/model.weights.npz"), read_weights(killed / "model.weights.npz")
    for key in whole:
        np.testing.assert_array_equal(whole[key], resumed[key], err_msg=key)
    assert (tmp_path / "whole/history.csv").read_text() == (killed / "history.csv").read_text()

    # `avdistill test` (main_s1.py --mode test) on the result, and its one-line errors.
    command = [
        sys.executable, "-m", "avdistill.cli", "test", "--model", "dualcamnet",
        "--tfrecord-root", str(tiny_records["acoustic"]), "--test-file", str(tiny_lists / "testing.txt"),
        "--sample-length", "1", "--batch-size", "8", "--restore-checkpoint",
    ]  # fmt: skip
    tested = subprocess.run([*command, str(killed / "model.weights.npz")], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stderr
    assert "Testing_Accuracy" in tested.stdout
    assert json.loads((killed / "metrics.json").read_text())["model"] == "dualcamnet"
    missing = subprocess.run([*command, str(tmp_path / "none.weights.npz")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == (
        f"avdistill test: error: {tmp_path / 'none.weights.npz'}: weights file does not exist"
    )


def test_clip_metrics_average_frame_logits_over_a_clip():
    # Two clips of 2 one-frame-per-sample windows... with 3 frames each: frame 0 of clip 0 is
    # confidently wrong, the rest mildly right, so the clip average is right.
    logits = np.zeros((4, 3, 14), np.float32)
    labels = np.zeros((4, 14), np.float32)
    labels[:2, 1] = 1
    labels[2:, 5] = 1
    logits[:2, :, 1] = 1.0
    logits[0, 0, 7] = 3.0
    logits[2:, :, 5] = 1.0
    metrics = clip_metrics(logits, labels, windows_per_clip=2)
    assert metrics["frame_accuracy"] == pytest.approx(11 / 12)
    assert metrics["clips"] == 2 and metrics["clip_accuracy"] == 1.0
    assert metrics["confusion_matrix"][1][1] == 1 and metrics["confusion_matrix"][5][5] == 1


# --- bad input ---------------------------------------------------------------------------


def test_missing_or_incompatible_init_checkpoint(tiny_records, tiny_lists, tmp_path, trained):
    with pytest.raises(DataError, match="does not exist"):
        _train(tiny_records, tiny_lists, tmp_path / "a", init=str(tmp_path / "nothing.weights.npz"))
    # HearNet weights given to DualCamNet: another model.
    from avdistill.networks.audio import hearnet
    from avdistill.train.weights import save_weights

    save_weights(hearnet(5), tmp_path / "hearnet.weights.npz")
    with pytest.raises(DataError, match=r"hearnet.weights.npz.*another model \(hear_net\)"):
        _train(tiny_records, tiny_lists, tmp_path / "b", init=str(tmp_path / "hearnet.weights.npz"))
    # Right model, wrong shapes.
    weights = read_weights(trained[0] / "model.weights.npz")
    weights["DualCamNet.conv2/kernel"] = np.zeros((3, 3, 12, 32), np.float32)
    np.savez(tmp_path / "bad.weights.npz", **weights)
    with pytest.raises(DataError, match=r"DualCamNet.conv2/kernel has shape \(3, 3, 12, 32\)"):
        _train(tiny_records, tiny_lists, tmp_path / "c", init=str(tmp_path / "bad.weights.npz"))
    assert not (tmp_path / "c/model.weights.npz").exists()


def test_list_of_another_modality_is_named(tiny_records, tiny_lists, tmp_path):
    # Audio records where acoustic images are needed.
    with pytest.raises(DataError, match=r"\.tfrecord: is not a record holding acoustic"):
        _train(tiny_records, tiny_lists, tmp_path, crops=1, root=tiny_records["audio"])


def test_empty_split_is_an_error(tiny_records, tiny_lists, tmp_path):
    empty = tmp_path / "training.txt"
    empty.write_text("")
    with pytest.raises(DataError, match="training.txt: list is empty"):
        _train(tiny_records, tiny_lists, tmp_path, crops=1, training_list=empty)


def test_nan_loss_stops_and_keeps_the_best_weights(tiny_records, tiny_lists, tmp_path):
    """A diverging run (Adam steps of ~1e38 overflow the logits) stops with a clear error;
    the best weights of the earlier run in the same folder are left as they were."""
    out = tmp_path / "run"
    _train(tiny_records, tiny_lists, out, epochs=1)
    best = (out / "state/best.weights.npz").read_bytes()
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 1, batch 2"):
        _train(tiny_records, tiny_lists, out, epochs=1, learning_rate=1e38)
    assert (out / "state/best.weights.npz").read_bytes() == best
    assert (out / "model.weights.npz").exists()  # the earlier run's output, untouched


MIRRORED = """
import json, logging, sys
from pathlib import Path

import tensorflow as tf

# Two logical CPU devices stand in for two GPUs (set before TensorFlow starts).
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

from avdistill.data.pipeline import PipelineOptions
from avdistill.train.fit import train
from avdistill.train.options import TrainingOptions

root, lists, out = (Path(a) for a in sys.argv[1:4])
losses = {}
for distribute in ("none", "mirrored"):
    options = TrainingOptions("dualcamnet", learning_rate=1e-3, epochs=2, distribute=distribute)
    pipeline = PipelineOptions(sample_length=1, number_of_crops=2, batch_size=8, seed=3)
    run = out / distribute
    state = train(
        options, pipeline, lists / "training.txt", lists / "validation.txt", {"acoustic": root},
        run / "state", run / "model.weights.npz", run / "history.csv",
        test_lists={"testing": lists / "testing.txt"}, test_logits_out=run / "test_logits.npz",
    )
    losses[distribute] = [row["loss"] for row in state["history"]]

# Stage 2: two steps of the Distiller on fixed random inputs, with each strategy.
import keras
import numpy as np
from avdistill.train.distillation import make_distiller
from avdistill.networks.build import build_model
from avdistill.train.session import distribution_strategy

rng = np.random.default_rng(0)
x = rng.normal(size=(16, 12, 36, 48, 12)).astype("float32")
labels = np.eye(14, dtype="float32")[rng.integers(0, 14, 16)]
teacher = rng.normal(size=(16, 14)).astype("float32")
for distribute in ("none", "mirrored"):
    keras.utils.set_random_seed(3)
    with distribution_strategy(distribute).scope():
        student = build_model("dualcamnet", 1)
        mean_over_frames = keras.Model(student.input, keras.ops.mean(student.output, axis=1))
        distiller = make_distiller(mean_over_frames, 0.5, 2.0, 1e-3)
        data = tf.data.Dataset.from_tensor_slices((x, (labels, teacher))).batch(8)
        history = distiller.fit(data, epochs=2, verbose=0, shuffle=False)
    losses["distill_" + distribute] = [float(v) for v in history.history["loss"]]
print(json.dumps(losses))
"""


def test_mirrored_strategy_trains_over_every_device(tiny_records, tiny_lists, tmp_path):
    """`distribute: mirrored` splits each batch over the job's devices (two logical CPUs
    here, GPUs on a cluster) and trains to the same loss as one device: the gradients of
    the replicas are summed, not counted twice."""
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tiny_records["acoustic"]), str(tiny_lists), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "MirroredStrategy over 2 replicas" in result.stderr
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    # The second epoch's loss follows the first epoch's updates: summed-twice gradients would
    # move it far off. Equal up to float summation order, not bit for bit.
    assert losses["mirrored"][0] == pytest.approx(losses["none"][0], rel=1e-4)
    assert losses["mirrored"][1] == pytest.approx(losses["none"][1], rel=1e-3)
    # The same for the Distiller's own train_step.
    assert losses["distill_mirrored"][0] == pytest.approx(losses["distill_none"][0], rel=1e-4)
    assert losses["distill_mirrored"][1] == pytest.approx(losses["distill_none"][1], rel=1e-3)
    assert (tmp_path / "mirrored" / "model.weights.npz").exists()
    assert (tmp_path / "mirrored" / "test_logits.npz").exists()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the oneDNN default is set on x86 CPUs only")
@pytest.mark.parametrize("user_setting, kernels", [(None, "oneDNN"), ("0", "Eigen")])
def test_jobs_run_onednn_kernels_unless_the_user_says_otherwise(user_setting, kernels):
    """Importing avdistill before TensorFlow turns oneDNN on where TensorFlow would not
    (AVX2-only CPUs), and leaves a user's TF_ENABLE_ONEDNN_OPTS alone. A fresh interpreter:
    TensorFlow reads the variable once, when it loads."""
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if user_setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_setting
    code = (
        "import os, avdistill\n"
        "from avdistill.train.session import cpu_kernels\n"
        "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], cpu_kernels())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert run.stdout.decode().split() == [user_setting or "1", kernels]
