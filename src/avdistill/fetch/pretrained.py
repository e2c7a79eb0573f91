"""Public pretrained weights converted to this project's variable names (§3.7, §4, §5).

* SoundNet (`soundnet5_final.t7`, a Torch7 `nn.Sequential` saved by cvondrick/soundnet's
  `main_train_small.lua`): conv1-conv4 and their batch norms, and the object/scene heads
  conv5a/conv5b when present, become `SoundNet.conv1/kernel`, `SoundNet.conv1.norm/gamma`...
  Torch kernels [out, in, kH, kW] are transposed to Keras' [kH, kW, in, out].
* ResNet-50 (`resnet_v1_50.ckpt` from TF-slim's 2016 tarball, a V1 single-file checkpoint):
  every variable of the slim-faithful ResNet-50 except `logits` (ImageNet's 1000 classes),
  `resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/weights` becoming
  `resnet_v1_50.block1.unit_1.bottleneck_v1.conv1/kernel`.

Both are written as `.npz` files keyed by Keras variable path, the format of every weights
file of the workflow, so `training.load_weights` loads them by name.

A downloaded file is untrusted input. The Torch7 file is walked once by `scan_t7` before
`torchfile` reads it: every length, count, tensor extent and reference is checked against
the file's size, so a truncated or hostile file fails with a message instead of a hang, a
huge allocation or a read outside a buffer (torchfile trusts declared sizes: it allocates
a storage's declared count and builds tensors with `as_strided`). The network is then
checked module by module against SoundNet5's layout.
"""

from __future__ import annotations

import logging
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avdistill.errors import DataError
from avdistill.fileio import atomic_path

log = logging.getLogger(__name__)

# --- Torch7 structure check -------------------------------------------------------------

_NIL, _NUMBER, _STRING, _TABLE, _TORCH, _BOOLEAN = 0, 1, 2, 3, 4, 5
_FUNCTIONS = (6, 7, 8)
# The tensor and storage classes torchfile reads, with their element sizes in bytes.
_ITEMSIZE = {"Byte": 1, "Char": 1, "Short": 2, "Int": 4, "Long": 8, "Float": 4, "Double": 8}
_CUDA = {"Cuda": 4, "CudaByte": 1, "CudaChar": 1, "CudaShort": 2, "CudaInt": 4, "CudaDouble": 8}
_TENSOR_ITEMSIZE = {f"torch.{k}Tensor": n for k, n in (*_ITEMSIZE.items(), *_CUDA.items())}
_STORAGE_ITEMSIZE = {f"torch.{k}Storage": n for k, n in (*_ITEMSIZE.items(), *_CUDA.items())}
_MAX_DEPTH = 64
_MAX_NAME = 256
_MAX_DIMS = 8


@dataclass
class _Storage:
    length: int


class _T7Scanner:
    """Walks a Torch7 object stream without building it (§4.2 of the reference)."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "rb")  # noqa: SIM115 - closed by scan_t7
        self.size = path.stat().st_size
        self.objects: dict[int, object] = {}

    def fail(self, problem: str):
        raise DataError(self.path, f"is not a usable Torch7 file: {problem} (at byte {self.file.tell():,})")

    def read(self, fmt: str):
        count = struct.calcsize(fmt)
        data = self.file.read(count)
        if len(data) < count:
            self.fail("truncated")
        return struct.unpack("<" + fmt, data)

    def skip(self, count: int, what: str) -> None:
        if count < 0 or self.file.tell() + count > self.size:
            self.fail(f"{what} of {count:,} bytes runs past the end of the {self.size:,}-byte file (truncated?)")
        self.file.seek(count, 1)

    def string(self, limit: int | None = None) -> bytes:
        (length,) = self.read("i")
        if length < 0 or (limit is not None and length > limit):
            self.fail(f"string of absurd length {length:,}")
        if self.file.tell() + length > self.size:
            self.fail(f"string of {length:,} bytes runs past the end of the file (truncated?)")
        return self.file.read(length)

    def obj(self, depth: int = 0):
        if depth > _MAX_DEPTH:
            self.fail(f"objects nested deeper than {_MAX_DEPTH}")
        (tag,) = self.read("i")
        if tag == _NIL:
            return None
        if tag == _NUMBER:
            return self.read("d")[0]
        if tag == _BOOLEAN:
            return self.read("i")[0]
        if tag == _STRING:
            return self.string()
        if tag in _FUNCTIONS:
            self.fail("it holds a Lua function; a saved network has none")
        if tag not in (_TABLE, _TORCH):
            self.fail(f"unknown object tag {tag}")
        (index,) = self.read("i")
        if index in self.objects:
            return self.objects[index]
        if tag == _TABLE:
            table: dict = {}
            self.objects[index] = table
            (entries,) = self.read("i")
            if entries < 0 or entries * 8 > self.size - self.file.tell():
                self.fail(f"table of absurd size {entries:,}")
            for _ in range(entries):
                key = self.obj(depth + 1)
                table[key if isinstance(key, (int, float, bytes)) else id(key)] = self.obj(depth + 1)
            return table
        version = self.string(_MAX_NAME)
        name = self.string(_MAX_NAME) if version.startswith(b"V ") else version
        return self.torch_object(index, name.decode("latin-1"), depth)

    def torch_object(self, index: int, name: str, depth: int):
        if name in _TENSOR_ITEMSIZE or name in _STORAGE_ITEMSIZE:
            if name in _STORAGE_ITEMSIZE:
                (length,) = self.read("q")
                nbytes = length * _STORAGE_ITEMSIZE[name] if length >= 0 else -1
                self.skip(nbytes, f"{name} of {length:,} elements")
                self.objects[index] = _Storage(length)
                return self.objects[index]
            self.objects[index] = None  # as torchfile: a tensor cannot refer to itself
            self.tensor(name, depth)
            return None
        if not name.startswith("nn."):
            self.fail(f"unexpected class {name!r}; a saved network holds nn modules and tensors")
        self.objects[index] = name
        if not isinstance(self.obj(depth + 1), dict):
            self.fail(f"{name} whose fields are not a table")
        return name

    def tensor(self, name: str, depth: int) -> None:
        (dims,) = self.read("i")
        if not 0 <= dims <= _MAX_DIMS:
            self.fail(f"{name} with {dims} dimensions")
        sizes = self.read(f"{dims}q") if dims else ()
        strides = self.read(f"{dims}q") if dims else ()
        (offset,) = self.read("q")
        storage = self.obj(depth + 1)
        if storage is None or not dims:
            return
        if not isinstance(storage, _Storage):
            self.fail(f"{name} whose storage is not a storage")
        if any(size < 0 for size in sizes) or any(stride < 0 for stride in strides) or offset < 1:
            self.fail(f"{name} with negative sizes, strides or offset {sizes} {strides} {offset}")
        if 0 in sizes:
            return
        last = offset - 1 + sum((size - 1) * stride for size, stride in zip(sizes, strides, strict=True))
        if last >= storage.length:
            self.fail(f"{name} of size {list(sizes)} reaches element {last:,} of a {storage.length:,}-element storage")


def scan_t7(path: str | Path) -> None:
    """Raise DataError naming `path` unless it is a well-formed Torch7 stream of modules and tensors."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "does not exist")
    scanner = _T7Scanner(path)
    try:
        scanner.obj()
    except RecursionError:
        scanner.fail("objects nested too deeply")
    finally:
        scanner.file.close()


# --- SoundNet ---------------------------------------------------------------------------

# Module index in soundnet5_final.t7 → (our layer, nOut, nIn, kH) of its conv (§4.1); the
# batch norm of each conv is the next module.
SOUNDNET5_T7_CONVS = {
    0: ("conv1", 32, 1, 64),
    4: ("conv2", 64, 32, 32),
    8: ("conv3", 128, 64, 16),
    12: ("conv4", 256, 128, 8),
}
SOUNDNET5_T7_HEADS = (("conv5a", 1000), ("conv5b", 401))  # module 15, a ConcatTable
_BN_FIELDS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}


def _typename(value) -> str:
    """The Torch class of a torchfile object, or the Python type of anything else."""
    import torchfile

    if isinstance(value, torchfile.TorchObject):
        return value.torch_typename().decode("latin-1")
    return type(value).__name__


def _field(module, name: str):
    """A field of a torchfile TorchObject (its table has bytes keys)."""
    table = getattr(module, "_obj", None)
    return table.get(name.encode()) if isinstance(table, dict) else None


def _module(path: Path, modules: dict, index: int, typename: str):
    module = modules.get(index + 1)
    found = _typename(module)
    if found != typename:
        raise DataError(path, f"module {index} is {found}, expected {typename}: not SoundNet5's layout")
    return module


def _array(path: Path, module, index: int, field: str, shape: tuple[int, ...]) -> np.ndarray:
    value = _field(module, field)
    if not isinstance(value, np.ndarray) or value.shape != shape:
        got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
        raise DataError(path, f"module {index} ({_typename(module)}) has {field} {got}, expected {shape}")
    value = np.array(value, dtype=np.float32)  # a copy: torchfile's arrays are views of its storages
    if not np.isfinite(value).all():
        raise DataError(path, f"module {index} has non-finite values in {field}")
    return value


def _conv(path: Path, module, index: int, layer: str, n_out: int, n_in: int, k_h: int) -> dict:
    weight = _array(path, module, index, "weight", (n_out, n_in, k_h, 1))
    return {
        f"SoundNet.{layer}/kernel": weight.transpose(2, 3, 1, 0),  # [out,in,kH,kW] → [kH,kW,in,out]
        f"SoundNet.{layer}/bias": _array(path, module, index, "bias", (n_out,)),
    }


def read_soundnet_t7(path: str | Path) -> dict[str, np.ndarray]:
    """SoundNet5's arrays from `soundnet5_final.t7`, keyed by this project's variable paths."""
    import torchfile

    path = Path(path)
    scan_t7(path)
    try:
        # No list heuristic: it fails on tables of arrays (§4.3); modules stay a dict 1..n.
        net = torchfile.load(str(path), use_list_heuristic=False)
    except Exception as error:  # torchfile raises bare exceptions of many kinds
        raise DataError(path, f"torchfile cannot read it ({error!r})") from None
    if _typename(net) != "nn.Sequential":
        raise DataError(path, "does not hold an nn.Sequential network")
    modules = _field(net, "modules")
    if not isinstance(modules, dict) or len(modules) < 16:
        count = len(modules) if isinstance(modules, dict) else 0
        raise DataError(path, f"network has {count} modules; SoundNet5 has at least 16")
    arrays: dict[str, np.ndarray] = {}
    for index, (layer, n_out, n_in, k_h) in SOUNDNET5_T7_CONVS.items():
        arrays.update(
            _conv(path, _module(path, modules, index, "nn.SpatialConvolution"), index, layer, n_out, n_in, k_h)
        )
        norm = _module(path, modules, index + 1, "nn.SpatialBatchNormalization")
        for field, name in _BN_FIELDS.items():
            arrays[f"SoundNet.{layer}.norm/{name}"] = _array(path, norm, index + 1, field, (n_out,))
    heads = _module(path, modules, 15, "nn.ConcatTable")
    branches = _field(heads, "modules")
    if isinstance(branches, dict) and len(branches) == 2:
        for (layer, n_out), branch in zip(SOUNDNET5_T7_HEADS, (branches.get(1), branches.get(2)), strict=True):
            if _typename(branch) != "nn.SpatialConvolution":
                raise DataError(path, f"module 15 branch {layer} is not an nn.SpatialConvolution")
            arrays.update(_conv(path, branch, 15, layer, n_out, 256, 16))
    else:
        log.info("%s: module 15 has no conv5a/conv5b heads; converting conv1-conv4 only", path)
    return arrays


def save_arrays(arrays: dict[str, np.ndarray], out: str | Path) -> None:
    with atomic_path(out) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)


def _unpacked(source: Path, member: str, work: Path, max_bytes: int | None) -> Path:
    """`source` itself, or its member `member` copied out of it when it is an archive."""
    import tarfile
    import zipfile

    from avdistill.fetch.download import extract_member

    if source.is_file() and (zipfile.is_zipfile(source) or tarfile.is_tarfile(source)):
        return extract_member(source, member, work / member, max_bytes)
    return source


def convert_soundnet(
    source: str | Path, out: str | Path, member: str = "soundnet5_final.t7", max_bytes: int | None = 2 << 30
) -> dict[str, tuple]:
    """`soundnet_models_public.zip` (or the bare .t7) → `out` (.npz). Returns the shapes written."""
    source = Path(source)
    with tempfile.TemporaryDirectory(dir=Path(out).parent if Path(out).parent.exists() else None) as work:
        arrays = read_soundnet_t7(_unpacked(source, member, Path(work), max_bytes))
    save_arrays(arrays, out)
    log.info("wrote %d SoundNet arrays from %s to %s", len(arrays), source, out)
    return {name: array.shape for name, array in arrays.items()}


# --- ResNet-50 --------------------------------------------------------------------------

_SLIM_VARIABLE = {"kernel": "weights", "bias": "biases"}


def slim_name(keras_path: str) -> str:
    """`resnet_v1_50.block1.unit_1.bottleneck_v1.conv1/kernel` → `resnet_v1_50/block1/.../conv1/weights`."""
    layer, variable = keras_path.rsplit("/", 1)
    return f"{layer.replace('.', '/')}/{_SLIM_VARIABLE.get(variable, variable)}"


def resnet_variables() -> dict[str, tuple[int, ...]]:
    """Keras path → shape of every ResNet-50 variable a checkpoint provides (all but logits)."""
    from avdistill.networks.build import build_model

    model = build_model("resnet50", 1, crop_size=32)  # the weights do not depend on the crop
    return {v.path: tuple(v.shape) for v in model.weights if not v.path.startswith("resnet_v1_50.logits/")}


def read_resnet_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """The slim ResNet-50 arrays of a (V1 or V2) checkpoint, keyed by this project's paths."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file() and not Path(f"{path}.index").is_file():
        raise DataError(path, "checkpoint does not exist")
    try:
        reader = tf.train.load_checkpoint(str(path))
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except (tf.errors.OpError, ValueError) as error:
        raise DataError(
            path, f"is not a TensorFlow checkpoint ({error.message if hasattr(error, 'message') else error})"
        ) from None
    expected = resnet_variables()
    problems = []
    for keras_path, shape in expected.items():
        name = slim_name(keras_path)
        if name not in shapes:
            problems.append(f"no {name}")
        elif tuple(shapes[name]) != shape or dtypes[name] != tf.float32:
            problems.append(f"{name} is {dtypes[name].name}{list(shapes[name])}, expected float32{list(shape)}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(path, f"is not a slim resnet_v1_50 checkpoint: {'; '.join(problems[:3])}{more}")
    arrays = {keras_path: reader.get_tensor(slim_name(keras_path)) for keras_path in expected}
    bad = [slim_name(k) for k, array in arrays.items() if not np.isfinite(array).all()]
    if bad:
        raise DataError(path, f"has non-finite values in {bad[0]}")
    return arrays


def convert_resnet(
    source: str | Path, out: str | Path, member: str = "resnet_v1_50.ckpt", max_bytes: int | None = 2 << 30
) -> dict[str, tuple]:
    """`resnet_v1_50_2016_08_28.tar.gz` (or the bare .ckpt) → `out` (.npz), logits excluded."""
    source = Path(source)
    with tempfile.TemporaryDirectory(dir=Path(out).parent if Path(out).parent.exists() else None) as work:
        arrays = read_resnet_checkpoint(_unpacked(source, member, Path(work), max_bytes))
    save_arrays(arrays, out)
    log.info("wrote %d ResNet-50 arrays from %s to %s", len(arrays), source, out)
    return {name: array.shape for name, array in arrays.items()}
