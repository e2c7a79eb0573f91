"""The settings of one training job: `TrainingOptions` (the original's flags) and
`job_options`, which makes them and the pipeline's from the workflow's config entries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from avdistill.networks import registry


def init_variables(model: str, init_from: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(include, exclude) of the variables `model` takes from an init file of kind `init_from`:
    one of its own checkpoints (all but its fresh head, §3.7) or public pretrained weights."""
    network = registry.get(model)
    if init_from == "checkpoint":
        return None, network.fresh_head
    if init_from not in registry.PRETRAINED_FILES:
        known = ", ".join(registry.PRETRAINED_FILES)
        raise TrainingError(f"unknown init {init_from!r}: use scratch, {known} or a weights file")
    try:
        pretrained = network.pretrained_init(init_from)
    except registry.RegistryError as error:
        raise TrainingError(str(error)) from None
    return pretrained.include, pretrained.exclude


CHECKPOINTS = ("best", "last")
# constant: Adam's rate throughout (the original). cosine: decayed from it to zero over the
# run's steps, so the kept last epoch ends where the steps have become small instead of
# wherever the last full-rate steps left the weights.
LEARNING_RATE_SCHEDULES = ("constant", "cosine")
VALIDATIONS = ("every_epoch", "last_epoch", "never")


def check_checkpoint(checkpoint: str, validation: str) -> None:
    """Which weights a run keeps and when it validates must fit: `best` compares every epoch.
    The trainer checks it, and so does the workflow at config load (no TensorFlow here)."""
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {VALIDATIONS}, got {validation!r}")
    if validation != "every_epoch" and checkpoint != "last":
        raise ValueError(
            f"validation: {validation} needs checkpoint: last (checkpoint: {checkpoint} compares every epoch: "
            "set validation: every_epoch with it)"
        )


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, an unusable setting); the message says why."""


@dataclass(frozen=True)
class TrainingOptions:
    """Optimisation settings of one stage-1 job (the original's flags)."""

    model: str
    learning_rate: float = 1e-4
    epochs: int = 100
    init: str | None = None  # None: from scratch; else a .weights.npz (the original's init_checkpoint)
    init_from: str = "checkpoint"  # what `init` is: a checkpoint of this model, or a key of registry.PRETRAINED_FILES
    trainable: str = "original"  # "all" trains the variables the original kept frozen
    batch_norm_decay: float | None = None  # None: the original's decay of each batch norm
    head_init: str = "original"  # shared_net's fc1/fc2 initialiser (networks.registry.HEAD_INITS)
    distribute: str = "none"  # "mirrored": tf.distribute.MirroredStrategy over the job's GPUs
    threads: int = 0  # intra-op threads; 0: TensorFlow's default
    # The weights a run keeps: "best" validation accuracy (the original) or the "last" epoch's.
    checkpoint: str = "best"
    # When the validation list is scored: after "every_epoch" (the original), only after the
    # "last_epoch", or "never" (checkpoint: last has no use for the scores, and each costs a
    # forward pass over the whole list: a third of a DualCamNet epoch).
    validation: str = "every_epoch"
    learning_rate_schedule: str = "constant"  # one of LEARNING_RATE_SCHEDULES

    def __post_init__(self):
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise TrainingError(
                f"learning_rate_schedule must be one of {LEARNING_RATE_SCHEDULES}, got {self.learning_rate_schedule!r}"
            )

    def fingerprint(self, pipeline_options, training_list: str | Path) -> str:
        """What decides the result of a run: a saved state resumes only under the same one."""
        settings = {**asdict(self), "pipeline": repr(pipeline_options), "list": Path(training_list).read_text()}
        settings.pop("threads")
        # Under constant, more epochs continue a finished run rather than restart it, and runs
        # made before the key keep their fingerprint; a cosine schedule spans the run's epochs,
        # so another number is another schedule.
        if self.learning_rate_schedule == "constant":
            del settings["epochs"], settings["learning_rate_schedule"]
        if self.head_init == "original":  # runs made before the key keep their fingerprint
            del settings["head_init"]
        settings.pop("checkpoint")  # which epoch is kept: the same training either way
        settings.pop("validation")  # validating changes no weight
        network = registry.get(self.model)
        if not network.module.startswith("avdistill."):  # a user's network: its code decides too
            settings["network"] = [network.builder, network.source_digest()]
        if self.init:  # other weights under the same name must not resume the old run
            from avdistill.fetch.download import sha256sum

            settings["init_sha256"] = sha256sum(self.init)
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def job_options(
    model: str,
    settings: dict,
    loader: dict,
    seed: int,
    threads: int = 0,
    stats_dir: str | Path | None = None,
    init_file: str | Path | None = None,
):
    """(TrainingOptions, PipelineOptions) of a stage-1 job from its config entries.

    settings: `models.<model>` of the config (learning_rate, epochs, batch_size,
    sample_length, number_of_crops, normalize, init, trainable); loader: `loader`.
    `init` is scratch, a weights file, or the name of pretrained weights (soundnet,
    imagenet) whose converted file the workflow passes as `init_file`.
    """
    from avdistill.data.pipeline import PipelineOptions, load_stats

    registry.register_from_config({model: settings})  # a network of the user's, declared in its settings
    normalize = bool(settings.get("normalize", False))
    init = settings.get("init", "scratch")
    init_from = init if init in registry.PRETRAINED_FILES else "checkpoint"
    if init_from != "checkpoint":
        init_variables(model, init_from)  # the model must be one that these weights fit
        if not init_file:
            raise TrainingError(f"init {init!r} needs the converted weights file (resources/pretrained/)")
        init = str(init_file)
    options = TrainingOptions(
        model=model,
        learning_rate=float(settings["learning_rate"]),
        epochs=int(settings["epochs"]),
        init=None if init == "scratch" else init,
        init_from=init_from,
        trainable=settings.get("trainable", "original"),
        batch_norm_decay=settings.get("batch_norm_decay"),
        head_init=settings.get("head_init", "original"),
        distribute=settings.get("distribute", "none"),
        threads=threads,
        checkpoint=settings.get("checkpoint", "best"),
        validation=settings.get("validation", "every_epoch"),
        learning_rate_schedule=settings.get("learning_rate_schedule", "constant"),
    )
    pipeline_options = PipelineOptions(
        sample_length=int(settings["sample_length"]),
        number_of_crops=int(settings["number_of_crops"]),
        batch_size=int(settings["batch_size"]),
        seed=int(seed),
        normalize=normalize,
        stats=tuple(load_stats(stats_dir)) if normalize else None,
        resampler=loader.get("resampler", "fft"),
        video_channel_order=loader.get("video_channel_order", "bgr"),
        video_resize=loader.get("video_resize", "legacy"),
        video_crop_size=int(loader.get("video_crop_size", 224)),
    )
    return options, pipeline_options
