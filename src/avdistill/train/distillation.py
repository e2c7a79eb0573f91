"""Stage 2: audio students distilled from a frozen teacher (the original `main_s2.py`, §6.3).

loss = (1 - λ) · CE(labels, student) + λ · CE(softmax(teacher / T), student) + student L2

as the original: the student's logits are not divided by T and there is no T² factor; the
teacher's logits are averaged over the 12·L frames of the student's L-second sample.

Why our own `Distiller` and not `keras.distillation.Distiller` (Keras 3.12+): Keras' runs
the teacher in every training step, and its `LogitsDistillation` divides both logits by T
and scales by T² (Hinton et al.), which is not the original's loss. Ours reads the
teacher's cached logits from the batch (below), so a teacher costs one pass over the data
instead of one per epoch, student, λ and T. The soft term itself is a
`keras.distillation.DistillationLoss` (`OriginalLogitsDistillation`), the interface Keras
gives distillation losses, so that its own losses (`FeatureDistillation`, ...) plug into
the same place.

The teacher is frozen and sees each 1-second record the same way whichever sample the
record falls in, so its logits are computed once per record (`avdistill.train.teacher_logits`,
by the teacher's own training job, and reused by every student, λ and T) and averaged over
each sample's records by the input pipeline. `Distiller` also accepts the teacher itself, run inside the step,
which is how the tests show both give the same loss.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from avdistill.networks import registry
from avdistill.train.options import TrainingError, TrainingOptions
from avdistill.train.teacher_logits import teacher_table

log = logging.getLogger(__name__)


def _keras_classes():
    import keras
    import tensorflow as tf

    class OriginalLogitsDistillation(keras.distillation.DistillationLoss):
        """The original's soft term: batch mean of CE(softmax(teacher / T), student logits).

        Unlike `keras.distillation.LogitsDistillation`, the student's logits are not divided
        by T and there is no T² factor (main_s2.py)."""

        def __init__(self, temperature: float):
            self.temperature = float(temperature)

        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            soft_targets = tf.nn.softmax(teacher_outputs / self.temperature)
            return tf.reduce_mean(
                keras.losses.categorical_crossentropy(soft_targets, student_outputs, from_logits=True)
            )

    class Distiller(keras.Model):
        """A student trained from labels and a frozen teacher's soft predictions (§6.3).

        Batches are (student inputs, (one-hot labels, teacher logits [B, 14])); with
        `teacher` given, (({"student": ..., "teacher": ...}), labels) and the teacher runs
        in inference mode inside the step. Only the student's variables are trained.
        """

        def __init__(self, student, lambda_value: float, temperature: float, teacher=None, **kwargs):
            super().__init__(**kwargs)
            self.student = student
            self.teacher = teacher
            self.lambda_value = float(lambda_value)
            self.temperature = float(temperature)
            self.soft_loss = OriginalLogitsDistillation(temperature)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")

        @property
        def metrics(self):
            return [self.loss_tracker, self.accuracy]

        def call(self, inputs, training=False):
            return self.student(inputs, training=training)

        def distillation_loss(self, labels, teacher_logits, student_logits):
            """Batch mean of (1-λ)·CE(labels, student) + λ·CE(softmax(teacher/T), student)."""
            hard = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, student_logits, from_logits=True))
            soft = self.soft_loss.compute_loss(teacher_logits, student_logits)
            return (1.0 - self.lambda_value) * hard + self.lambda_value * soft

        def _unpack(self, data):
            x, y = data
            if self.teacher is None:
                labels, teacher_logits = y
                return x, labels, teacher_logits
            teacher_logits = self.teacher(x["teacher"], training=False)
            if len(teacher_logits.shape) == 3:  # per frame: the mean over the sample's 12·L frames
                teacher_logits = tf.reduce_mean(teacher_logits, axis=1)
            return x["student"], y, tf.stop_gradient(teacher_logits)

        def _loss(self, x, labels, teacher_logits, training: bool):
            student_logits = self.student(x, training=training)
            loss = self.distillation_loss(labels, teacher_logits, student_logits)
            if self.student.losses:  # the student's L2 terms, as the original's total loss
                loss = loss + tf.add_n(self.student.losses)
            return loss, student_logits

        def train_step(self, data):
            x, labels, teacher_logits = self._unpack(data)
            with tf.GradientTape() as tape:
                loss, student_logits = self._loss(x, labels, teacher_logits, training=True)
                # Under MirroredStrategy each replica's gradients are summed: scale its
                # batch-mean loss by 1/replicas, as Keras' own train_step does.
                scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables, strict=True))
            return self._update_metrics(loss, labels, student_logits)

        def test_step(self, data):
            x, labels, teacher_logits = self._unpack(data)
            loss, student_logits = self._loss(x, labels, teacher_logits, training=False)
            return self._update_metrics(loss, labels, student_logits)

        def _update_metrics(self, loss, labels, student_logits):
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(labels, student_logits)
            return {metric.name: metric.result() for metric in self.metrics}

    return Distiller, OriginalLogitsDistillation


def make_distiller(student, lambda_value: float, temperature: float, learning_rate: float, teacher=None):
    """A compiled Distiller (Adam with TF1's epsilon, as stage 1)."""
    import keras

    distiller = _keras_classes()[0](student, lambda_value, temperature, teacher=teacher, name="distiller")
    distiller.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8))
    return distiller


@dataclass(frozen=True)
class DistillationOptions:
    """One stage-2 run: the student's training options, its teacher, λ and T."""

    student: TrainingOptions
    teacher: str
    lambda_value: float = 0.5
    temperature: float = 1.0

    def __post_init__(self):
        students, teachers = registry.names("student"), registry.names("teacher")
        if self.student.model not in students:
            raise TrainingError(f"student {self.student.model!r}: distillation trains {' or '.join(students)}")
        if self.teacher not in teachers:
            raise TrainingError(f"teacher {self.teacher!r}: the teachers are {', '.join(teachers)}")
        if not 0.0 <= self.lambda_value <= 1.0:
            raise TrainingError(f"lambda {self.lambda_value} is outside [0, 1]")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise TrainingError(f"temperature {self.temperature} must be positive")

    def fingerprint(self, pipeline_options, training_list, teacher_logits) -> str:
        from avdistill.fetch.download import sha256sum

        base = self.student.fingerprint(pipeline_options, training_list)
        return f"{base}-{self.teacher}-{self.lambda_value!r}-{self.temperature!r}-{sha256sum(teacher_logits)[:16]}"


# --- the stage-2 run --------------------------------------------------------------------


def distill(
    options: DistillationOptions,
    pipeline_options,
    training_list: str | Path,
    validation_list: str | Path,
    roots: dict,
    teacher_logits: str | Path,
    work_dir: str | Path,
    weights_out: str | Path,
    history_out: str | Path,
    test_lists: dict | None = None,
    test_logits_out: str | Path | None = None,
) -> dict:
    """Train the student from labels and the teacher's logits; same outputs as `fit.train`."""
    from avdistill.constants import NUM_ACTIONS
    from avdistill.data.lists import record_paths
    from avdistill.data.pipeline import make_dataset
    from avdistill.train.evaluate import predict_test_lists
    from avdistill.train.fit import build, fit_epochs
    from avdistill.train.session import configure_tensorflow, distribution_strategy

    configure_tensorflow(pipeline_options.seed, options.student.threads)
    with distribution_strategy(options.student.distribute).scope():
        student = build(options.student, pipeline_options)
        distiller = make_distiller(student, options.lambda_value, options.temperature, options.student.learning_rate)
        network = registry.get(options.student.model)
        inputs, modalities = list(network.inputs), list(network.modalities)
        tables = {path: teacher_table(teacher_logits, path, NUM_ACTIONS) for path in (training_list, validation_list)}
        log.info(
            "distilling %s from %s: lambda %s, temperature %s",
            options.student.model,
            options.teacher,
            options.lambda_value,
            options.temperature,
        )

        def epoch_data(list_path, training: bool, epoch: int = 0):
            dataset = make_dataset(
                list_path, roots, inputs, training, pipeline_options, epoch, teacher_logits=tables[list_path]
            )
            return dataset.map(lambda batch: (batch[inputs[0]], (batch["action"], batch["teacher_logits"])))

        state = fit_epochs(
            distiller,
            student,
            fingerprint=options.fingerprint(pipeline_options, training_list, teacher_logits),
            epoch_data=epoch_data,
            epochs=options.student.epochs,
            pipeline_options=pipeline_options,
            lists=(training_list, validation_list),
            paths=record_paths([training_list, validation_list], roots, modalities, pipeline_options.total_length),
            modalities=modalities,
            work_dir=work_dir,
            weights_out=weights_out,
            history_out=history_out,
            checkpoint=options.student.checkpoint,
        )
        if test_logits_out is not None:
            predict_test_lists(
                student, options.student.model, pipeline_options, weights_out, roots, test_lists, test_logits_out
            )
        return state


# --- from the workflow's configuration -------------------------------------------------


def run_distillation(
    student: str,
    teacher: str,
    lambda_value: float,
    temperature: float,
    settings: dict,
    loader: dict,
    seed: int,
    threads: int,
    stats_dir,
    init_file,
    lists,
    roots: dict,
    teacher_logits,
    work_dir,
    weights_out,
    history_out,
    test_lists: dict | None = None,
    test_logits_out=None,
    teacher_declaration: dict | None = None,
) -> dict:
    """The distill job: the student's `models.<student>` settings, its teacher, λ and T.

    teacher_declaration: the teacher's `models.<teacher>` declaration when it is a network
    of the user's (registry.DECLARATION_KEYS), so that this process knows its name.

    lists: training, validation and testing; all are checked, and the teacher's logits
    matched to them, before any training starts. test_lists (name -> list) are predicted
    with the best weights into `test_logits_out`, for the test job to score.
    """
    from avdistill.constants import NUM_ACTIONS
    from avdistill.data.lists import check_lists
    from avdistill.train.options import job_options

    if teacher_declaration:
        registry.register_from_config({teacher: teacher_declaration})
    student_options, pipeline_options = job_options(
        student, settings, loader, seed, threads, stats_dir, init_file=init_file
    )
    options = DistillationOptions(student_options, teacher, float(lambda_value), float(temperature))
    training_list, validation_list, testing_list = lists
    check_lists([*lists, *(test_lists or {}).values()], roots, pipeline_options.total_length)
    teacher_table(teacher_logits, validation_list, NUM_ACTIONS)  # fails now, not after an epoch
    return distill(
        options,
        pipeline_options,
        training_list,
        validation_list,
        roots,
        teacher_logits,
        work_dir,
        weights_out,
        history_out,
        test_lists,
        test_logits_out,
    )
