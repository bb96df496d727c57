"""The weights file format: header parsing, length checks, checksums (CPU, CI)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import dump, read_header, verify
from stasis_engine.weights.format import MAGIC, PREFIX


def sample() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "embed": torch.randn(257, 33, generator=g).to(torch.bfloat16),
        "ids": torch.randint(-(2**31), 2**31 - 1, (1000,), dtype=torch.int32, generator=g),
        "norm": torch.randn(7, generator=g),
    }


@pytest.fixture
def wfile(tmp_path: Path) -> Path:
    path = tmp_path / "w.stasisw"
    dump(sample(), path)
    return path


def code_of(excinfo: pytest.ExceptionInfo[StasisEngineError]) -> str:
    return excinfo.value.code


def test_weights_header_round_trip(wfile: Path) -> None:
    h = read_header(wfile)
    assert h.kind == "tensors" and h.alignment == 4096
    assert h.file_size == wfile.stat().st_size and h.file_size % 4096 == 0
    assert h.data_offset % 4096 == 0
    names = {e.name: e for e in h.extents}
    assert names["embed"].dtype == "bfloat16" and names["embed"].shape == (257, 33)
    assert names["embed"].size == 257 * 33 * 2
    for e in h.extents:
        assert e.offset >= h.data_offset and e.offset + e.size <= h.file_size
    assert h.meta["writer"].startswith("stasis_engine")


def test_weights_runs_start_aligned(wfile: Path) -> None:
    h = read_header(wfile)
    # separate tensors are separate allocations, so each starts a run at an aligned offset
    assert all(e.offset % 4096 == 0 for e in h.extents)


def test_weights_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StasisEngineError) as e:
        read_header(tmp_path / "nope.stasisw")
    assert code_of(e) == "weights_missing" and "nope.stasisw" in e.value.message


def test_weights_truncated_file(wfile: Path) -> None:
    size = wfile.stat().st_size
    os.truncate(wfile, size - 4096)
    with pytest.raises(StasisEngineError) as e:
        read_header(wfile)
    assert code_of(e) == "weights_truncated"


def test_weights_file_shorter_than_prefix(tmp_path: Path) -> None:
    p = tmp_path / "tiny"
    p.write_bytes(b"STAS")
    with pytest.raises(StasisEngineError) as e:
        read_header(p)
    assert code_of(e) == "weights_truncated"


def test_weights_file_longer_than_header_says(wfile: Path) -> None:
    with open(wfile, "ab") as f:
        f.write(b"x" * 4096)
    with pytest.raises(StasisEngineError) as e:
        read_header(wfile)
    assert code_of(e) == "weights_length"


def test_weights_bad_magic(wfile: Path) -> None:
    with open(wfile, "r+b") as f:
        f.write(b"NOTSTASI")
    with pytest.raises(StasisEngineError) as e:
        read_header(wfile)
    assert code_of(e) == "weights_bad_header" and "magic" in e.value.message


def test_weights_future_version(wfile: Path) -> None:
    with open(wfile, "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", 99))
    with pytest.raises(StasisEngineError) as e:
        read_header(wfile)
    assert code_of(e) == "weights_bad_header" and "version 99" in e.value.message


def test_weights_corrupt_header_bytes(wfile: Path) -> None:
    with open(wfile, "r+b") as f:
        f.seek(PREFIX.size + 10)
        byte = f.read(1)
        f.seek(PREFIX.size + 10)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(StasisEngineError) as e:
        read_header(wfile)
    assert code_of(e) == "weights_bad_header" and "checksum" in e.value.message


def _rewrite_json(path: Path, mutate) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the header JSON (with a valid header checksum) to test the schema checks behind it."""
    import hashlib

    raw = path.read_bytes()
    magic, version, flags, hlen, data_offset, file_size, _ = PREFIX.unpack(raw[: PREFIX.size])
    doc = json.loads(raw[PREFIX.size : PREFIX.size + hlen])
    mutate(doc)
    body = json.dumps(doc).encode()
    assert PREFIX.size + len(body) <= data_offset
    prefix = PREFIX.pack(magic, version, flags, len(body), data_offset, file_size, hashlib.sha256(body).digest())
    path.write_bytes(prefix + body + bytes(data_offset - PREFIX.size - len(body)) + raw[data_offset:])


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(kind="blobs"), "kind"),
        (lambda d: d.update(alignment=1000), "alignment"),
        (lambda d: d.update(checksum="md5"), "checksum"),
        (lambda d: d["extents"][0].update(offset=10**12), "outside the data region"),
        (lambda d: d["extents"][0].update(checksum="zz"), "64 hex"),
        (lambda d: d["extents"][1].update(name=d["extents"][0]["name"]), "share a name"),
        (lambda d: d["extents"][1].update(offset=d["extents"][0]["offset"]), "overlaps"),
        (lambda d: d["extents"][0].pop("dtype"), "dtype"),
    ],
)
def test_weights_header_schema_errors(wfile: Path, mutate, words: str) -> None:  # type: ignore[no-untyped-def]
    _rewrite_json(wfile, mutate)
    with pytest.raises(StasisEngineError) as e:
        read_header(wfile)
    assert code_of(e) == "weights_bad_header" and words in e.value.message


def test_weights_verify_ok(wfile: Path) -> None:
    stats = verify(wfile, threads=2)
    assert stats.extents == 3 and stats.bytes == read_header(wfile).payload_bytes


def test_weights_verify_detects_corrupt_extent(wfile: Path) -> None:
    h = read_header(wfile)
    target = next(e for e in h.extents if e.name == "ids")
    with open(wfile, "r+b") as f:
        f.seek(target.offset + 100)
        b = f.read(1)
        f.seek(target.offset + 100)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(StasisEngineError) as e:
        verify(wfile)
    assert code_of(e) == "weights_checksum" and "'ids'" in e.value.message
    verify(wfile, names=["embed", "norm"])  # the other extents are fine


def test_weights_checksum_is_plain_sha256(wfile: Path) -> None:
    import hashlib

    h = read_header(wfile)
    raw = wfile.read_bytes()
    for e in h.extents:
        assert hashlib.sha256(raw[e.offset : e.offset + e.size]).hexdigest() == e.checksum


def test_weights_cli_info_and_verify(wfile: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    info = subprocess.run(
        [sys.executable, "-m", "stasis_engine.weights", "info", str(wfile)], capture_output=True, text=True, env=env
    )
    assert info.returncode == 0, info.stderr
    assert len(json.loads(info.stdout)["extents"]) == 3
    bad = subprocess.run(
        [sys.executable, "-m", "stasis_engine.weights", "verify", str(wfile) + ".x"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and json.loads(bad.stderr)["error"]["code"] == "weights_missing"


def test_weights_magic_constant() -> None:
    assert MAGIC == b"STASISWT" and PREFIX.size == 72
