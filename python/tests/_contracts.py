"""The cross-language contracts (contracts/*.schema.json at the repository's top, generated from the TypeScript
side's schemas), for tests that check what the engine side really writes or accepts against them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((CONTRACTS / f"{name}.schema.json").read_text()))


def assert_contract(doc: Any, name: str) -> None:
    """Fails naming the first field that breaks contracts/<name>.schema.json."""
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{name}: {errors[0].message} at {list(errors[0].path)} in {json.dumps(doc)[:500]}"


def stager_lines(text: str) -> list[dict[str, Any]]:
    """The stager's stdout, one JSON object per line, each checked against the stager-line contract."""
    lines = [json.loads(x) for x in text.splitlines()]
    for line in lines:
        assert_contract(line, "stager-line")
    return lines
