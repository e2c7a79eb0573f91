import ast
import functools
import hashlib
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from snakemake.utils import validate

# The library of this checkout (its registry of networks; code_version hashes its files).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from avdistill.networks import registry
from avdistill.train.options import check_checkpoint

validate(config, schema="../workflow/schemas/config.schema.yaml")

LOCATIONS = (
    config["dataset"]["synthetic"]["locations"]
    if config["dataset"]["source"] == "synthetic"
    else [1, 2, 3]
)
# The conda environment of the jobs that run TensorFlow: the CPU build, or the CUDA one.
TENSORFLOW_ENV = {
    "cpu": "../envs/avdistill.yaml",
    "gpu": "../envs/avdistill-gpu.yaml",
}[config["tensorflow"]]
# The networks: the paper's, and any the config declares with models.<name>.builder
# (avdistill.networks.registry, which imports no TensorFlow). Every fact about a network
# below is derived from its declaration.
try:
    DECLARED = registry.register_from_config(config["models"])
except registry.RegistryError as error:
    raise ValueError(f"config: {error}") from None
NETWORKS = {name: registry.get(name) for name in registry.names()}
# Declaring a network is enough: it trains in stage 1 and takes its roles in stage 2
# (distilled from every teacher, or teaching every student) without being listed there.
for _network in DECLARED:
    for _stage, _list, _add in (
        ("stage1", "models", True),
        ("stage2", "students", _network.is_student),
        ("stage2", "teachers", _network.is_teacher),
    ):
        if _add and _network.name not in config[_stage][_list]:
            config[_stage][_list] = [*config[_stage][_list], _network.name]
MODALITIES = config["tfrecords"]["modalities"]
SPLITS = config["splits"]["names"]
STAGE1_MODELS = config["stage1"]["models"]
STAGE1_SPLITS = config["stage1"]["splits"]
if not set(STAGE1_SPLITS) <= set(SPLITS):
    raise ValueError(
        f"stage1.splits {STAGE1_SPLITS} must be among splits.names {SPLITS}"
    )
for _key, _chosen, _role in (
    ("stage1.models", STAGE1_MODELS, None),
    ("stage2.students", config["stage2"]["students"], "student"),
    ("stage2.teachers", config["stage2"]["teachers"], "teacher"),
    *(
        (f"stage2.ensembles[{_number}]", _ensemble["teachers"], "teacher")
        for _number, _ensemble in enumerate(config["stage2"]["ensembles"], start=1)
    ),
):
    _allowed = registry.names(_role)
    _unknown = ", ".join(repr(name) for name in _chosen if name not in _allowed)
    _as = f" as a {_role}" if _role else ""
    if _unknown:
        raise ValueError(
            f"{_key}: {_unknown} not registered{_as}; registered: {', '.join(_allowed)} "
            "(add your own with models.<name>.builder)"
        )
_missing = [name for name in STAGE1_MODELS if name not in config["models"]]
if _missing:
    raise ValueError(
        f"models: no settings for {', '.join(_missing)} (stage1.models trains them)"
    )
# Ensembles (stage2.ensembles): teacher sets a student learns from at once, by the name of
# their runs' folder (from_<name>/, registry.teacher_set_name) -> (teachers, weights).
ENSEMBLES = {}
for _number, _ensemble in enumerate(config["stage2"]["ensembles"], start=1):
    _where = f"stage2.ensembles[{_number}]"
    _teachers, _weights = _ensemble["teachers"], _ensemble.get("weights")
    for _teacher in _teachers:
        if _teacher not in STAGE1_MODELS:
            raise ValueError(
                f"{_where}: teacher {_teacher!r} is not trained in stage 1 (stage1.models {STAGE1_MODELS})"
            )
    if _weights is not None and len(_weights) != len(_teachers):
        raise ValueError(
            f"{_where}: {len(_weights)} weights for the {len(_teachers)} teachers {_teachers}"
        )
    ENSEMBLES[registry.teacher_set_name(_teachers, _weights)] = (_teachers, _weights)
# The teachers of stage 2 and of the ensembles: their training job (train_teacher) also
# writes their logits and features of every training and validation record. Every other
# network, a teacher no student learns from included, trains with train_stage1 and
# computes none; naming it in stage2.teachers later reruns its job, which resumes its
# finished training from its train_state and computes only the logits.
LOGIT_TEACHERS = list(
    dict.fromkeys(
        [
            *config["stage2"]["teachers"],
            *(t for ts, _ in ENSEMBLES.values() for t in ts),
        ]
    )
)
TEACHER_PATTERN = "|".join(LOGIT_TEACHERS) or "(?!)"  # (?!): no name
STUDENT_PATTERN = "|".join(n for n in registry.names() if n not in LOGIT_TEACHERS)
# What a stage-2 run learns from (its {teacher} wildcard): a teacher, or an ensemble.
DISTILL_TEACHERS = [*config["stage2"]["teachers"], *ENSEMBLES]
# The loader keys that change a modality's inputs.
LOADER_KEYS = {
    "acoustic": [],
    "audio": ["resampler"],
    "video": ["video_channel_order", "video_resize", "video_crop_size"],
}

# Seeds of the training runs: each run of stage 1 and 2 is repeated once per seed of its
# split (splits.seeds: the first n of `seeds`); stage-2 runs under seed s learn from the
# teacher trained under seed s.
SEEDS = config["seeds"]
SPLIT_SEED_COUNTS = config["splits"].get("seeds", {})


def split_seeds(split):
    """The seeds a split's runs repeat over: the first splits.seeds[split] of `seeds`."""
    return SEEDS[: SPLIT_SEED_COUNTS.get(split, len(SEEDS))]


def per_seed(pattern, splits, **wildcards):
    """expand() of a {split}/{seed} pattern, each split with its own seeds."""
    return [
        path
        for split in splits
        for path in expand(pattern, split=split, seed=split_seeds(split), **wildcards)
    ]


STAGE1_RUN = "results/stage1/{model}/{split}/seed~{seed}"

STAGE2 = config["stage2"]
for _key in ("splits",):
    if not set(STAGE2[_key]) <= set(SPLITS):
        raise ValueError(
            f"stage2.{_key} {STAGE2[_key]} must be among splits.names {SPLITS}"
        )
if STAGE2["ablation"]["split"] not in SPLITS:
    raise ValueError(
        f"stage2.ablation.split {STAGE2['ablation']['split']!r} must be in splits.names {SPLITS}"
    )
# Students and teachers of the (λ, T) grid: subsets of stage2's (null: all of them).
ABLATION_STUDENTS = STAGE2["ablation"].get("students")
ABLATION_STUDENTS = (
    STAGE2["students"] if ABLATION_STUDENTS is None else ABLATION_STUDENTS
)
ABLATION_TEACHERS = STAGE2["ablation"].get("teachers")
ABLATION_TEACHERS = (
    STAGE2["teachers"] if ABLATION_TEACHERS is None else ABLATION_TEACHERS
)
for _key, _chosen in (("students", ABLATION_STUDENTS), ("teachers", ABLATION_TEACHERS)):
    if not set(_chosen) <= set(STAGE2[_key]):
        raise ValueError(
            f"stage2.ablation.{_key} {_chosen} must be among stage2.{_key} {STAGE2[_key]}"
        )

# What each fetched file under resources/downloads/ is, and its config entry (url, sha256).
DOWNLOADS = {
    "dataset_archive": config["dataset"],
    "soundnet_models_public.zip": config["pretrained"]["soundnet"],
    "resnet_v1_50_2016_08_28.tar.gz": config["pretrained"]["resnet"],
}
# `init` values that mean public pretrained weights: their converted file, and which
# networks they fit (registry).
for _model in STAGE1_MODELS:
    _init = config["models"][_model].get("init", "scratch")
    if _init in registry.PRETRAINED_FILES:
        try:
            NETWORKS[_model].pretrained_init(_init)
        except registry.RegistryError as error:
            raise ValueError(f"models.{_model}.init: {error}") from None
    # The trainer's check, before any job: `best` compares every epoch.
    _settings = config["models"][_model]
    try:
        check_checkpoint(
            _settings.get("checkpoint", "best"),
            _settings.get("validation", "every_epoch"),
        )
    except ValueError as error:
        raise ValueError(f"models.{_model}: {error}") from None


wildcard_constraints:
    modality="acoustic|audio|video",
    location=r"\d\d",
    location_number=r"[1-3]",
    split=r"location_[1-3]|all|locations_[1-3]_[1-3]",
    model="|".join(NETWORKS),
    download="|".join(re.escape(name) for name in DOWNLOADS),
    teacher="|".join(re.escape(name) for name in DISTILL_TEACHERS) or "(?!)",
    seed=r"\d+",
    lambda_value=r"[0-9.e+-]+",
    temperature=r"[0-9.e+-]+",


def split_locations(split):
    """Locations (1-based) whose records a split draws from: one for location_L, two for
    locations_L_M (leave one location out), all of them for `all`."""
    if split == "all":
        return list(LOCATIONS)
    numbers = [int(n) for n in split.split("_")[1:]]
    missing = [n for n in numbers if n not in LOCATIONS]
    if missing:
        raise ValueError(
            f"split {split!r} needs location(s) {missing}, but the dataset has only "
            f"locations {LOCATIONS} (config dataset.synthetic.locations)"
        )
    return numbers


def held_out_location(split):
    """The location a locations_L_M split leaves out (None for the other splits)."""
    if not split.startswith("locations_"):
        return None
    (location,) = {1, 2, 3} - set(split_locations(split))
    return location


# Every split's locations exist, and a leave-one-out split's held-out one has data.
for _split in SPLITS:
    split_locations(_split)
    if held_out_location(_split) not in (None, *LOCATIONS):
        raise ValueError(
            f"split {_split!r} tests on location {held_out_location(_split)}, which has no data "
            f"(the dataset has locations {LOCATIONS}, config dataset.synthetic.locations)"
        )


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
    return [registry.PRETRAINED_FILES.get(init, init)]


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
    modalities = NETWORKS[wildcards.model].modalities
    return {key: config["loader"][key] for m in modalities for key in LOADER_KEYS[m]}


def model_roots(wildcards):
    return {m: f"results/tfrecords/{m}" for m in NETWORKS[wildcards.model].modalities}


def model_stats_files(wildcards):
    """HearNet's min-max normalisation needs the split's spectrogram statistics."""
    if config["models"][wildcards.model].get("normalize", False):
        return expand(
            "results/stats/{split}/global_{name}.npy",
            split=wildcards.split,
            name=["min", "max"],
        )
    return []


def other_location_lists(wildcards):
    """The other locations a model is also tested on, on all of their data: every other
    location for a location split (table 2), the held-out one for locations_L_M (table 4).
    """
    if wildcards.split == "all":
        return {}
    own = split_locations(wildcards.split)
    return {
        f"location_{n}": f"results/lists/location_{n}/dataset.txt"
        for n in LOCATIONS
        if n not in own
    }


def test_lists(wildcards):
    """The lists a trained model is tested on: its split's testing list, then table 2's."""
    return {
        "testing": f"results/lists/{wildcards.split}/testing.txt",
        **other_location_lists(wildcards),
    }


def model_test_record_dirs(wildcards):
    """Records of the split and of the other locations it is tested on."""
    others = [int(name.split("_")[1]) for name in other_location_lists(wildcards)]
    return record_dirs(
        NETWORKS[wildcards.model].modalities,
        sorted({*split_locations(wildcards.split), *others}),
    )


def training_code(wildcards):
    """The library code of a network's stage-1 job. A network that can teach runs the
    teacher-logits code too, whichever of train_stage1 and train_teacher makes its run this
    time (stage2.teachers decides), so moving it in or out of stage2.teachers does not
    change the job's params: only the logits are computed when it starts to teach."""
    if NETWORKS[wildcards.model].is_teacher:
        return code_version("train.teacher_logits")
    return code_version("train.fit")


def teachers_of(wildcards):
    """The teachers a stage-2 run learns from: its teacher, or its ensemble's, in order."""
    return list(ENSEMBLES.get(wildcards.teacher, ([wildcards.teacher], None))[0])


def teacher_weights(wildcards):
    """An ensemble's weights as configured (None: equal; the library normalises them)."""
    return ENSEMBLES.get(wildcards.teacher, (None, None))[1]


def teacher_logits_files(wildcards):
    """The cached logits of each teacher of a stage-2 run, trained under the run's seed."""
    return [
        f"results/stage1/{teacher}/{wildcards.split}/seed~{wildcards.seed}/teacher_logits.npz"
        for teacher in teachers_of(wildcards)
    ]


def teacher_declarations(wildcards):
    """Each of a run's teachers that is a user's network -> its declaration
    (registry.DECLARATION_KEYS of its models entry), for the distill job to register it.
    """
    declarations = {}
    for teacher in teachers_of(wildcards):
        settings = config["models"].get(teacher, {})
        declaration = {
            k: settings[k] for k in registry.DECLARATION_KEYS if k in settings
        }
        if declaration:
            declarations[teacher] = declaration
    return declarations


def network_code(wildcards):
    """The code of a network's builder: the library module that defines it (the trainers
    import it only by name, through the registry), or the user's module. A param: editing
    it reruns exactly that network's runs."""
    network = NETWORKS[wildcards.model]
    if network.module.startswith("avdistill."):
        return code_version(network.module.removeprefix("avdistill."))
    return network.source_digest()


def test_run(wildcards):
    """What a test job copies into metrics.json: what the run is (the tables read it)."""
    run = {"split": wildcards.split, "modality": NETWORKS[wildcards.model].modality}
    if "teacher" in wildcards.keys():
        run |= {
            "teacher": wildcards.teacher,
            "lambda": float(wildcards.lambda_value),
            "temperature": float(wildcards.temperature),
        }
    return run | {"seed": int(wildcards.seed)}


def model_threads(wildcards):
    return config["models"][wildcards.model]["resources"]["threads"]


def model_resource(name):
    def resource(wildcards):
        return config["models"][wildcards.model]["resources"][name]

    return resource


def stage1_targets():
    return per_seed(f"{STAGE1_RUN}/metrics.json", STAGE1_SPLITS, model=STAGE1_MODELS)


# --- stage 2 ---------------------------------------------------------------------------


def grid_value(value):
    """A λ or T as it appears in paths: 0.5 -> '0.5', 1 -> '1.0'."""
    return repr(float(value))


STAGE2_RUN = "results/stage2/{model}/from_{teacher}/{split}/lambda~{lambda_value}/T~{temperature}/seed~{seed}"


def stage2_default_targets():
    """Metrics of the default (λ, T) runs on stage2.splits (tables 1, 2 and 4), from every
    teacher and every ensemble."""
    return per_seed(
        f"{STAGE2_RUN}/metrics.json",
        STAGE2["splits"],
        model=STAGE2["students"],
        teacher=DISTILL_TEACHERS,
        lambda_value=grid_value(STAGE2["lambda"]),
        temperature=grid_value(STAGE2["temperature"]),
    )


def stage2_ablation_targets():
    """Metrics of every (λ, T) of the ablation grid (table 3)."""
    return per_seed(
        f"{STAGE2_RUN}/metrics.json",
        [STAGE2["ablation"]["split"]],
        model=ABLATION_STUDENTS,
        teacher=ABLATION_TEACHERS,
        lambda_value=[grid_value(v) for v in STAGE2["ablation"]["lambda"]],
        temperature=[grid_value(v) for v in STAGE2["ablation"]["temperature"]],
    )


def stage2_targets():
    """Every stage-2 run: the default (λ, T) on stage2.splits and the ablation grid."""
    return list(dict.fromkeys(stage2_default_targets() + stage2_ablation_targets()))


def training_histories():
    """history.csv of the first seed's runs on `all` (else the first split), for the curves."""
    splits = [*STAGE1_SPLITS, *STAGE2["splits"]]
    split = "all" if "all" in splits else splits[0]
    run = f"/{split}/"
    seed = f"/seed~{split_seeds(split)[0]}/"
    return [
        target.replace("metrics.json", "history.csv")
        for target in stage1_targets() + stage2_default_targets()
        if run in target and seed in target
    ]


def table_targets():
    return [
        "results/table1.csv",
        "results/table1_summary.csv",
        "results/table1.md",
        "results/table4.md",
        "results/comparisons.csv",
        "results/summary.md",
        "results/figures/table1_accuracy.png",
    ]


def number_of_actions():
    """Actions in the dataset: chance accuracy is one over it."""
    if config["dataset"]["source"] == "synthetic":
        return len(config["dataset"]["synthetic"]["actions"])
    return 14


# --- provenance ------------------------------------------------------------------------

LIBRARY = Path(workflow.basedir) / "src" / "avdistill"
INVOCATION = "results/provenance/invocation.json"


def _module_file(name):
    """src/avdistill/<name with dots as folders>.py, or the package's __init__.py."""
    path = LIBRARY.joinpath(*name.split("."))
    return (
        path.with_suffix(".py")
        if path.with_suffix(".py").is_file()
        else path / "__init__.py"
    )


def _library_imports(source):
    """The avdistill modules that `source` ("train.fit") imports, at any depth of its code."""
    tree = ast.parse(_module_file(source).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "avdistill"
        ):
            package = node.module.removeprefix("avdistill").removeprefix(".")
            # from avdistill.data import lists: `lists` is a module, not a name in data/.
            for alias in node.names:
                child = f"{package}.{alias.name}" if package else alias.name
                names.add(child if _module_file(child).is_file() else package)
        elif isinstance(node, ast.Import):
            names |= {
                a.name.removeprefix("avdistill.")
                for a in node.names
                if a.name.startswith("avdistill.")
            }
    return {name for name in names if name and _module_file(name).is_file()}


@functools.cache
def code_version(*sources):
    """SHA-256 of the library modules a rule's script calls ("train.fit") and all they
    import. A param: editing one of them reruns exactly the jobs that run it (Snakemake
    itself only tracks the script file)."""
    seen, todo = set(), list(sources)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _library_imports(name)
    digest = hashlib.sha256()
    for name in sorted(seen):
        for part in (name.encode(), b"\0", _module_file(name).read_bytes()):
            digest.update(part)
    return digest.hexdigest()[:16]


def write_invocation():
    """What this run of Snakemake was started with, for every job's provenance.json: the
    config files (not params, so moving one reruns nothing) and the command line."""
    files = []
    for path in workflow.configfiles:
        data = Path(path).read_bytes()
        files.append(
            {
                "path": str(Path(path).resolve()),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    record = {
        "config_files": files,
        "workflow_dir": str(Path(workflow.basedir).resolve()),
        "command": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    Path(INVOCATION).parent.mkdir(parents=True, exist_ok=True)
    Path(INVOCATION).write_text(json.dumps(record, indent=1) + "\n")
