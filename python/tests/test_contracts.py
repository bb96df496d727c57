"""The engine side against the cross-language contracts (contracts/*.schema.json): the error codes it can raise,
a real error as it reports it, and the stager's jobs as the restore writes them. The stager's own lines are checked
where its tests run it (test_weights_stage.py: every line it writes goes through ``stager_lines``)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from _contracts import assert_contract, validator

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights.format import read_header
from stasis_engine.weights.stage import parse_job

PACKAGE = Path(__file__).resolve().parents[1] / "stasis_engine"


def _codes_in_source() -> dict[str, str]:
    """Every error code written as a literal in the package: the first argument of ``StasisEngineError``, a
    ``code=`` keyword, a ``"code"`` key of a dict, an assignment to ``code``; code -> where."""
    found: dict[str, str] = {}

    def note(node: ast.AST | None, where: str) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.setdefault(node.value, where)
        elif isinstance(node, ast.IfExp):
            note(node.body, where)
            note(node.orelse, where)

    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                if getattr(node.func, "id", None) == "StasisEngineError" and node.args:
                    note(node.args[0], where)
                for kw in node.keywords:
                    if kw.arg == "code":
                        note(kw.value, where)
                if getattr(node.func, "attr", None) == "get" and len(node.args) == 2:
                    key = node.args[0]
                    if isinstance(key, ast.Constant) and key.value == "code":
                        note(node.args[1], where)
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == "code":
                        note(v, where)
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "code" for t in node.targets):
                note(node.value, where)
    return found


def test_every_error_code_the_engine_side_writes_is_in_the_contract() -> None:
    schema = validator("engine-error").schema
    assert isinstance(schema, dict)
    codes = set(schema["properties"]["code"]["enum"])
    found = _codes_in_source()
    assert len(found) > 30, f"the scan found only {sorted(found)}"
    missing = {c: w for c, w in found.items() if c not in codes}
    assert not missing, (
        f"codes missing from src/contracts/engine-errors.ts (then node scripts/gen-schemas.mjs): {missing}"
    )


def test_a_real_error_is_reported_as_the_contract_says(tmp_path: Path) -> None:
    (tmp_path / "w.stasisw").write_bytes(b"not a weights file")
    with pytest.raises(StasisEngineError) as got:
        read_header(str(tmp_path / "w.stasisw"))
    assert_contract(got.value.to_dict(), "engine-error")
    with pytest.raises(StasisEngineError) as missing:
        read_header(str(tmp_path / "absent.stasisw"))
    assert missing.value.code == "weights_missing"
    assert_contract(missing.value.to_dict(), "engine-error")


def test_a_contract_with_an_unknown_code_refuses_it() -> None:
    bad = StasisEngineError("no_such_code", "x").to_dict()
    assert list(validator("engine-error").iter_errors(bad)), "an unknown code must break the contract"


def test_jobs_as_the_contract_allows_them_are_taken_and_those_it_refuses_are_refused() -> None:
    arena = {
        "id": "j1",
        "file": "/w",
        "gpu": "GPU-1",
        "socket": "/s",
        "arena_size": 4096,
        "reserve_bytes": 0,
        "hold": True,
        "tensors": [{"name": "a", "offset": 0, "nbytes": 1024, "dtype": "float32", "shape": [256]}],
    }
    extents = {
        "file": "/w",
        "gpu": "GPU-1",
        "socket": "/s",
        "hold": False,
        "extents": [{"address": 1 << 40, "size": 4096}, {"address": (1 << 40) + 8192, "size": 2048}],
    }
    for job in (arena, extents):
        assert_contract(job, "stage-job")
        assert parse_job(json.dumps(job))["arena_size"] == (4096 if job is arena else 6144)
    no_socket = {k: v for k, v in arena.items() if k != "socket"}
    assert list(validator("stage-job").iter_errors(no_socket))
    with pytest.raises(StasisEngineError, match="'socket'"):
        parse_job(json.dumps(no_socket))
    pin = {"op": "pin", **{k: v for k, v in no_socket.items() if k not in ("reserve_bytes", "hold")}}
    assert_contract(pin, "stage-control")
    assert parse_job(json.dumps(pin), socket_needed=False)["pieces"] == [4096]


def test_the_one_shot_stager_answers_a_bad_job_with_an_error_line_of_the_contract() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stasis_engine.weights.stage"],
        input='{"file": "/w"}\n',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    [line] = [json.loads(x) for x in out.stdout.splitlines()]
    assert_contract(line, "stager-line")
    assert line["event"] == "error" and line["error"]["code"] == "bad_argument"
