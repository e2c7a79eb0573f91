"""The networks the workflow can train: one declaration each, everything else derived.

A `Network` says what the rest of the code would otherwise look up by name: the model
input it reads (so its TFRecord modality, its loader settings and the shape its builder
must accept), whether it can teach, learn from a teacher or both, where its builder lives,
which variables stay fresh when it starts from one of its own checkpoints, which public
pretrained weights fit it, and which layer's input is its penultimate feature (feature
distillation). The pipeline, the trainers, the CLI's choices, the tables'
modality column and the Snakefile (wildcard constraints, config checks, which training
jobs write teacher logits) all read it. It follows the pattern of Keras applications and
timm's `register_model`: the paper's networks are registered below, a user's network
from the config (`models.<name>.builder`, see `register_from_config` and the README's
"Add your own network").

This module imports neither TensorFlow nor Keras, because the Snakefile imports it: a
builder is a "package.module:function" string, imported only when a job builds the network
(`avdistill.networks.build`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from avdistill.constants import (
    ACOUSTIC_IMAGE_SHAPE,
    FRAMES_PER_SECOND,
    NUM_ACTIONS,
    STFT_FFT_LENGTH,
    STFT_FRAME_LENGTH,
    STFT_FRAME_STEP,
    TARGET_SAMPLE_RATE,
    TEMPORAL_FRAMES,
)

# Model input -> the modality (TFRecord tree) the pipeline makes it from.
INPUT_MODALITIES = {
    "acoustic_images": "acoustic",
    "waveform": "audio",
    "spectrogram": "audio",
    "video_frames": "video",
    "video_clip": "video",
}
ROLES = ("teacher", "student")
# Public pretrained weights (`init: <name>`): the converted file rules/pretrained.smk writes.
PRETRAINED_FILES = {
    "soundnet": "resources/pretrained/soundnet5.npz",
    "imagenet": "resources/pretrained/resnet_v1_50.weights.npz",
}
# Keyword options a builder may declare beyond `sample_length` (it is passed those it names).
BUILDER_OPTIONS = ("crop_size", "trainable", "num_classes", "head_init")
# Initialisers of the shared head's fc1 and fc2 (`layers.shared_net`), the builders'
# head_init: "original" is shared.py's truncated normal (0.01); "glorot_uniform" is slim's
# default, that of every other convolution of DualCamNet, HearNet and SoundNet5.
HEAD_INITS = ("original", "glorot_uniform")
# What a declaration in the config may say (`register_from_config`); the rest of
# models.<name> are training settings.
DECLARATION_KEYS = ("builder", "input", "roles", "fresh_head", "feature_layer")


class RegistryError(ValueError):
    """A network that is not registered, or a declaration that cannot be one."""


def spectrogram_frames(sample_length: int) -> int:
    """STFT frames of `sample_length` seconds at 22,050 Hz (500 for 5 s)."""
    samples = TARGET_SAMPLE_RATE * sample_length
    return (samples - STFT_FRAME_LENGTH) // STFT_FRAME_STEP + 1


def input_shape(name: str, sample_length: int, crop_size: int) -> tuple[int, ...]:
    """The shape of one sample of model input `name` (without the batch axis)."""
    frames = FRAMES_PER_SECOND * sample_length
    shapes = {
        "acoustic_images": (frames, *ACOUSTIC_IMAGE_SHAPE),
        "waveform": (TARGET_SAMPLE_RATE * sample_length,),
        "spectrogram": (spectrogram_frames(sample_length), 1, STFT_FFT_LENGTH // 2 + 1),
        "video_frames": (frames, crop_size, crop_size, 3),
        "video_clip": (TEMPORAL_FRAMES, crop_size, crop_size, 3),
    }
    if name not in shapes:
        raise RegistryError(f"unknown model input {name!r}; the pipeline makes {', '.join(shapes)}")
    return shapes[name]


def output_shapes(inputs: tuple[str, ...], sample_length: int) -> list[tuple]:
    """The logits shapes a network may return: one row per sample, or one per frame."""
    shapes: list[tuple] = [(None, NUM_ACTIONS)]
    if any(name in ("acoustic_images", "video_frames") for name in inputs):
        shapes.append((None, FRAMES_PER_SECOND * sample_length, NUM_ACTIONS))
    return shapes


@dataclass(frozen=True)
class Pretrained:
    """Public pretrained weights a network can start from: the variables they set."""

    init: str  # the `init` value: a key of PRETRAINED_FILES
    include: tuple[str, ...]  # variable path prefixes set from the file
    exclude: tuple[str, ...] = ()  # substrings of the variables left fresh


@dataclass(frozen=True)
class Network:
    """One network: its name (the config's, the results folders' and the tables'), the model
    inputs it reads, its roles, its builder and what its inits set."""

    name: str
    inputs: tuple[str, ...]
    roles: tuple[str, ...]
    builder: str  # "package.module:function"
    # Variables not taken from one of its own checkpoints (init: a .weights.npz): its fresh head.
    fresh_head: tuple[str, ...] = ()
    pretrained: tuple[Pretrained, ...] = ()
    # The layer whose input is its penultimate feature (feature distillation, stage2.alpha):
    # the shared head's fc1 for the paper's networks. None: it takes no part in it.
    feature_layer: str | None = None

    def __post_init__(self):
        where = f"network {self.name!r}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise RegistryError(f"{where}: a name is lower-case letters, digits and _, starting with a letter")
        unknown = [name for name in self.inputs if name not in INPUT_MODALITIES]
        if not self.inputs or unknown:
            raise RegistryError(f"{where}: input must be one of {', '.join(INPUT_MODALITIES)}, got {list(self.inputs)}")
        if not set(self.roles) <= set(ROLES):
            raise RegistryError(f"{where}: roles must be among {', '.join(ROLES)}, got {list(self.roles)}")
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.builder):
            raise RegistryError(f"{where}: builder must be 'package.module:function', got {self.builder!r}")
        for pretrained in self.pretrained:
            if pretrained.init not in PRETRAINED_FILES:
                raise RegistryError(f"{where}: no pretrained weights called {pretrained.init!r}")

    @property
    def modalities(self) -> tuple[str, ...]:
        """The TFRecord modalities it reads."""
        return tuple(sorted({INPUT_MODALITIES[name] for name in self.inputs}))

    @property
    def modality(self) -> str:
        """Its modality as the tables write it ("acoustic", "audio", "video", or "acoustic+video")."""
        return "+".join(self.modalities)

    @property
    def is_teacher(self) -> bool:
        return "teacher" in self.roles

    @property
    def is_student(self) -> bool:
        return "student" in self.roles

    @property
    def module(self) -> str:
        return self.builder.split(":")[0]

    def pretrained_init(self, init: str) -> Pretrained:
        """The variables `init` (soundnet, imagenet) sets; an error when it does not fit."""
        for pretrained in self.pretrained:
            if pretrained.init == init:
                return pretrained
        fits = [n.name for n in _REGISTRY.values() if any(p.init == init for p in n.pretrained)]
        raise RegistryError(f"init {init!r} is for {', '.join(fits) or 'no network'}, not {self.name}")

    def source_digest(self) -> str:
        """SHA-256 of its builder's module file, found without importing it ('' if not found).

        The workflow passes it as a param of the network's jobs, so that editing a user's
        network reruns exactly its runs (the library's own modules are tracked as code)."""
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            return ""
        return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16]


_REGISTRY: dict[str, Network] = {}


def register(network: Network) -> Network:
    """Add a network; registering the same name again with another declaration is an error."""
    known = _REGISTRY.get(network.name)
    if known is not None and known != network:
        raise RegistryError(f"network {network.name!r} is already registered ({known.builder})")
    _REGISTRY[network.name] = network
    return network


def get(name: str) -> Network:
    """The network called `name`; an error that lists the registered networks otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RegistryError(
            f"unknown network {name!r}; registered: {', '.join(_REGISTRY)} "
            "(add your own with models.<name>.builder, see the README)"
        ) from None


def networks(role: str | None = None) -> list[Network]:
    """The registered networks that can take `role` (every one the workflow trains if None)."""
    return [n for n in _REGISTRY.values() if (n.roles if role is None else role in n.roles)]


def names(role: str | None = None) -> list[str]:
    return [n.name for n in networks(role)]


def declaration(name: str, settings: dict) -> Network | None:
    """The Network that `models.<name>` declares (it names a `builder`), else None."""
    given = [key for key in DECLARATION_KEYS if key in settings]
    if not given:
        return None
    where = f"models.{name}"
    if name in _REGISTRY and _REGISTRY[name].module.startswith("avdistill."):
        raise RegistryError(f"{where}: {', '.join(given)} cannot be set for the built-in network {name!r}")
    missing = [key for key in ("builder", "input", "roles") if key not in settings]
    if missing:
        raise RegistryError(f"{where}: a network of your own needs {', '.join(missing)} (see the README)")
    inputs = settings["input"]
    roles = settings["roles"]
    try:
        return Network(
            name=name,
            inputs=tuple([inputs] if isinstance(inputs, str) else inputs),
            roles=tuple([roles] if isinstance(roles, str) else roles),
            builder=str(settings["builder"]),
            fresh_head=tuple(settings.get("fresh_head", ())),
            feature_layer=settings.get("feature_layer"),
        )
    except RegistryError as error:
        raise RegistryError(f"{where}: {error}") from None


def register_from_config(models: dict) -> list[Network]:
    """Register every network that `models` (the config's) declares with a builder."""
    return [register(network) for name, settings in models.items() if (network := declaration(name, settings))]


def teacher_set_name(teachers, weights=None) -> str:
    """A stage-2 run's teacher as its folder names it (`from_<name>`): `dualcamnet` for one
    teacher, `dualcamnet+resnet50` for an ensemble of equal weights, and
    `dualcamnet~2+resnet50~1` for other weights (as given, not normalised)."""
    teachers = list(teachers)
    if weights is None or len(set(float(w) for w in weights)) == 1:
        return "+".join(teachers)
    return "+".join(f"{t}~{float(w):g}" for t, w in zip(teachers, weights, strict=True))


def ensemble_members(name: str) -> list[str]:
    """The teachers of an ensemble's `teacher_set_name` (`dualcamnet~2+resnet50~1` ->
    dualcamnet, resnet50); none for a single teacher's."""
    return [part.split("~")[0] for part in name.split("+")] if "+" in name else []


# --- the paper's networks ---------------------------------------------------------------

register(
    Network(
        "dualcamnet",
        ("acoustic_images",),
        ("teacher",),
        "avdistill.networks.acoustic:dualcamnet",
        fresh_head=("DualCamNet.fc2/",),
        feature_layer="DualCamNet.fc1",
    )
)
register(
    Network(
        "hearnet",
        ("spectrogram",),
        ("student",),
        "avdistill.networks.audio:hearnet",
        fresh_head=("hear_net.fc2/",),
        feature_layer="hear_net.fc1",
    )
)
register(
    Network(
        "soundnet5",
        ("waveform",),
        ("student",),
        "avdistill.networks.audio:soundnet5",
        fresh_head=("SoundNet.conv5", "SoundNet.conv6", "SoundNet.fc1/", "SoundNet.fc2/"),
        feature_layer="SoundNet.fc1",
        # SoundNet gives conv1-conv4 and their batch norms; conv5, conv6 and the head stay
        # fresh, as the original's soundnet5_model_params.
        pretrained=(Pretrained("soundnet", tuple(f"SoundNet.conv{i}" for i in range(1, 5))),),
    )
)
# ImageNet gives the whole ResNet-50 but its logits; the temporal convolutions (new in the
# temporal ResNet-50) and the audio-visual model's DualCamNet and AVNet head stay fresh.
_IMAGENET = Pretrained("imagenet", ("resnet_v1_50.",), ("resnet_v1_50.logits/", "conv_temp"))
register(
    Network(
        "resnet50",
        ("video_frames",),
        ("teacher",),
        "avdistill.networks.video:resnet50",
        fresh_head=("resnet_v1_50.logits/",),
        pretrained=(_IMAGENET,),
        # Its logits layer reads the pooled 2048-d features: there is no fc1 in slim's ResNet.
        feature_layer="resnet_v1_50.logits",
    )
)
register(
    Network(
        "temporal_resnet50",
        ("video_clip",),
        ("teacher",),
        "avdistill.networks.video:temporal_resnet50",
        fresh_head=("resnet_v1_50.logits/",),
        pretrained=(_IMAGENET,),
        # Its logits layer reads the pooled 2048-d features: there is no fc1 in slim's ResNet.
        feature_layer="resnet_v1_50.logits",
    )
)
# The audio-visual model (§3.6) is built by the library and its CLI but trained by no stage
# of the paper's tables: no role, so the workflow does not offer it.
register(
    Network(
        "av_model",
        ("video_frames", "acoustic_images"),
        (),
        "avdistill.networks.video:av_model",
        fresh_head=("AVNet.",),
        pretrained=(_IMAGENET,),
    )
)
