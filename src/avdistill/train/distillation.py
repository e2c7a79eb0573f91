"""Stage 2: audio students distilled from frozen teachers (the original `main_s2.py`, §6.3).

loss = (1 - λ) · CE(labels, student) + λ · CE(soft target, student) + α · feature term + student L2

as the original: the student's logits are not divided by T and there is no T² factor; the
teacher's logits are averaged over the 12·L frames of the student's L-second sample. The
soft target is softmax(teacher / T), or for an ensemble of teachers (stage2.ensembles) the
weighted mean Σ_k w_k softmax(teacher_k / T) of their softened distributions (weights
normalised to sum 1), each from its cached logits.

The feature term is the original's unused "hallucination loss" weight (`alpha_value`),
made to work: Σ_k w_k · mean over the batch of ||P_k(f_student) − f_teacher_k||², where f
are the networks' penultimate features (the input of the layer their registry entry names,
`feature_layer`, averaged over the sample's frames; `networks.build.with_features`) and P_k
a learnt linear projection (no bias) from the student's to teacher k's feature size,
trained with the student and discarded after training. With α = 0 (the default, the
original's) the step is the logits-only step, bit for bit.

Why our own `Distiller` and not `keras.distillation.Distiller` (Keras 3.12+): Keras' runs
the teacher in every training step, and its `LogitsDistillation` divides both logits by T
and scales by T² (Hinton et al.), which is not the original's loss. Ours reads the
teachers' cached logits and features from the batch (below), so a teacher costs one pass
over the data instead of one per epoch, student, λ and T. Both terms are
`keras.distillation.DistillationLoss`es (`OriginalLogitsDistillation`,
`ProjectedFeatureDistillation`), the interface Keras gives distillation losses. Keras'
`FeatureDistillation` is the reference for the feature term; it is not used because it
compares the two networks' features as they are (same size, mean squared error per
element), where a student and teacher of different sizes need the learnt projection.

A frozen teacher sees each 1-second record the same way whichever sample the record falls
in, so its logits and features are computed once per record
(`avdistill.train.teacher_logits`, by the teacher's own training job, and reused by every
student, λ, T and ensemble) and averaged over each sample's records by the input pipeline.
`Distiller` also accepts the teacher itself, run inside the step, which is how the tests
show both give the same loss.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from avdistill.networks import registry
from avdistill.train.options import TrainingError, TrainingOptions
from avdistill.train.teacher_logits import teacher_features_table, teacher_table

log = logging.getLogger(__name__)


def normalised_weights(teachers: tuple[str, ...], weights: tuple[float, ...] | None) -> tuple[float, ...]:
    """Each teacher's share of the soft target: `weights` over their sum (equal if None)."""
    weights = (1.0,) * len(teachers) if weights is None else tuple(float(w) for w in weights)
    if len(weights) != len(teachers):
        raise TrainingError(f"{len(weights)} weights for the {len(teachers)} teachers {', '.join(teachers)}")
    if not all(w > 0 and math.isfinite(w) for w in weights):
        raise TrainingError(f"teacher weights {list(weights)} must be positive")
    return tuple(w / sum(weights) for w in weights)


def _keras_classes():
    import keras
    import tensorflow as tf

    class OriginalLogitsDistillation(keras.distillation.DistillationLoss):
        """The original's soft term: batch mean of CE(soft target, student logits).

        Teacher outputs [B, 14]: the soft target is softmax(teacher / T). [B, K, 14] (an
        ensemble): Σ_k w_k softmax(teacher_k / T). Unlike `keras.distillation.LogitsDistillation`,
        the student's logits are not divided by T and there is no T² factor (main_s2.py)."""

        def __init__(self, temperature: float, weights: tuple[float, ...] = (1.0,)):
            self.temperature = float(temperature)
            self.weights = tuple(float(w) for w in weights)

        def soft_targets(self, teacher_outputs):
            softened = tf.nn.softmax(teacher_outputs / self.temperature)
            if len(teacher_outputs.shape) == 2:
                return softened
            return tf.reduce_sum(softened * tf.constant(self.weights, tf.float32)[None, :, None], axis=1)

        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            soft_targets = self.soft_targets(teacher_outputs)
            return tf.reduce_mean(
                keras.losses.categorical_crossentropy(soft_targets, student_outputs, from_logits=True)
            )

    class FeatureProjection(keras.layers.Layer):
        """P_k: the student's features [B, D_s] -> one [B, D_k] per teacher, linear, no bias."""

        def __init__(self, student_size: int, teacher_sizes: tuple[int, ...], **kwargs):
            super().__init__(**kwargs)
            self.projections = [
                keras.layers.Dense(size, use_bias=False, name=f"to_teacher_{k}") for k, size in enumerate(teacher_sizes)
            ]
            for projection in self.projections:
                projection.build((None, student_size))

        def call(self, student_features):
            return [projection(student_features) for projection in self.projections]

    class ProjectedFeatureDistillation(keras.distillation.DistillationLoss):
        """Σ_k w_k · batch mean of ||P_k(f_student) − f_teacher_k||² (sum over the features)."""

        def __init__(self, teacher_sizes: tuple[int, ...], weights: tuple[float, ...]):
            self.teacher_sizes = tuple(int(size) for size in teacher_sizes)
            self.weights = tuple(float(w) for w in weights)

        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            """teacher_outputs: [B, Σ D_k], the teachers' features side by side;
            student_outputs: the projected student features, one [B, D_k] per teacher."""
            targets = tf.split(teacher_outputs, list(self.teacher_sizes), axis=-1)
            terms = [
                w * tf.reduce_mean(tf.reduce_sum(tf.square(projected - target), axis=-1))
                for w, projected, target in zip(self.weights, student_outputs, targets, strict=True)
            ]
            return tf.add_n(terms)

    class Distiller(keras.Model):
        """A student trained from labels and frozen teachers' soft predictions (§6.3).

        Batches are (student inputs, (one-hot labels, teacher logits)), the logits [B, 14]
        of one teacher or [B, K, 14] of an ensemble, and with α > 0 (labels, logits,
        teacher features [B, Σ D_k]); with `teacher` given, ({"student": ..., "teacher": ...},
        labels) and the teacher runs in inference mode inside the step. Only the student's
        variables (and the projections, with α > 0) are trained.
        """

        def __init__(
            self,
            student,
            lambda_value: float,
            temperature: float,
            teacher=None,
            teacher_weights: tuple[float, ...] = (1.0,),
            alpha: float = 0.0,
            student_with_features=None,
            teacher_feature_sizes: tuple[int, ...] = (),
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.student = student
            self.teacher = teacher
            self.lambda_value = float(lambda_value)
            self.temperature = float(temperature)
            self.alpha = float(alpha)
            self.soft_loss = OriginalLogitsDistillation(temperature, teacher_weights)
            if self.alpha:
                if student_with_features is None or len(teacher_feature_sizes) != len(teacher_weights):
                    raise TrainingError("alpha > 0 needs the student's features and each teacher's feature size")
                self.student_with_features = student_with_features
                self.projection = FeatureProjection(
                    int(student_with_features.outputs[1].shape[-1]), tuple(teacher_feature_sizes), name="projection"
                )
                self.feature_loss = ProjectedFeatureDistillation(teacher_feature_sizes, teacher_weights)
            else:
                self.projection = None
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")

        @property
        def metrics(self):
            return [self.loss_tracker, self.accuracy]

        @property
        def trained_variables(self):
            """The student's trainable variables, then the projections' (α > 0)."""
            extra = self.projection.trainable_variables if self.projection is not None else []
            return [*self.student.trainable_variables, *extra]

        def call(self, inputs, training=False):
            return self.student(inputs, training=training)

        def distillation_loss(self, labels, teacher_logits, student_logits):
            """Batch mean of (1-λ)·CE(labels, student) + λ·CE(soft target, student)."""
            hard = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, student_logits, from_logits=True))
            soft = self.soft_loss.compute_loss(teacher_logits, student_logits)
            return (1.0 - self.lambda_value) * hard + self.lambda_value * soft

        def _unpack(self, data):
            x, y = data
            if self.teacher is None:
                labels, teacher_logits, *features = y
                return x, labels, teacher_logits, (features[0] if features else None)
            teacher_logits = self.teacher(x["teacher"], training=False)
            if len(teacher_logits.shape) == 3:  # per frame: the mean over the sample's 12·L frames
                teacher_logits = tf.reduce_mean(teacher_logits, axis=1)
            return x["student"], y, tf.stop_gradient(teacher_logits), None

        def _loss(self, x, labels, teacher_logits, teacher_features, training: bool):
            if self.alpha:
                student_logits, student_features = self.student_with_features(x, training=training)
            else:  # the logits-only step, exactly as without feature distillation
                student_logits = self.student(x, training=training)
            loss = self.distillation_loss(labels, teacher_logits, student_logits)
            if self.alpha:
                projected = self.projection(student_features)
                loss = loss + self.alpha * self.feature_loss.compute_loss(teacher_features, projected)
            if self.student.losses:  # the student's L2 terms, as the original's total loss
                loss = loss + tf.add_n(self.student.losses)
            return loss, student_logits

        def train_step(self, data):
            x, labels, teacher_logits, teacher_features = self._unpack(data)
            with tf.GradientTape() as tape:
                loss, student_logits = self._loss(x, labels, teacher_logits, teacher_features, training=True)
                # Under MirroredStrategy each replica's gradients are summed: scale its
                # batch-mean loss by 1/replicas, as Keras' own train_step does.
                scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync
            variables = self.trained_variables
            self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables, strict=True))
            return self._update_metrics(loss, labels, student_logits)

        def test_step(self, data):
            x, labels, teacher_logits, teacher_features = self._unpack(data)
            loss, student_logits = self._loss(x, labels, teacher_logits, teacher_features, training=False)
            return self._update_metrics(loss, labels, student_logits)

        def _update_metrics(self, loss, labels, student_logits):
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(labels, student_logits)
            return {metric.name: metric.result() for metric in self.metrics}

    return Distiller, OriginalLogitsDistillation


def make_distiller(student, lambda_value: float, temperature: float, learning_rate: float, teacher=None, **features):
    """A compiled Distiller (Adam with TF1's epsilon, as stage 1). `features`: the
    Distiller's teacher_weights, alpha, student_with_features and teacher_feature_sizes."""
    import keras

    distiller = _keras_classes()[0](student, lambda_value, temperature, teacher=teacher, name="distiller", **features)
    distiller.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8))
    return distiller


@dataclass(frozen=True)
class DistillationOptions:
    """One stage-2 run: the student's training options, its teacher(s) and their weights, λ, T, α."""

    student: TrainingOptions
    teachers: tuple[str, ...] | str
    lambda_value: float = 0.5
    temperature: float = 1.0
    weights: tuple[float, ...] | None = None  # an ensemble's; None: equal
    alpha: float = 0.0

    def __post_init__(self):
        teachers = (self.teachers,) if isinstance(self.teachers, str) else tuple(self.teachers)
        object.__setattr__(self, "teachers", teachers)
        students, teachers = registry.names("student"), registry.names("teacher")
        if self.student.model not in students:
            raise TrainingError(f"student {self.student.model!r}: distillation trains {' or '.join(students)}")
        if not self.teachers:
            raise TrainingError("distillation needs at least one teacher")
        for teacher in self.teachers:
            if teacher not in teachers:
                raise TrainingError(f"teacher {teacher!r}: the teachers are {', '.join(teachers)}")
        if len(set(self.teachers)) != len(self.teachers):
            raise TrainingError(f"teachers {list(self.teachers)} name a teacher twice")
        normalised_weights(self.teachers, self.weights)
        if not 0.0 <= self.lambda_value <= 1.0:
            raise TrainingError(f"lambda {self.lambda_value} is outside [0, 1]")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise TrainingError(f"temperature {self.temperature} must be positive")
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise TrainingError(f"alpha {self.alpha} must be zero or positive")

    @property
    def teacher(self) -> str:
        """The run's teacher as its folder names it (`from_<teacher>`): see registry.teacher_set_name."""
        return registry.teacher_set_name(self.teachers, self.weights)

    @property
    def teacher_weights(self) -> tuple[float, ...]:
        return normalised_weights(self.teachers, self.weights)

    def fingerprint(self, pipeline_options, training_list, teacher_logits) -> str:
        from avdistill.fetch.download import sha256sum

        base = self.student.fingerprint(pipeline_options, training_list)
        files = "-".join(sha256sum(path)[:16] for path in teacher_logits)
        return f"{base}-{self.teacher}-{self.lambda_value!r}-{self.temperature!r}-{self.alpha!r}-{files}"


# --- the stage-2 run --------------------------------------------------------------------


def _teacher_inputs(options: DistillationOptions, teacher_logits: list, list_path) -> tuple[dict, tuple[int, ...]]:
    """The cached teacher rows of a list's records, for `make_dataset`: their logits ([records,
    14] for one teacher, [records, K, 14] for K) and, with α > 0, their features side by
    side; and each teacher's number of features (none with α = 0)."""
    import numpy as np

    from avdistill.constants import NUM_ACTIONS

    logits = [teacher_table(path, list_path, NUM_ACTIONS) for path in teacher_logits]
    inputs = {"teacher_logits": logits[0] if len(logits) == 1 else np.stack(logits, axis=1)}
    if not options.alpha:
        return inputs, ()
    features = [teacher_features_table(path, list_path) for path in teacher_logits]
    inputs["teacher_features"] = np.concatenate(features, axis=1)
    return inputs, tuple(f.shape[1] for f in features)


def distill(
    options: DistillationOptions,
    pipeline_options,
    training_list: str | Path,
    validation_list: str | Path,
    roots: dict,
    teacher_logits,
    work_dir: str | Path,
    weights_out: str | Path,
    history_out: str | Path,
    test_lists: dict | None = None,
    test_logits_out: str | Path | None = None,
) -> dict:
    """Train the student from labels and the teachers' cached logits (one file per teacher,
    in `options.teachers` order; a single path for one teacher); same outputs as `fit.train`."""
    from avdistill.data.lists import record_paths
    from avdistill.data.pipeline import make_dataset
    from avdistill.networks.build import with_features
    from avdistill.train.evaluate import predict_test_lists
    from avdistill.train.fit import build, fit_epochs
    from avdistill.train.session import configure_tensorflow, distribution_strategy

    teacher_logits = [teacher_logits] if isinstance(teacher_logits, (str, Path)) else list(teacher_logits)
    if len(teacher_logits) != len(options.teachers):
        raise TrainingError(
            f"{len(teacher_logits)} teacher logits files for the teachers {', '.join(options.teachers)}"
        )
    # Read before TensorFlow starts: a teacher file that does not fit fails the job at once.
    training_rows, _ = _teacher_inputs(options, teacher_logits, training_list)
    validation_rows, feature_sizes = _teacher_inputs(options, teacher_logits, validation_list)
    tables = {training_list: training_rows, validation_list: validation_rows}
    configure_tensorflow(pipeline_options.seed, options.student.threads)
    with distribution_strategy(options.student.distribute).scope():
        student = build(options.student, pipeline_options)
        features = {}
        if options.alpha:
            features = {
                "alpha": options.alpha,
                "student_with_features": with_features(student, options.student.model),
                "teacher_feature_sizes": feature_sizes,
            }
        distiller = make_distiller(
            student,
            options.lambda_value,
            options.temperature,
            options.student.learning_rate,
            teacher_weights=options.teacher_weights,
            **features,
        )
        network = registry.get(options.student.model)
        inputs, modalities = list(network.inputs), list(network.modalities)
        log.info(
            "distilling %s from %s (weights %s): lambda %s, temperature %s, alpha %s",
            options.student.model,
            " + ".join(options.teachers),
            ", ".join(f"{w:.3g}" for w in options.teacher_weights),
            options.lambda_value,
            options.temperature,
            options.alpha,
        )

        def epoch_data(list_path, training: bool, epoch: int = 0):
            dataset = make_dataset(list_path, roots, inputs, training, pipeline_options, epoch, **tables[list_path])
            targets = (
                ("action", "teacher_logits", "teacher_features") if options.alpha else ("action", "teacher_logits")
            )
            return dataset.map(lambda batch: (batch[inputs[0]], tuple(batch[key] for key in targets)))

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
            trained_with=distiller.projection,
            validation=options.student.validation,
            learning_rate_schedule=options.student.learning_rate_schedule,
        )
        if test_logits_out is not None:
            predict_test_lists(
                student, options.student.model, pipeline_options, weights_out, roots, test_lists, test_logits_out
            )
        return state


# --- from the workflow's configuration -------------------------------------------------


def run_distillation(
    student: str,
    teachers: list[str],
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
    teacher_logits: list,
    work_dir,
    weights_out,
    history_out,
    test_lists: dict | None = None,
    test_logits_out=None,
    teacher_weights: list[float] | None = None,
    alpha: float = 0.0,
    teacher_declarations: dict | None = None,
) -> dict:
    """The distill job: the student's `models.<student>` settings, its teacher(s) with
    their logits files (in the same order) and weights, λ, T and α.

    teacher_declarations: teacher -> its `models.<teacher>` declaration, for the teachers
    that are networks of the user's (registry.DECLARATION_KEYS), so that this process knows them.

    lists: training, validation and testing; all are checked, and the teachers' logits
    matched to them, before any training starts. test_lists (name -> list) are predicted
    with the best weights into `test_logits_out`, for the test job to score.
    """
    from avdistill.data.lists import check_lists
    from avdistill.train.options import job_options

    registry.register_from_config(teacher_declarations or {})
    student_options, pipeline_options = job_options(
        student, settings, loader, seed, threads, stats_dir, init_file=init_file
    )
    options = DistillationOptions(
        student_options,
        tuple(teachers),
        float(lambda_value),
        float(temperature),
        None if teacher_weights is None else tuple(teacher_weights),
        float(alpha),
    )
    training_list, validation_list, testing_list = lists
    check_lists([*lists, *(test_lists or {}).values()], roots, pipeline_options.total_length)
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
