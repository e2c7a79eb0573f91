"""The raw DualCam dataset layout (`matfiles/` and `sync/` trees) and its file readers.

Layout, as the original `utils/convert_data.py` expects it (reference §1):

    matfiles/Location_LL/Subject_SS/Action_AAA/MFCC_Image/Data_N.mat   N = 1..n, not zero-padded
    sync/Location_LL/Subject_SS/Action_AAA/audio/A_NNNNNN.npy           int32 (mics, 1024)
    sync/Location_LL/Subject_SS/Action_AAA/video/I_NNNNNN.jpeg          BGR uint8

Action folders are 0-based in the raw data; locations and subjects are 1-based.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdistill.constants import ACOUSTIC_IMAGE_SHAPE, SAMPLES_PER_FRAME
from avdistill.errors import DataError

MODALITY_FOLDERS = {"acoustic": "MFCC_Image", "audio": "audio", "video": "video"}
_FILE_PATTERNS = {
    "acoustic": (re.compile(r"^Data_(\d+)\.mat$"), "Data_{}.mat"),
    "audio": (re.compile(r"^A_(\d{6})\.npy$"), "A_{:06d}.npy"),
    "video": (re.compile(r"^I_(\d{6})\.jpeg$"), "I_{:06d}.jpeg"),
}


def frame_filename(modality: str, index: int) -> str:
    """File name of 1-based frame `index` of a modality."""
    return _FILE_PATTERNS[modality][1].format(index)


@dataclass(frozen=True)
class RawSequence:
    """One recording: a location, subject and action, with n frames per modality."""

    location: int  # folder number, 1-based
    subject: int  # folder number, 1-based
    action: int  # folder number, 0-based (the original's raw convention)
    dirs: dict  # modality -> folder holding its frames
    num_frames: int

    @property
    def relative_dir(self) -> str:
        return f"Location_{self.location:02d}/Subject_{self.subject:02d}/Action_{self.action:03d}"

    def frame_path(self, modality: str, index: int) -> Path:
        return self.dirs[modality] / frame_filename(modality, index)


def _folder_number(name: str, prefix: str, path: Path) -> int:
    match = re.fullmatch(rf"{prefix}_(\d+)", name)
    if match is None:
        raise DataError(path, f"expected a folder named {prefix}_<number>, found {name!r}")
    return int(match.group(1))


def _count_frames(folder: Path, modality: str) -> int:
    """Number of frames in `folder`, checking that they are exactly 1..n with no gap."""
    pattern = _FILE_PATTERNS[modality][0]
    indices = sorted(int(m.group(1)) for f in folder.iterdir() if (m := pattern.match(f.name)))
    if not indices:
        raise DataError(folder, f"holds no {modality} frames ({_FILE_PATTERNS[modality][1]})")
    expected = range(1, len(indices) + 1)
    if indices != list(expected):
        missing = sorted(set(range(1, indices[-1] + 1)) - set(indices))
        name = frame_filename(modality, missing[0]) if missing else "?"
        raise DataError(folder, f"frames are not numbered 1..n: {name} is missing ({len(missing)} missing in all)")
    return len(indices)


def find_sequences(
    mat_root: str | Path,
    sync_root: str | Path,
    modalities: list[str],
    locations: list[int] | None = None,
) -> list[RawSequence]:
    """All sequences under the raw roots, sorted, with their frame counts checked.

    Every modality folder that exists for a sequence must hold the same number of frames,
    even the ones not converted now: records of different modalities converted separately
    must line up frame for frame.
    """
    mat_root, sync_root = Path(mat_root), Path(sync_root)
    primary_root = mat_root if "acoustic" in modalities else sync_root
    if not primary_root.is_dir():
        raise DataError(primary_root, "dataset folder does not exist")
    sequences = []
    for location_dir in sorted(primary_root.glob("Location_*")):
        location = _folder_number(location_dir.name, "Location", location_dir)
        if locations is not None and location not in locations:
            continue
        for subject_dir in sorted(location_dir.glob("Subject_*")):
            subject = _folder_number(subject_dir.name, "Subject", subject_dir)
            for action_dir in sorted(subject_dir.glob("Action_*")):
                action = _folder_number(action_dir.name, "Action", action_dir)
                relative = action_dir.relative_to(primary_root)
                dirs = {
                    "acoustic": mat_root / relative / MODALITY_FOLDERS["acoustic"],
                    "audio": sync_root / relative / MODALITY_FOLDERS["audio"],
                    "video": sync_root / relative / MODALITY_FOLDERS["video"],
                }
                counts = {}
                for modality, folder in dirs.items():
                    if folder.is_dir():
                        counts[modality] = _count_frames(folder, modality)
                    elif modality in modalities:
                        raise DataError(folder, f"{modality} folder is missing")
                if len(set(counts.values())) > 1:
                    detail = ", ".join(f"{m}: {n}" for m, n in counts.items())
                    raise DataError(relative, f"modalities have different numbers of frames ({detail})")
                sequences.append(RawSequence(location, subject, action, dirs, next(iter(counts.values()))))
    if not sequences:
        where = "" if locations is None else f" for locations {locations}"
        raise DataError(primary_root, f"holds no Location_*/Subject_*/Action_* sequences{where}")
    return sequences


def read_acoustic_image(path: str | Path) -> np.ndarray:
    """One acoustic image as (36, 48, 12) float32; smaller arrays are zero-padded at the front.

    The front padding and the float32 cast follow the original converter.
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises many types for corrupt files
        raise DataError(path, f"cannot read MATLAB file ({error})") from None
    if "MFCC" not in mat:
        raise DataError(path, f"has no 'MFCC' variable (found {sorted(k for k in mat if not k.startswith('__'))})")
    image = np.asarray(mat["MFCC"])
    if image.ndim != 3 or image.dtype.kind not in "fiu":
        raise DataError(
            path, f"MFCC must be a numeric rows x cols x coefficients array, found {image.dtype} {image.shape}"
        )
    target = np.array(ACOUSTIC_IMAGE_SHAPE)
    if np.any(np.array(image.shape) > target):
        raise DataError(path, f"MFCC has shape {image.shape}, larger than {ACOUSTIC_IMAGE_SHAPE}")
    image = image.astype("<f4")
    pad = [(int(before), 0) for before in target - np.array(image.shape)]
    return np.pad(image, pad, mode="constant")


def read_audio_frame(path: str | Path) -> np.ndarray:
    """One frame of microphone audio as (1, 1024) int32.

    The original loader reads exactly one track; when a file holds all microphones we keep
    row 0 (microphone 0, as the authors' later code did) instead of interleaving them.
    """
    try:
        audio = np.load(path, allow_pickle=False)
    except Exception as error:
        raise DataError(path, f"cannot read NumPy file ({error})") from None
    if audio.dtype != np.int32:
        raise DataError(path, f"audio must be int32, found {audio.dtype}")
    if audio.ndim != 2 or audio.shape[1] != SAMPLES_PER_FRAME:
        raise DataError(path, f"audio must have shape (mics, {SAMPLES_PER_FRAME}), found {audio.shape}")
    return np.ascontiguousarray(audio[:1])


def read_video_frame(path: str | Path) -> np.ndarray:
    """One video frame as H x W x 3 uint8 in OpenCV's BGR order (as the original stored it)."""
    import cv2

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(path, f"cannot read JPEG ({error.strerror})") from None
    # OpenCV decodes a truncated JPEG with only a warning; the end-of-image marker tells.
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DataError(path, "truncated or not a JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(path, "cannot decode JPEG")
    return image
