"""A TensorFlow-free writer of GZIP TFRecord files holding one `tf.train.SequenceExample`.

Conversion workers only ever write records; importing TensorFlow in each of them cost
~300 MB of libraries per worker for nothing. This module writes the same bytes TensorFlow
would, from the published formats:

- protobuf wire format of `tensorflow/core/example/{example,feature}.proto`
  (`SequenceExample{context=1: Features, feature_lists=2: FeatureLists}`, maps as repeated
  `{key=1, value=2}` entries, `Feature{bytes_list=1, int64_list=3}`, packed int64s);
- TFRecord framing: `uint64 length`, `uint32 masked_crc32c(length)`, `data`,
  `uint32 masked_crc32c(data)`, little-endian;
- GZIP compression of the whole file as TensorFlow's `compression_type="GZIP"` writes it
  (a standard gzip stream, zlib `wbits=31`), so `tf.data.TFRecordDataset` reads it back
  and checks both CRCs.

`tests/test_records.py` checks the result against TensorFlow's own serialisation.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import google_crc32c

_LENGTH_DELIMITED = 2
_UINT64 = (1 << 64) - 1


def _varint(value: int) -> bytes:
    value &= _UINT64  # negative int64s are encoded as their two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def int64_feature(value: int) -> bytes:
    """`Feature{int64_list: Int64List{value: [value]}}` (packed repeated int64)."""
    return _field(3, _field(1, _varint(int(value))))


def bytes_feature(value: bytes) -> bytes:
    """`Feature{bytes_list: BytesList{value: [value]}}`."""
    return _field(1, _field(1, value))


def _map(entries: dict[str, bytes]) -> bytes:
    """The body of a message whose field 1 is `map<string, Message>`."""
    return b"".join(_field(1, _field(1, key.encode()) + _field(2, value)) for key, value in entries.items())


def sequence_example(context: dict[str, bytes], feature_lists: dict[str, list[bytes]]) -> bytes:
    """Serialise a SequenceExample from encoded context features and per-key feature lists."""
    features = _map(context)
    lists = _map({key: b"".join(_field(1, feature) for feature in values) for key, values in feature_lists.items()})
    return _field(1, features) + _field(2, lists)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def write_gzip_tfrecord(path: str | Path, records: list[bytes], level: int) -> None:
    """Write `records` as one GZIP-compressed TFRecord file at `path` (not atomic by itself)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    with open(path, "wb") as file:
        for data in records:
            length = struct.pack("<Q", len(data))
            for part in (length, _masked_crc(length), data, _masked_crc(data)):
                file.write(compressor.compress(part))
        file.write(compressor.flush())
