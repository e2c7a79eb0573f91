import re
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../workflow/schemas/config.schema.yaml")

LOCATIONS = (
    config["dataset"]["synthetic"]["locations"]
    if config["dataset"]["source"] == "synthetic"
    else [1, 2, 3]
)
MODALITIES = config["tfrecords"]["modalities"]
SPLITS = config["splits"]["names"]
STAGE1_MODELS = config["stage1"]["models"]
STAGE1_SPLITS = config["stage1"]["splits"]
if not set(STAGE1_SPLITS) <= set(SPLITS):
    raise ValueError(
        f"stage1.splits {STAGE1_SPLITS} must be among splits.names {SPLITS}"
    )
# The modality each network reads, and the loader keys that change its inputs.
MODEL_MODALITY = {
    "dualcamnet": "acoustic",
    "hearnet": "audio",
    "soundnet5": "audio",
    "resnet50": "video",
    "temporal_resnet50": "video",
}
LOADER_KEYS = {
    "acoustic": [],
    "audio": ["resampler"],
    "video": ["video_channel_order", "video_resize", "video_crop_size"],
}

# What each fetched file under resources/downloads/ is, and its config entry (url, sha256).
DOWNLOADS = {
    "dataset_archive": config["dataset"],
    "soundnet_models_public.zip": config["pretrained"]["soundnet"],
    "resnet_v1_50_2016_08_28.tar.gz": config["pretrained"]["resnet"],
}
# init names that mean public pretrained weights: their converted file and the models they fit.
PRETRAINED_INIT = {
    "soundnet": ("resources/pretrained/soundnet5.npz", ["soundnet5"]),
    "imagenet": (
        "resources/pretrained/resnet_v1_50.weights.npz",
        ["resnet50", "temporal_resnet50"],
    ),
}
for _model in STAGE1_MODELS:
    _init = config["models"][_model].get("init", "scratch")
    if _init in PRETRAINED_INIT and _model not in PRETRAINED_INIT[_init][1]:
        raise ValueError(
            f"models.{_model}.init: {_init!r} weights fit only "
            f"{', '.join(PRETRAINED_INIT[_init][1])}"
        )


wildcard_constraints:
    modality="acoustic|audio|video",
    location=r"\d\d",
    location_number=r"[1-3]",
    split=r"location_[1-3]|all",
    model="|".join(MODEL_MODALITY),
    download="|".join(re.escape(name) for name in DOWNLOADS),


def split_locations(split):
    """Locations (1-based) whose records a split draws from."""
    if split == "all":
        return list(LOCATIONS)
    number = int(split.split("_")[1])
    if number not in LOCATIONS:
        raise ValueError(
            f"split {split!r} needs location {number}, but the dataset has only "
            f"locations {LOCATIONS} (config dataset.synthetic.locations)"
        )
    return [number]


def raw_dataset_dir():
    """Folder with matfiles/ and sync/: made by the workflow, or the user's own (local)."""
    if config["dataset"]["source"] == "local":
        return config["dataset"]["path"]
    return "resources/dataset"


def dataset_archive():
    """The archive to extract: downloaded from dataset.url, or the user's dataset.archive."""
    if config["dataset"]["source"] == "archive":
        return config["dataset"]["archive"]
    return "resources/downloads/dataset_archive"


def download_setting(key):
    """A download's url or sha256 from its config entry (see DOWNLOADS)."""

    def setting(wildcards):
        return DOWNLOADS[wildcards.download].get(key)

    return setting


def model_init_file(wildcards):
    """The weights a model starts from: [] from scratch, else a converted or given file."""
    init = config["models"][wildcards.model].get("init", "scratch")
    if init == "scratch":
        return []
    return [PRETRAINED_INIT[init][0] if init in PRETRAINED_INIT else init]


def model_init_path(wildcards):
    """model_init_file as one path, or None from scratch (a param of the glue script)."""
    return next(iter(model_init_file(wildcards)), None)


def record_dirs(modalities, locations):
    return [
        f"results/tfrecords/{m}/Location_{loc:02d}"
        for m in modalities
        for loc in locations
    ]


def split_record_dirs(wildcards):
    """Every modality's records of a split: the lists must agree across modalities."""
    return record_dirs(MODALITIES, split_locations(wildcards.split))


def location_record_dirs(wildcards):
    return record_dirs(MODALITIES, [int(wildcards.location_number)])


def audio_record_dirs(wildcards):
    return record_dirs(["audio"], split_locations(wildcards.split))


def data_targets():
    """Everything the data stage makes: lists, per-location dataset lists, statistics."""
    targets = expand(
        "results/lists/{split}/{name}.txt",
        split=SPLITS,
        name=["training", "validation", "testing"],
    )
    targets += expand("results/lists/location_{n}/dataset.txt", n=LOCATIONS)
    if "audio" in MODALITIES:
        targets += expand("results/stats/{split}/global_min.npy", split=SPLITS)
    return targets


def model_settings(wildcards):
    """A model's training settings (not its resources: editing those reruns nothing)."""
    settings = dict(config["models"][wildcards.model])
    settings.pop("resources", None)
    return settings


def model_loader(wildcards):
    """Only the loader keys that change this model's inputs."""
    keys = LOADER_KEYS[MODEL_MODALITY[wildcards.model]]
    return {key: config["loader"][key] for key in keys}


def model_roots(wildcards):
    modality = MODEL_MODALITY[wildcards.model]
    return {modality: f"results/tfrecords/{modality}"}


def model_record_dirs(wildcards):
    modality = MODEL_MODALITY[wildcards.model]
    return record_dirs([modality], split_locations(wildcards.split))


def model_stats_files(wildcards):
    """HearNet's min-max normalisation needs the split's spectrogram statistics."""
    if config["models"][wildcards.model].get("normalize", False):
        return expand(
            "results/stats/{split}/global_{name}.npy",
            split=wildcards.split,
            name=["min", "max"],
        )
    return []


def model_threads(wildcards):
    return config["models"][wildcards.model]["resources"]["threads"]


def model_resource(name):
    def resource(wildcards):
        return config["models"][wildcards.model]["resources"][name]

    return resource


def stage1_targets():
    return expand(
        "results/stage1/{model}/{split}/metrics.json",
        model=STAGE1_MODELS,
        split=STAGE1_SPLITS,
    )
