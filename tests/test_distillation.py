"""Stage 2: the distillation loss, teacher logits cached per record, and a distillation run."""

from __future__ import annotations

import numpy as np
import pytest

from avdistill.data.pipeline import PipelineOptions, make_dataset
from avdistill.errors import DataError
from avdistill.train.distillation import DistillationOptions, distill, make_distiller
from avdistill.train.options import TrainingError, TrainingOptions
from avdistill.train.session import configure_tensorflow
from avdistill.train.teacher_logits import compute_teacher_logits, teacher_table
from avdistill.train.weights import load_weights, save_weights


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_loss_is_the_originals_formula():
    """(1-λ)·CE(labels, s) + λ·CE(softmax(t/T), s): student logits not divided by T, no T²."""
    from avdistill.networks.build import build_model

    rng = np.random.default_rng(0)
    labels = np.eye(14, dtype=np.float32)[rng.integers(0, 14, 6)]
    teacher, student = rng.normal(0, 3, (6, 14)).astype(np.float32), rng.normal(0, 3, (6, 14)).astype(np.float32)
    distiller = make_distiller(build_model("hearnet", 5), lambda_value=0.3, temperature=2.5, learning_rate=1e-4)
    ours = float(distiller.distillation_loss(labels, teacher, student))
    log_p = np.log(_softmax(student.astype(np.float64)))
    hard = -(labels * log_p).sum(-1)
    soft = -(_softmax(teacher.astype(np.float64) / 2.5) * log_p).sum(-1)
    assert ours == pytest.approx(float((0.7 * hard + 0.3 * soft).mean()), rel=1e-5)
    # The soft term is a Keras distillation loss: Keras' own LogitsDistillation would divide
    # the student's logits by T and scale by T², which the original does not.
    import keras

    assert isinstance(distiller.soft_loss, keras.distillation.DistillationLoss)
    assert float(distiller.soft_loss.compute_loss(teacher, student)) == pytest.approx(float(soft.mean()), rel=1e-5)


@pytest.fixture(scope="module")
def teacher(tiny_lists, tiny_records, tmp_path_factory):
    """A DualCamNet teacher (random weights suffice) and its logits of every training and
    validation record of the tiny `all` split."""
    from avdistill.networks.build import build_model

    folder = tmp_path_factory.mktemp("teacher")
    configure_tensorflow(7)
    save_weights(build_model("dualcamnet", 1), folder / "model.weights.npz")
    lists = [tiny_lists / "training.txt", tiny_lists / "validation.txt"]
    compute_teacher_logits(
        TrainingOptions(model="dualcamnet"),
        PipelineOptions(sample_length=1, batch_size=16),
        folder / "model.weights.npz",
        lists,
        {"acoustic": tiny_records["acoustic"]},
        folder / "logits.npz",
    )
    return folder


def test_teacher_logits_cover_every_record_per_frame(teacher, tiny_lists):
    data = np.load(teacher / "logits.npz")
    entries = [
        line
        for name in ("training", "validation")
        for line in (tiny_lists / f"{name}.txt").read_text().splitlines()
        if line
    ]
    assert list(data["records"]) == entries
    assert data["logits"].shape == (len(entries), 12, 14)  # 12 acoustic frames per second
    assert str(data["teacher"]) == "dualcamnet"


def test_cached_teacher_logits_give_the_loss_of_the_teacher_run_in_the_step(teacher, tiny_lists, tiny_records):
    from avdistill.networks.build import build_model

    options = PipelineOptions(sample_length=5, number_of_crops=2, batch_size=4, seed=1)
    training = tiny_lists / "training.txt"
    table = teacher_table(teacher / "logits.npz", training, 14)
    roots = {"acoustic": tiny_records["acoustic"], "audio": tiny_records["audio"]}
    # One pipeline gives the student's spectrogram, the teacher's acoustic images of the
    # same random crops, and the cached logits averaged over those crops.
    dataset = make_dataset(
        training, roots, ["spectrogram", "acoustic_images"], True, options, epoch=3, teacher_logits=table
    ).take(3)
    configure_tensorflow(0)
    student = build_model("hearnet", 5)
    teacher_model = build_model("dualcamnet", 5)  # the teacher sees the student's 5-s crop: 60 frames
    load_weights(teacher_model, teacher / "model.weights.npz")
    cached = make_distiller(student, 0.5, 2.0, 1e-4)
    inside = make_distiller(student, 0.5, 2.0, 1e-4, teacher=teacher_model)
    cached_data = dataset.map(lambda b: (b["spectrogram"], (b["action"], b["teacher_logits"])))
    inside_data = dataset.map(lambda b: ({"student": b["spectrogram"], "teacher": b["acoustic_images"]}, b["action"]))
    loss_cached = cached.evaluate(cached_data, return_dict=True, verbose=0)["loss"]
    loss_inside = inside.evaluate(inside_data, return_dict=True, verbose=0)["loss"]
    assert loss_cached == pytest.approx(loss_inside, rel=1e-5)
    # And the teacher term matters: with λ = 0 the loss differs.
    hard_only = make_distiller(student, 0.0, 2.0, 1e-4).evaluate(cached_data, return_dict=True, verbose=0)["loss"]
    assert abs(hard_only - loss_cached) > 1e-3


def test_distillation_trains_the_student_and_keeps_its_best_weights(teacher, tiny_lists, tiny_records, tmp_path):
    from avdistill.networks.build import build_model

    options = DistillationOptions(
        student=TrainingOptions(model="hearnet", learning_rate=1e-3, epochs=2, threads=2),
        teacher="dualcamnet",
        lambda_value=0.5,
        temperature=2.0,
    )
    state = distill(
        options,
        PipelineOptions(sample_length=5, number_of_crops=2, batch_size=8, seed=2),
        tiny_lists / "training.txt",
        tiny_lists / "validation.txt",
        {"audio": tiny_records["audio"]},
        teacher / "logits.npz",
        tmp_path / "work",
        tmp_path / "model.weights.npz",
        tmp_path / "history.csv",
    )
    assert [row["epoch"] for row in state["history"]] == [1, 2]
    assert all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in state["history"])
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy") and len(history) == 3
    # The saved weights are the student's, loadable into a plain HearNet.
    assert len(load_weights(build_model("hearnet", 5), tmp_path / "model.weights.npz")) > 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lambda_value": 1.5}, "lambda 1.5 is outside [0, 1]"),
        ({"lambda_value": -0.1}, "lambda -0.1 is outside [0, 1]"),
        ({"temperature": 0.0}, "temperature 0.0 must be positive"),
        ({"teacher": "hearnet"}, "teacher 'hearnet': the teachers are dualcamnet, resnet50, temporal_resnet50"),
        ({"student": TrainingOptions(model="dualcamnet")}, "student 'dualcamnet': distillation trains"),
    ],
)
def test_bad_distillation_settings_are_refused(changes, message):
    settings = {"student": TrainingOptions(model="hearnet"), "teacher": "dualcamnet", **changes}
    with pytest.raises(TrainingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DistillationOptions(**settings)


def test_teacher_logits_of_another_kind_are_refused(teacher, tiny_lists, tmp_path):
    wrong = tmp_path / "wrong.npz"
    data = np.load(teacher / "logits.npz")
    np.savez(wrong, records=data["records"], logits=data["logits"][..., :10])
    with pytest.raises(DataError, match="wrong.npz: teacher logits of shape .* the student has 14 classes"):
        teacher_table(wrong, tiny_lists / "training.txt", 14)
    partial = tmp_path / "partial.npz"
    np.savez(partial, records=data["records"][:5], logits=data["logits"][:5])
    with pytest.raises(DataError, match="partial.npz: has no teacher logits for .* records of .*training.txt"):
        teacher_table(partial, tiny_lists / "training.txt", 14)
