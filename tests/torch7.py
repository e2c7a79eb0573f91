"""A test-only Torch7 writer (`torch.save` binary format, §4.2 of the reference), and the
SoundNet5 fixture it writes. Written from the format description, not from any reader."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5


@dataclass
class Module:
    """An nn.* object: its class name and field table."""

    typename: str
    fields: dict = field(default_factory=dict)
    version: int = 1


@dataclass
class Tensor:
    """A FloatTensor whose header can lie: `sizes` and `count` replace the true ones."""

    array: np.ndarray
    sizes: tuple | None = None
    count: int | None = None


class Writer:
    def __init__(self, file):
        self.file = file
        self.next_index = 0

    def _index(self) -> int:
        self.next_index += 1
        return self.next_index

    def int32(self, value: int) -> None:
        self.file.write(struct.pack("<i", value))

    def int64(self, *values: int) -> None:
        self.file.write(struct.pack(f"<{len(values)}q", *values))

    def string(self, value: bytes) -> None:
        self.int32(len(value))
        self.file.write(value)

    def torch_header(self, typename: str, version: int = 1) -> None:
        self.int32(TORCH)
        self.int32(self._index())
        self.string(f"V {version}".encode())
        self.string(typename.encode())

    def obj(self, value) -> None:
        if value is None:
            self.int32(NIL)
        elif isinstance(value, bool):
            self.int32(BOOLEAN)
            self.int32(int(value))
        elif isinstance(value, (int, float)):
            self.int32(NUMBER)
            self.file.write(struct.pack("<d", float(value)))
        elif isinstance(value, (str, bytes)):
            self.int32(STRING)
            self.string(value.encode() if isinstance(value, str) else value)
        elif isinstance(value, (dict, list)):
            items = list(value.items()) if isinstance(value, dict) else [(i + 1, v) for i, v in enumerate(value)]
            self.int32(TABLE)
            self.int32(self._index())
            self.int32(len(items))
            for key, item in items:
                self.obj(key)
                self.obj(item)
        elif isinstance(value, Module):
            self.torch_header(value.typename, value.version)
            self.obj(value.fields)
        elif isinstance(value, np.ndarray):
            self.tensor(value)
        elif isinstance(value, Tensor):
            self.tensor(value.array, value.sizes, value.count)
        else:
            raise TypeError(type(value))

    def tensor(self, array: np.ndarray, sizes=None, count=None) -> None:
        array = np.ascontiguousarray(array, dtype=np.float32)
        self.torch_header("torch.FloatTensor")
        self.int32(array.ndim)
        self.int64(*(array.shape if sizes is None else sizes))
        self.int64(*(s // array.itemsize for s in array.strides))
        self.int64(1)  # storageOffset + 1
        self.torch_header("torch.FloatStorage")
        self.int64(array.size if count is None else count)
        self.file.write(array.tobytes())


def save(path, value) -> None:
    with open(path, "wb") as file:
        Writer(file).obj(value)


# SoundNet5 as cvondrick/soundnet's main_train_small.lua builds it (§4.1):
# (nIn, nOut, kH, dH, padH) of conv1-conv4; each is followed by BN, ReLU and (but conv4) a pool.
SOUNDNET5_CONVS = [(1, 32, 64, 2, 32), (32, 64, 32, 2, 16), (64, 128, 16, 2, 8), (128, 256, 8, 2, 4)]


def conv(rng, n_in, n_out, k_h, d_h, pad_h) -> Module:
    return Module(
        "nn.SpatialConvolution",
        {
            "nInputPlane": n_in,
            "nOutputPlane": n_out,
            "kW": 1,
            "kH": k_h,
            "dW": 1,
            "dH": d_h,
            "padW": 0,
            "padH": pad_h,
            "weight": rng.normal(0, 1 / np.sqrt(n_in * k_h), (n_out, n_in, k_h, 1)).astype(np.float32),
            "bias": rng.normal(0, 0.1, n_out).astype(np.float32),
            "train": False,
        },
    )


def batch_norm(rng, n) -> Module:
    return Module(
        "nn.SpatialBatchNormalization",
        {
            "weight": rng.uniform(0.5, 1.5, n).astype(np.float32),
            "bias": rng.normal(0, 0.1, n).astype(np.float32),
            "running_mean": rng.normal(0, 0.1, n).astype(np.float32),
            "running_var": rng.uniform(0.5, 2.0, n).astype(np.float32),
            "eps": 1e-5,
            "momentum": 0.1,
            "affine": True,
        },
        version=2,
    )


def soundnet5_network(rng, heads: tuple[int, int] | None = None) -> Module:
    """The 19-module nn.Sequential of soundnet5_final.t7 with random weights.

    heads: the output planes of conv5a/conv5b in the ConcatTable at index 15 ((1000, 401)
    in the real file); None leaves it empty, as a reader only needs it without num_classes.
    """
    modules = []
    for index, (n_in, n_out, k_h, d_h, pad_h) in enumerate(SOUNDNET5_CONVS):
        modules += [conv(rng, n_in, n_out, k_h, d_h, pad_h), batch_norm(rng, n_out), Module("nn.ReLU")]
        if index < 3:
            modules.append(Module("nn.SpatialMaxPooling", {"kW": 1, "kH": 8, "dW": 1, "dH": 8}))
    branches = [conv(rng, 256, n_out, 16, 12, 4) for n_out in heads] if heads else []
    modules.append(Module("nn.ConcatTable", {"modules": branches}))
    modules += [Module("nn.ParallelTable"), Module("nn.FlattenTable"), Module("nn.ParallelTable")]
    assert len(modules) == 19 and modules[15].typename == "nn.ConcatTable"
    return Module("nn.Sequential", {"modules": modules, "train": False})
