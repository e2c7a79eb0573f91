"""`avdistill`: the original utilities as subcommands, usable without Snakemake.

avdistill synth OUT_DIR            a synthetic raw dataset in the original layout
avdistill convert MAT SYNC OUT     raw dataset -> GZIP TFRecords (utils/convert_data.py)
avdistill lists TFRECORD_ROOT      split lists (utils/generate_lists.py)
avdistill stats LIST_DIR           spectrogram min/max (utils/compute_stats.py)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from avdistill.constants import MODALITIES
from avdistill.errors import DataError
from avdistill.networks import registry
from avdistill.train.options import LEARNING_RATE_SCHEDULES, TrainingError


def _frame_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 480x640, got {text!r}") from None
    return height, width


def _synth(args) -> None:
    from avdistill.data.synth import SynthOptions, synthesize_dataset

    options = SynthOptions(
        locations=tuple(args.locations),
        subjects=args.subjects,
        actions=tuple(args.actions),
        seconds=args.seconds,
        frame_size=args.frame_size,
        seed=args.seed,
    )
    summary = synthesize_dataset(args.out_dir, options, jobs=args.jobs)
    print(f"wrote {summary['sequences']} sequences ({summary['frames']} frames) to {args.out_dir}")


def _convert(args) -> None:
    from avdistill.data.convert import convert_dataset

    modalities = [MODALITIES[m] for m in args.modalities]
    report = convert_dataset(args.mat_root, args.sync_root, args.out_dir, modalities, args.locations, args.jobs)
    print(
        f"wrote {report.records} records of {report.sequences} sequences to {args.out_dir}: "
        f"{report.records_per_second:.1f} records/s, {report.megabytes_per_second:.1f} MB/s"
    )


def _lists(args) -> None:
    from avdistill.data import lists

    locations = None if args.location is None else [args.location]
    folders = lists.sequence_folders(args.tfrecord_root, locations)
    splits = lists.split_records(folders, args.num_samples, args.split_mode)
    out = args.out
    if out is None:  # the original's folder: <root>/10_seconds[_location_L]/lists
        unit = "seconds" if args.num_samples > 1 else "second"
        suffix = "" if args.location is None else f"_location_{args.location}"
        out = Path(args.tfrecord_root) / f"{args.num_samples}_{unit}{suffix}" / "lists"
    for path in lists.write_lists(splits, out):
        print(f"{path}: {len(splits[path.stem])} records")


def _stats(args) -> None:
    from avdistill.data.pipeline import PipelineOptions
    from avdistill.data.stats import compute_spectrogram_stats, write_stats

    list_path = Path(args.list_dir) / "training.txt"
    options = PipelineOptions(sample_length=5, total_length=args.total_length, batch_size=args.batch_size)
    global_min, global_max = compute_spectrogram_stats(list_path, args.tfrecord_root, options)
    out = Path(args.out) if args.out else Path(args.list_dir) / "stats"
    write_stats(out, global_min, global_max)
    print(f"wrote {out}/global_min.npy and global_max.npy over {list_path}")


def _model_settings(args) -> dict:
    return {
        "learning_rate": args.learning_rate,
        "epochs": getattr(args, "num_epochs", 1),
        "batch_size": args.batch_size,
        "sample_length": args.sample_length,
        "number_of_crops": getattr(args, "number_of_crops", 1),
        "normalize": args.normalize,
        "init": _init(args),
        "trainable": args.trainable,
        "batch_norm_decay": getattr(args, "batch_norm_decay", None),
        "head_init": getattr(args, "head_init", "original"),
        "learning_rate_schedule": getattr(args, "learning_rate_schedule", "constant"),
    }


def _init(args) -> str:
    """The config's `init`: scratch, a weights file, or the kind of pretrained weights."""
    if not getattr(args, "init_checkpoint", None):
        return "scratch"
    return args.init_checkpoint if args.init_from == "checkpoint" else args.init_from


def _roots(args) -> dict:

    return {modality: args.tfrecord_root for modality in registry.get(args.model).modalities}


def _job_options(args):
    from avdistill.train.options import job_options

    loader = {"video_crop_size": args.crop_size}
    init_file = getattr(args, "init_checkpoint", None)
    return job_options(
        args.model, _model_settings(args), loader, args.seed, args.threads, args.stats_dir, init_file=init_file
    )


def _teacher_logits(args) -> None:
    from avdistill.train.teacher_logits import compute_teacher_logits

    args.sample_length = 1  # a teacher sees one record at a time
    options, pipeline_options = _job_options(args)
    logits = compute_teacher_logits(
        options, pipeline_options, args.restore_checkpoint, args.lists, _roots(args), args.out
    )
    print(f"wrote {args.out}: logits of {logits.shape[0]} records, {logits.shape[1]} frames each")


def _distill(args) -> None:
    from avdistill.train.distillation import DistillationOptions, distill

    options, pipeline_options = _job_options(args)
    out = Path(args.out)
    state = distill(
        DistillationOptions(
            options,
            tuple(args.teacher),
            args.lambda_value,
            args.temperature,
            None if args.weights is None else tuple(args.weights),
            args.alpha,
        ),
        pipeline_options,
        args.train_file,
        args.valid_file,
        _roots(args),
        args.teacher_logits,
        work_dir=out / "train_state",
        weights_out=out / "model.weights.npz",
        history_out=out / "history.csv",
    )
    print(
        f"best epoch {state['best_epoch'] + 1}: validation accuracy {state['best_accuracy']:.4f}; "
        f"wrote {out / 'model.weights.npz'}"
    )


def _convert_pretrained(args) -> None:
    from avdistill.fetch.pretrained import convert_resnet, convert_soundnet

    convert = convert_soundnet if args.command == "convert-soundnet" else convert_resnet
    shapes = convert(args.source, args.out)
    print(f"wrote {len(shapes)} arrays to {args.out}")


def _train(args) -> None:
    from avdistill.train.fit import train

    options, pipeline_options = _job_options(args)
    out = Path(args.out)
    state = train(
        options,
        pipeline_options,
        args.train_file,
        args.valid_file,
        _roots(args),
        work_dir=out / "train_state",
        weights_out=out / "model.weights.npz",
        history_out=out / "history.csv",
    )
    print(
        f"best epoch {state['best_epoch'] + 1}: validation accuracy {state['best_accuracy']:.4f}; "
        f"wrote {out / 'model.weights.npz'}"
    )


def _test(args) -> None:
    from avdistill.train.evaluate import evaluate

    options, pipeline_options = _job_options(args)
    out = args.out or str(Path(args.restore_checkpoint).with_name("metrics.json"))
    metrics = evaluate(
        options, pipeline_options, args.restore_checkpoint, args.test_file, _roots(args), out, args.clip_length
    )
    print(
        f"Testing_Loss: {metrics['cross_entropy']:.4f} Testing_Accuracy: {metrics['frame_accuracy']:.4f} "
        f"clip accuracy: {metrics['clip_accuracy']:.4f} ({metrics['clips']} clips); wrote {out}"
    )


def _add_model_options(parser: argparse.ArgumentParser, training: bool, lists: bool = False) -> None:
    """The options main_s1.py shared between its train and test modes."""

    parser.add_argument("--model", required=True, choices=registry.names(), help="network to train or test")
    parser.add_argument(
        "--tfrecord-root", required=True, help="root the lists are relative to (the model's modality records)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="samples per batch (default: 32)")
    parser.add_argument(
        "--learning-rate", type=float, default=1e-4, help="Adam learning rate (default: 1e-4; the teacher used 1e-3)"
    )
    parser.add_argument(
        "--sample-length", type=int, default=5, help="seconds per sample: 1 image models, 5 audio (default: 5)"
    )
    parser.add_argument(
        "--normalize", action="store_true", help="min-max normalise spectrograms (HearNet; needs --stats-dir)"
    )
    parser.add_argument("--stats-dir", help="folder with global_min.npy and global_max.npy (avdistill stats)")
    parser.add_argument("--crop-size", type=int, default=224, help="video crop side for the ResNet-50s (default: 224)")
    parser.add_argument(
        "--trainable",
        choices=["original", "all"],
        default="original",
        help="original: the variables the original trained (ResNet-50: logits only); all: everything",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of crops, shuffles and initial weights (default: 0)")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (default: all)")
    if training:
        parser.add_argument("--train-file", required=True, help="training list")
        parser.add_argument("--valid-file", required=True, help="validation list, evaluated after every epoch")
        parser.add_argument("--num-epochs", type=int, default=10, help="epochs (default: 10)")
        parser.add_argument(
            "--batch-norm-decay",
            type=float,
            help="decay of every batch norm's moving averages (default: the original's 0.997/0.999)",
        )
        parser.add_argument(
            "--head-init",
            choices=registry.HEAD_INITS,
            default="original",
            help="initialiser of the shared head's fc1/fc2: original (truncated normal 0.01, default) or "
            "glorot_uniform (that of the networks' other convolutions)",
        )
        parser.add_argument(
            "--learning-rate-schedule",
            choices=LEARNING_RATE_SCHEDULES,
            default="constant",
            help="constant: --learning-rate throughout (default, the original); cosine: decayed to zero over the run",
        )
        parser.add_argument(
            "--number-of-crops", type=int, default=20, help="training windows per 10-s block per epoch (default: 20)"
        )
        parser.add_argument(
            "--init-checkpoint",
            help="a .weights.npz to start from: a checkpoint of this model (all but its fresh head, as the "
            "original) or converted pretrained weights (see --init-from)",
        )
        parser.add_argument(
            "--init-from",
            choices=["checkpoint", "soundnet", "imagenet"],
            default="checkpoint",
            help="what --init-checkpoint holds: checkpoint (default); soundnet: `avdistill convert-soundnet` "
            "output (SoundNet5 conv1-conv4); imagenet: `avdistill convert-resnet` output (the ResNet-50s)",
        )
        parser.add_argument(
            "--out",
            required=True,
            help="folder for model.weights.npz, history.csv and train_state/ (rerun to resume an interrupted run)",
        )
    elif lists:
        parser.add_argument("--lists", nargs="+", required=True, help="lists whose records the teacher scores")
        parser.add_argument("--restore-checkpoint", required=True, help="the trained teacher (model.weights.npz)")
        parser.add_argument("--out", required=True, help="the .npz to write")
    else:
        parser.add_argument("--test-file", required=True, help="list to test on")
        parser.add_argument("--restore-checkpoint", required=True, help="trained weights (model.weights.npz)")
        parser.add_argument(
            "--clip-length", type=int, default=5, help="seconds per clip for clip accuracy (default: 5)"
        )
        parser.add_argument("--out", help="metrics JSON to write (default: metrics.json beside the weights)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avdistill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a synthetic DualCam dataset in the original raw layout")
    synth.add_argument("out_dir", help="dataset folder to create (gets matfiles/ and sync/); replaced if it exists")
    synth.add_argument(
        "--locations",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        choices=[1, 2, 3],
        help="locations to simulate (default: 1 2 3)",
    )
    synth.add_argument("--subjects", type=int, default=2, help="subjects per location, 1..9 (default: 2)")
    synth.add_argument(
        "--actions",
        type=int,
        nargs="+",
        default=list(range(14)),
        metavar="A",
        help="raw 0-based actions to simulate (default: all 14)",
    )
    synth.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="length of each sequence; under 30 exercises the wrap-around (default: 30)",
    )
    synth.add_argument(
        "--frame-size",
        type=_frame_size,
        default=(96, 128),
        metavar="HxW",
        help="video frame size (default: 96x128; the real camera is 480x640)",
    )
    synth.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same files (default: 0)"
    )
    synth.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    synth.set_defaults(func=_synth)

    convert = commands.add_parser("convert", help="convert the raw dataset to GZIP TFRecords, one per second")
    convert.add_argument("mat_root", help="the dataset's matfiles/ folder")
    convert.add_argument("sync_root", help="the dataset's sync/ folder")
    convert.add_argument(
        "out_dir", help="TFRecord root to write Location_LL/Subject_SS/Action_AAA/Data_NNN.tfrecord under"
    )
    convert.add_argument(
        "--modalities",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        choices=[0, 1, 2],
        help="0 acoustic images, 1 raw audio, 2 video; several go into the same files (default: 0 1 2)",
    )
    convert.add_argument(
        "--locations", type=int, nargs="+", choices=[1, 2, 3], help="convert only these locations (default: all)"
    )
    convert.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    convert.set_defaults(func=_convert)

    make_lists = commands.add_parser("lists", help="split the records into training/validation/testing lists")
    make_lists.add_argument("tfrecord_root", help="TFRecord root (any modality: listing never opens a record)")
    make_lists.add_argument("--num-samples", type=int, default=10, help="records per contiguous chunk (default: 10)")
    make_lists.add_argument(
        "--split-mode",
        type=int,
        default=0,
        choices=[0, 1, 2],
        help="0 train/val/test, 1 train/val, 2 all in dataset.txt (default: 0)",
    )
    make_lists.add_argument("--location", type=int, choices=[1, 2, 3], help="only this location (default: all)")
    make_lists.add_argument(
        "--out", help="folder for the lists (default: the original's ROOT/10_seconds[_location_L]/lists)"
    )
    make_lists.set_defaults(func=_lists)

    stats = commands.add_parser("stats", help="per-bin min/max of the HearNet spectrograms of LIST_DIR/training.txt")
    stats.add_argument("list_dir", help="folder holding training.txt")
    stats.add_argument("--tfrecord-root", help="root of the audio records the list names (needed for relative lists)")
    stats.add_argument("--out", help="folder for global_min.npy and global_max.npy (default: LIST_DIR/stats)")
    stats.add_argument("--total-length", type=int, default=10, help="records per block in the list (default: 10)")
    stats.add_argument("--batch-size", type=int, default=64, help="samples per batch (default: 64)")
    stats.set_defaults(func=_stats)

    train = commands.add_parser("train", help="train a network from labels (the original main_s1.py --mode train)")
    _add_model_options(train, training=True)
    train.set_defaults(func=_train)

    distill = commands.add_parser(
        "distill", help="train an audio student from labels and a teacher's logits (the original main_s2.py)"
    )
    _add_model_options(distill, training=True)
    distill.add_argument(
        "--teacher", required=True, nargs="+", choices=registry.names("teacher"), help="one teacher, or an ensemble"
    )
    distill.add_argument(
        "--teacher-logits", required=True, nargs="+", help="each teacher's logits (avdistill teacher-logits), in order"
    )
    distill.add_argument("--weights", type=float, nargs="+", help="an ensemble's teacher weights (default: equal)")
    distill.add_argument(
        "--alpha", type=float, default=0.0, help="weight of the feature term (default: 0, logits only, as the original)"
    )
    distill.add_argument(
        "--lambda", dest="lambda_value", type=float, default=0.5, help="weight of the teacher term (default: 0.5)"
    )
    distill.add_argument("--temperature", type=float, default=1.0, help="teacher softmax temperature (default: 1)")
    distill.set_defaults(func=_distill)

    teacher = commands.add_parser(
        "teacher-logits", help="a trained teacher's per-frame logits of every record of some lists (for distill)"
    )
    _add_model_options(teacher, training=False, lists=True)
    teacher.set_defaults(func=_teacher_logits)

    for name, source, what in (
        ("convert-soundnet", "soundnet_models_public.zip or soundnet5_final.t7", "SoundNet5's conv1-conv4"),
        ("convert-resnet", "resnet_v1_50_2016_08_28.tar.gz or resnet_v1_50.ckpt", "ResNet-50 without logits"),
    ):
        pretrained = commands.add_parser(name, help=f"convert {what} to a .npz for --init-from")
        pretrained.add_argument("source", help=source)
        pretrained.add_argument("out", help="the .npz to write")
        pretrained.set_defaults(func=_convert_pretrained)

    test = commands.add_parser("test", help="test trained weights on a list (the original main_s1.py --mode test)")
    _add_model_options(test, training=False)
    test.set_defaults(func=_test)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    try:
        args.func(args)
    except (DataError, ValueError, TrainingError) as error:
        print(f"avdistill {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
