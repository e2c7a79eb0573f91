"""Stage 2: the distillation loss, teacher logits cached per record, and a distillation run."""

from __future__ import annotations

import numpy as np
import pytest

from avdistill.data.pipeline import PipelineOptions, make_dataset
from avdistill.errors import DataError
from avdistill.train.distillation import DistillationOptions, distill, make_distiller, normalised_weights
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


def _ce(targets, logits):
    """Cross-entropy of float64 logits against target distributions, per row."""
    return -(targets * np.log(_softmax(logits.astype(np.float64)))).sum(-1)


def test_an_ensemble_of_one_is_the_single_teacher_and_of_two_the_weighted_mixture():
    """Soft target Σ_k w_k softmax(t_k / T), weights normalised: one teacher gives exactly
    the single-teacher loss, two the mixture computed here."""
    import keras

    rng = np.random.default_rng(1)
    labels = np.eye(14, dtype=np.float32)[rng.integers(0, 14, 8)]
    first, second, student = (rng.normal(0, 3, (8, 14)).astype(np.float32) for _ in range(3))
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(14)])
    single = make_distiller(tiny, 0.4, 3.0, 1e-4)
    one = make_distiller(tiny, 0.4, 3.0, 1e-4, teacher_weights=(1.0,))
    assert float(one.distillation_loss(labels, first[:, None, :], student)) == float(
        single.distillation_loss(labels, first, student)
    )
    two = make_distiller(tiny, 0.4, 3.0, 1e-4, teacher_weights=normalised_weights(("a", "b"), (2, 1)))
    mixture = 2 / 3 * _softmax(first.astype(np.float64) / 3.0) + 1 / 3 * _softmax(second.astype(np.float64) / 3.0)
    expected = (0.6 * _ce(labels, student) + 0.4 * _ce(mixture, student)).mean()
    ours = float(two.distillation_loss(labels, np.stack([first, second], axis=1), student))
    assert ours == pytest.approx(float(expected), rel=1e-5)
    # And the second teacher matters.
    assert abs(ours - float(single.distillation_loss(labels, first, student))) > 1e-3


def test_the_feature_term_is_the_projected_squared_distance_on_a_hand_made_batch():
    """α · Σ_k w_k · mean_b ||P_k f_s − f_k||², added to the logits loss, with the student's
    features read from the layer its network names, here by hand."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(2)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    logits = keras.layers.Dense(14, name="fc1")(hidden)
    student = keras.Model(inputs, logits)
    with_features = keras.Model(inputs, [logits, hidden])  # fc1's input: the penultimate features
    x = rng.normal(size=(4, 6)).astype(np.float32)
    labels = np.eye(14, dtype=np.float32)[[0, 3, 3, 9]]
    teacher_logits = rng.normal(0, 2, (4, 2, 14)).astype(np.float32)
    teacher_features = rng.normal(size=(4, 3 + 2)).astype(np.float32)  # two teachers: 3 and 2 features
    weights = normalised_weights(("a", "b"), (3, 1))
    distiller = make_distiller(
        student,
        0.5,
        2.0,
        1e-4,
        teacher_weights=weights,
        alpha=0.25,
        student_with_features=with_features,
        teacher_feature_sizes=(3, 2),
    )
    projections = [rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)]
    for layer, kernel in zip(distiller.projection.projections, projections, strict=True):
        layer.kernel.assign(kernel)
    data = tf.data.Dataset.from_tensors((x, (labels, teacher_logits, teacher_features)))
    ours = distiller.evaluate(data, return_dict=True, verbose=0)["loss"]

    f_student = np.maximum(x @ student.get_layer("hidden").kernel.numpy() + student.get_layer("hidden").bias.numpy(), 0)
    s = f_student @ student.get_layer("fc1").kernel.numpy() + student.get_layer("fc1").bias.numpy()
    mixture = sum(w * _softmax(teacher_logits[:, k].astype(np.float64) / 2.0) for k, w in enumerate(weights))
    logits_loss = (0.5 * _ce(labels, s) + 0.5 * _ce(mixture, s)).mean()
    targets = [teacher_features[:, :3], teacher_features[:, 3:]]
    feature_loss = sum(
        w * ((f_student @ p - t) ** 2).sum(-1).mean() for w, p, t in zip(weights, projections, targets, strict=True)
    )
    assert ours == pytest.approx(float(logits_loss + 0.25 * feature_loss), rel=1e-5)
    assert feature_loss > 0.1  # the term is not negligible here


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


def test_teacher_features_are_each_records_fc1_input_averaged_over_its_frames(teacher, tiny_lists, tiny_records):
    """The cached features of a record: DualCamNet's fc1 input (1024 per frame), here read
    from the layer with Keras directly, averaged over the record's 12 frames."""
    import keras

    from avdistill.networks.build import build_model

    data = np.load(teacher / "logits.npz")
    assert data["features"].shape == (len(data["records"]), 1024)
    model = build_model("dualcamnet", 1)
    load_weights(model, teacher / "model.weights.npz")
    fc1_input = keras.Model(model.input, model.get_layer("DualCamNet.fc1").input)
    options = PipelineOptions(sample_length=1, batch_size=3)
    batch = next(iter(make_dataset(tiny_lists / "training.txt", tiny_records, ["acoustic_images"], False, options)))
    per_frame = np.asarray(fc1_input.predict_on_batch(batch["acoustic_images"])).reshape(3, 12, 1024)
    np.testing.assert_allclose(data["features"][:3], per_frame.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert np.abs(data["features"][:3]).max() > 0  # ReLU features, not all zero


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
        teachers="dualcamnet",
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


def _distil(teacher_files, tiny_lists, tiny_records, out, alpha=0.0, weights=None, epochs=1):
    teachers = ("dualcamnet", "resnet50")[: len(teacher_files)]
    options = DistillationOptions(
        # The last epoch's weights: what a resumed run must have continued to.
        student=TrainingOptions(model="hearnet", learning_rate=1e-3, epochs=epochs, threads=2, checkpoint="last"),
        teachers=teachers,
        weights=weights,
        alpha=alpha,
    )
    distill(
        options,
        PipelineOptions(sample_length=5, number_of_crops=1, batch_size=8, seed=4),
        tiny_lists / "training.txt",
        tiny_lists / "validation.txt",
        {"audio": tiny_records["audio"]},
        teacher_files,
        out / "work",
        out / "model.weights.npz",
        out / "history.csv",
    )
    return dict(np.load(out / "model.weights.npz"))


def test_alpha_zero_is_the_logits_only_run_bit_for_bit_and_alpha_trains_a_discarded_projection(
    teacher, tiny_lists, tiny_records, tmp_path
):
    logits_only = tmp_path / "logits_only.npz"
    data = np.load(teacher / "logits.npz")
    np.savez(logits_only, records=data["records"], logits=data["logits"], teacher=data["teacher"])
    baseline = _distil([logits_only], tiny_lists, tiny_records, tmp_path / "baseline")
    zero = _distil([teacher / "logits.npz"], tiny_lists, tiny_records, tmp_path / "zero", alpha=0.0)
    assert baseline.keys() == zero.keys()
    assert all(np.array_equal(baseline[key], zero[key]) for key in baseline)
    features = _distil([teacher / "logits.npz"], tiny_lists, tiny_records, tmp_path / "features", alpha=0.01)
    # The same student variables (the projection is not saved with it), trained otherwise.
    assert features.keys() == baseline.keys()
    assert not all(np.array_equal(baseline[key], features[key]) for key in baseline)
    state = np.load(tmp_path / "features" / "work" / "last.trained_with.weights.npz")
    assert [state[key].shape for key in state.files] == [(1024, 1024)]  # HearNet's 1024 -> DualCamNet's 1024
    # Without features in the teacher's file, α > 0 is refused naming the file.
    with pytest.raises(DataError, match="logits_only.npz: holds no teacher features"):
        _distil([logits_only], tiny_lists, tiny_records, tmp_path / "refused", alpha=0.01)


def test_a_run_with_the_feature_term_resumes_its_projection(teacher, tiny_lists, tiny_records, tmp_path):
    """Stopped after epoch 1 and continued to 2, a run with α > 0 ends with the weights of
    the run trained to 2 at once: the projection is restored from train_state, not reset."""
    files = [teacher / "logits.npz"]
    whole = _distil(files, tiny_lists, tiny_records, tmp_path / "whole", alpha=0.01, epochs=2)
    _distil(files, tiny_lists, tiny_records, tmp_path / "resumed", alpha=0.01, epochs=1)
    resumed = _distil(files, tiny_lists, tiny_records, tmp_path / "resumed", alpha=0.01, epochs=2)
    assert all(np.array_equal(whole[key], resumed[key]) for key in whole)


def test_an_ensemble_distils_from_every_teacher_file(teacher, tiny_lists, tiny_records, tmp_path):
    """Two teachers' files (here the same teacher's logits, shifted, as a second teacher):
    the run differs from the one-teacher run, and a missing file for a teacher is refused."""
    data = np.load(teacher / "logits.npz")
    second = tmp_path / "second.npz"
    rng = np.random.default_rng(5)
    np.savez(second, records=data["records"], logits=rng.normal(0, 3, data["logits"].shape).astype(np.float32))
    single = _distil([teacher / "logits.npz"], tiny_lists, tiny_records, tmp_path / "single")
    both = _distil([teacher / "logits.npz", second], tiny_lists, tiny_records, tmp_path / "both", weights=(2, 1))
    assert not all(np.array_equal(single[key], both[key]) for key in single)
    options = DistillationOptions(TrainingOptions(model="hearnet"), ("dualcamnet", "resnet50"), weights=(2, 1))
    assert options.teacher == "dualcamnet~2+resnet50~1"
    with pytest.raises(TrainingError, match="1 teacher logits files for the teachers dualcamnet, resnet50"):
        distill(
            options,
            PipelineOptions(sample_length=5),
            tiny_lists / "training.txt",
            tiny_lists / "validation.txt",
            {"audio": tiny_records["audio"]},
            [second],
            tmp_path / "w",
            tmp_path / "m.npz",
            tmp_path / "h.csv",
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lambda_value": 1.5}, "lambda 1.5 is outside [0, 1]"),
        ({"lambda_value": -0.1}, "lambda -0.1 is outside [0, 1]"),
        ({"temperature": 0.0}, "temperature 0.0 must be positive"),
        ({"teachers": ("hearnet",)}, "teacher 'hearnet': the teachers are dualcamnet, resnet50, temporal_resnet50"),
        ({"student": TrainingOptions(model="dualcamnet")}, "student 'dualcamnet': distillation trains"),
        ({"alpha": -0.5}, "alpha -0.5 must be zero or positive"),
        ({"teachers": ("dualcamnet", "resnet50"), "weights": (1.0,)}, "1 weights for the 2 teachers"),
        (
            {"teachers": ("dualcamnet", "resnet50"), "weights": (1.0, 0.0)},
            "teacher weights [1.0, 0.0] must be positive",
        ),
        ({"teachers": ("dualcamnet", "dualcamnet")}, "name a teacher twice"),
    ],
)
def test_bad_distillation_settings_are_refused(changes, message):
    settings = {"student": TrainingOptions(model="hearnet"), "teachers": ("dualcamnet",), **changes}
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
