"""Weights by name: `.npz` files keyed by variable path (`DualCamNet.conv1/kernel`), so they
load by name and a wrong file is reported variable by variable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avdistill.errors import DataError
from avdistill.fileio import atomic_path


def save_weights(model, path: str | Path) -> None:
    """Every variable of `model` (trainable or not) in an .npz keyed by variable path."""
    arrays = {variable.path: np.asarray(variable.numpy()) for variable in model.weights}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            np.savez(file, **arrays)


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "weights file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"is not a weights file written by avdistill ({error})") from None


def load_weights(
    model, path: str | Path, exclude: tuple[str, ...] = (), include: tuple[str, ...] | None = None
) -> list[str]:
    """Assign `model`'s variables from `path` by name: those starting with one of `include`
    (all when None) and containing none of `exclude`.

    Raises DataError naming the file when it holds another model's weights, lacks a
    variable or has one of another shape; nothing is assigned then. Returns the names set.
    """
    stored = read_weights(path)
    wanted = [
        v
        for v in model.weights
        if (include is None or v.path.startswith(include)) and not any(part in v.path for part in exclude)
    ]
    if wanted and not any(v.path in stored for v in wanted):
        scopes = sorted({key.split(".")[0].split("/")[0] for key in stored})
        raise DataError(path, f"holds weights of another model ({', '.join(scopes)}), not {model.name}")
    problems = []
    for variable in wanted:
        if variable.path not in stored:
            problems.append(f"no {variable.path}")
        elif tuple(stored[variable.path].shape) != tuple(variable.shape):
            problems.append(f"{variable.path} has shape {stored[variable.path].shape}, model needs {variable.shape}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(path, f"incompatible with {model.name}: {'; '.join(problems[:3])}{more}")
    for variable in wanted:
        variable.assign(stored[variable.path])
    return [variable.path for variable in wanted]
