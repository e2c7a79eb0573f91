"""Split lists, exactly as the original `utils/generate_lists.py` made them (reference §1.5).

Sequence folders are taken in sorted order; each contributes `Data_001 ...
Data_{k·floor(n/k)}` with k = `num_samples` (10: three 10-second chunks of a 30-second
sequence). The chunk starts are shuffled once with NumPy's legacy `seed(42)`; the first 80 %
of chunks (by `int(N·0.8/k)`) train, the next `int(N·0.1/k)` validate, the rest test.
Split mode 1 merges validation into training and validates on the test chunks; mode 2 puts
everything in `dataset.txt`.

Lists name records relative to the TFRecord root (`Location_01/Subject_01/Action_001/
Data_001.tfrecord`), so one list serves every modality. Listing never opens a record.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from avdistill.errors import DataError
from avdistill.fileio import write_text_atomic

TRAIN_FRACTION = 0.8
VALIDATION_FRACTION = 0.1
SPLIT_SEED = 42
_RECORD = re.compile(r"^Data_(\d{3})\.tfrecord$")


def sequence_folders(root: str | Path, locations: list[int] | None = None) -> dict[str, int]:
    """Relative sequence folders under a TFRecord root -> their number of records, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "TFRecord folder does not exist")
    folders = {}
    for folder in sorted(root.glob("Location_*/Subject_*/Action_*")):
        location = int(folder.parts[-3].split("_")[1])
        if locations is not None and location not in locations:
            continue
        names = [f.name for f in folder.iterdir() if f.name.endswith(".tfrecord")]
        numbers = sorted(int(m.group(1)) for n in names if (m := _RECORD.match(n)))
        if numbers != list(range(1, len(names) + 1)):
            raise DataError(folder, "records are not exactly Data_001.tfrecord ... Data_NNN.tfrecord")
        folders[folder.relative_to(root).as_posix()] = len(names)
    if not folders:
        where = "" if locations is None else f" of location(s) {locations}"
        raise DataError(root, f"holds no Location_*/Subject_*/Action_* record folders{where}")
    return folders


def split_records(folders: dict[str, int], num_samples: int = 10, split_mode: int = 0) -> dict[str, list[str]]:
    """The original split of record paths: list name -> paths, in the original's order."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if split_mode not in (0, 1, 2):
        raise ValueError(f"split_mode must be 0, 1 or 2, got {split_mode}")
    files = [
        f"{folder}/Data_{index + 1:03d}.tfrecord"
        for folder, count in folders.items()
        for index in range(num_samples * (count // num_samples))
    ]
    size = len(files)
    train = int(size * TRAIN_FRACTION / num_samples)
    validation = int(size * VALIDATION_FRACTION / num_samples)
    test = size - train - validation
    if split_mode == 1:
        train, validation, test = train + validation, test, 0
    elif split_mode == 2:
        train, validation, test = train + validation + test, 0, 0

    # Chunk starts shuffled with the legacy global RandomState, as the original did.
    starts = list(range(0, size, num_samples))
    state = np.random.RandomState(SPLIT_SEED)
    state.shuffle(starts)

    def expand(chunk_starts):
        return [files[j] for i in chunk_starts for j in range(i, i + num_samples)]

    splits = {
        "training": expand(starts[:train]),
        "validation": expand(starts[train : train + validation]),
        "testing": expand(starts[train + validation :]),
    }
    if split_mode == 2:
        return {"dataset": splits["training"]}
    return {name: paths for name, paths in splits.items() if paths}


def check_same_records(roots: list[str | Path], locations: list[int] | None = None) -> dict[str, int]:
    """Sequence folders of the first root, checked to be the same in every other root."""
    reference = sequence_folders(roots[0], locations)
    for root in roots[1:]:
        other = sequence_folders(root, locations)
        for folder in sorted(set(reference) | set(other)):
            if reference.get(folder) != other.get(folder):
                raise DataError(
                    Path(root) / folder,
                    f"has {other.get(folder, 0)} records but {Path(roots[0]) / folder} has {reference.get(folder, 0)}",
                )
    return reference


def write_lists(splits: dict[str, list[str]], out_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Write `<name>.txt` files, one record path per line. Empty lists are an error."""
    out_dir = Path(out_dir)
    written = []
    for name in names or list(splits):
        paths = splits.get(name, [])
        if not paths:
            raise DataError(out_dir / f"{name}.txt", "this split would be empty; add data or change the split")
        path = out_dir / f"{name}.txt"
        write_text_atomic(path, "".join(f"{p}\n" for p in paths))
        written.append(path)
    return written


def read_list(path: str | Path, root: str | Path | None = None, total_length: int = 10) -> list[str]:
    """Record paths of a list file: relative ones joined to `root`, absolute ones kept.

    Checks what the loader needs before any record is read: a non-empty list, whole blocks
    of `total_length` records, and every named record present.
    """
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except OSError as error:
        raise DataError(path, f"cannot read list ({error.strerror})") from None
    entries = [line for line in lines if line]
    if not entries:
        raise DataError(path, "list is empty")
    if len(entries) % total_length:
        raise DataError(path, f"has {len(entries)} records, not a whole number of {total_length}-record blocks")
    resolved = []
    for number, entry in enumerate(entries, start=1):
        record = Path(entry)
        if not record.is_absolute():
            if root is None:
                raise DataError(path, f"line {number} is a relative path but no TFRecord root was given")
            record = Path(root) / record
        resolved.append(str(record))
    missing = [(n, r) for n, r in enumerate(resolved, start=1) if not Path(r).is_file()]
    if missing:
        number, record = missing[0]
        raise DataError(
            path, f"line {number} names a record that does not exist: {record} ({len(missing)} missing in all)"
        )
    return resolved


def make_lists(
    roots: list[str | Path],
    out_dir: str | Path,
    locations: list[int] | None = None,
    num_samples: int = 10,
    split_mode: int = 0,
) -> dict[str, list[str]]:
    """Check that every modality's root holds the same records, split them, write the lists.

    Split mode 0 writes training, validation and testing; 1 training and validation; 2
    dataset. A list that would be empty is an error: every later stage needs all of them.
    """
    folders = check_same_records(roots, locations)
    splits = split_records(folders, num_samples, split_mode)
    names = {0: ["training", "validation", "testing"], 1: ["training", "validation"], 2: ["dataset"]}[split_mode]
    write_lists(splits, out_dir, names)
    return splits


def check_lists(list_paths, roots: dict, total_length: int) -> None:
    """Every given list holds whole blocks of existing records (DataError naming it if not)."""
    root = next(iter(roots.values()))
    for list_path in list_paths:
        if list_path is not None:
            read_list(list_path, root, total_length)


def record_paths(list_paths, roots: dict, modalities: list[str], total_length: int) -> list[str]:
    """Every record the lists name, per modality, for naming a bad record when reading fails."""
    return [p for m in modalities for list_path in list_paths for p in read_list(list_path, roots[m], total_length)]
