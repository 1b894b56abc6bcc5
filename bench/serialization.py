"""Is JSON right on the wire? Sizes (raw, and inside real Kafka record batches compressed with lz4
and zstd) and encode/decode speed of the real frames in each candidate format.

    python -m bench.serialization [--frames 20000]

Formats, each "full" (every key of the frame) and "uid/ts" (only what the counter needs):
- JSON as it is (the producer's bytes unchanged) and JSON reduced to {"uid", "ts"};
- MessagePack (msgspec.msgpack);
- Avro (fastavro, schemaless records with a schema; full = uid, ts and the rest as a JSON string,
  since the frames' other keys are free-form);
- CBOR (cbor2), the IETF binary JSON.
Encode starts from the parsed frame (what a producer holds); decode is what the consumer needs:
uid and ts, with the fastest decoder each format has (typed msgspec decoders skip the rest).
Batch sizes come from kafka-python's own record batch builder (message format v2, 1 MB batches).
Results: bench/results/serialization.json; the table goes into docs/SERIALIZATION.md.
"""
from __future__ import annotations

import argparse
import io
from typing import Any, Callable

import cbor2
import fastavro
import msgspec
from kafka.record.default_records import DefaultRecordBatchBuilder

from uniqcount.core.frames import parse_frames
from uniqcount.devtools.sample import ensure_sample
from uniqcount.runtime import config

from .measure import calls_per_second, first_lines, machine, markdown_table, write_result, write_section

CODECS = {"none": 0, "lz4": 3, "zstd": 4}
BATCH_BYTES = 1 << 20


class UidTs(msgspec.Struct):
    uid: str
    ts: int


def uid_ts(frame: dict) -> tuple[str, int]:
    """uid and ts of a fully decoded frame."""
    return frame["uid"], frame["ts"]


UID_TS_FIELDS = [{"name": "uid", "type": "string"}, {"name": "ts", "type": "long"}]
AVRO_FULL = fastavro.parse_schema({"type": "record", "name": "Frame", "fields": [
    *UID_TS_FIELDS, {"name": "rest", "type": "string"}]})
AVRO_UID_TS = fastavro.parse_schema({"type": "record", "name": "UidTs", "fields": UID_TS_FIELDS})
AVRO_FULL_READER = fastavro.parse_schema({"type": "record", "name": "Frame", "fields": UID_TS_FIELDS})


def avro_encoder(schema: Any) -> Callable[[dict], bytes]:
    def encode(record: dict) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, record)
        return out.getvalue()
    return encode


def avro_uid_ts(data: bytes) -> tuple[str, int]:
    return uid_ts(fastavro.schemaless_reader(io.BytesIO(data), AVRO_FULL, AVRO_FULL_READER))  # skips `rest`


def formats() -> dict[str, tuple[Callable[[dict], Any], Callable[[Any], bytes], Callable[[bytes], Any]]]:
    """name -> (frame dict to what is encoded, encoder, decoder of uid/ts)."""
    json_uid_ts = msgspec.json.Decoder(UidTs).decode
    msgpack_uid_ts = msgspec.msgpack.Decoder(UidTs).decode

    def reduced(frame: dict) -> dict:
        return {"uid": frame["uid"], "ts": frame["ts"]}

    def avro_rest(frame: dict) -> dict:
        return {"uid": frame["uid"], "ts": frame["ts"], "rest": msgspec.json.encode(
            {k: v for k, v in frame.items() if k not in ("uid", "ts")}).decode()}

    return {
        "JSON, full (as produced)": (lambda f: f, msgspec.json.encode, json_uid_ts),
        "JSON, uid/ts": (reduced, msgspec.json.encode, json_uid_ts),
        "MessagePack, full": (lambda f: f, msgspec.msgpack.encode, msgpack_uid_ts),
        "MessagePack, uid/ts": (reduced, msgspec.msgpack.encode, msgpack_uid_ts),
        "Avro, full (rest as JSON string)": (avro_rest, avro_encoder(AVRO_FULL), avro_uid_ts),
        "Avro, uid/ts": (reduced, avro_encoder(AVRO_UID_TS),
                         lambda d: tuple(fastavro.schemaless_reader(io.BytesIO(d), AVRO_UID_TS).values())),
        "CBOR, full": (lambda f: f, cbor2.dumps, lambda d: uid_ts(cbor2.loads(d))),
        "CBOR, uid/ts": (reduced, cbor2.dumps, lambda d: uid_ts(cbor2.loads(d))),
    }


def batched_bytes(messages: list[bytes], codec: str) -> int:
    """Bytes of the Kafka record batches (v2, up to 1 MB of records each) that carry `messages`."""
    total, builder = 0, None
    for offset, message in enumerate(messages):
        if builder is None:
            builder = DefaultRecordBatchBuilder(2, CODECS[codec], 0, -1, -1, -1, BATCH_BYTES)
        if builder.append(offset, timestamp=1_700_000_000_000 + offset, key=None, value=message, headers=[]) is None:
            total += len(builder.build())
            builder = DefaultRecordBatchBuilder(2, CODECS[codec], 0, -1, -1, -1, BATCH_BYTES)
            builder.append(offset, timestamp=1_700_000_000_000 + offset, key=None, value=message, headers=[])
    return total + (len(builder.build()) if builder is not None else 0)


def measure(lines: list[bytes]) -> list[dict[str, Any]]:
    frames = [msgspec.json.decode(line) for line in lines]
    truth, bad = parse_frames(lines)
    assert not bad
    rows = []
    for name, (shape, encode, decode) in formats().items():
        shaped = [shape(frame) for frame in frames]
        encoded = lines if name.startswith("JSON, full") else [encode(s) for s in shaped]
        decoded = [decode(data) for data in encoded]
        pairs = [(d.uid, d.ts) if isinstance(d, UidTs) else tuple(d) for d in decoded]
        assert pairs == truth, f"{name}: uid/ts do not round-trip"
        n = len(encoded)
        rows.append({
            "format": name,
            "bytes": sum(map(len, encoded)) / n,
            **{f"bytes_in_{codec}_batches": batched_bytes(encoded, codec) / n for codec in CODECS},
            "encode_per_s": calls_per_second(encode, shaped),
            "decode_uid_ts_per_s": calls_per_second(decode, encoded),
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["format", "bytes/frame", "in Kafka batches: none", "lz4", "zstd", "encode frames/s", "decode uid/ts frames/s"],
        ([r["format"], *(f"{r[k]:,.0f}" for k in ("bytes", "bytes_in_none_batches", "bytes_in_lz4_batches",
                                                 "bytes_in_zstd_batches", "encode_per_s", "decode_uid_ts_per_s"))]
         for r in rows), align="---:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000, help="frames of the canonical sample to use")
    args = parser.parse_args()
    sample = ensure_sample(config.load())
    lines = first_lines(sample, args.frames)
    rows = measure(lines)
    result = {"command": f"python -m bench.serialization --frames {args.frames}", "frames": len(lines),
              "sample": str(sample.name), "machine": machine(), "rows": rows}
    write_result("serialization.json", result)
    m = result["machine"]
    write_section(config.REPO / "docs" / "SERIALIZATION.md", "serialization",
                  f"Measured {m['date']} with `{result['command']}` on {len(lines):,} frames of the canonical sample, "
                  f"{m['cores']} cores ({m['cpu']}), Python {m['python']}.\n\n{table(rows)}", "Serialization")
    print(table(rows))


if __name__ == "__main__":
    main()
