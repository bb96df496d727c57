"""The engine side's STASIS_* variables: read in one module, a bad value named with what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stasis_engine import config
from stasis_engine.errors import StasisEngineError
from stasis_engine.weights.stage import _max_images


def test_an_unset_or_empty_variable_is_its_default_and_a_set_one_is_parsed() -> None:
    assert config.get("STASIS_VLLM_GRAPHS", {}) == "sleep"
    assert config.get("STASIS_VLLM_GRAPHS", {"STASIS_VLLM_GRAPHS": ""}) == "sleep"
    assert config.get("STASIS_VLLM_GRAPHS", {"STASIS_VLLM_GRAPHS": " GPU"}) == "gpu"
    assert config.get("STASIS_VLLM_CONTEXT_STACK", {}) is None
    assert config.get("STASIS_VLLM_CONTEXT_STACK", {"STASIS_VLLM_CONTEXT_STACK": "keep"}) is None
    assert config.get("STASIS_VLLM_CONTEXT_STACK", {"STASIS_VLLM_CONTEXT_STACK": "1024"}) == 1024


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STASIS_VLLM_GRAPHS", "cpu"),
        ("STASIS_VLLM_GRAPHS", "1"),
        ("STASIS_VLLM_CONTEXT_STACK", "-1"),
        ("STASIS_VLLM_CONTEXT_STACK", "512"),
        ("STASIS_VLLM_CONTEXT_STACK", "1k"),
        ("STASIS_VLLM_CONTEXT_STACK", "2000000"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable_the_value_and_what_was_expected(name: str, value: str) -> None:
    with pytest.raises(StasisEngineError) as e:
        config.get(name, {name: value})
    assert e.value.code == "bad_argument"
    assert name in e.value.message and repr(value) in e.value.message and "expected" in e.value.message


def test_the_keeper_takes_its_pinned_images_limit_on_its_command_line() -> None:
    assert _max_images([]) == 2
    assert _max_images(["--max-images", "5"]) == 5
    for bad in (["--max-images", "0"], ["--max-images"], ["--other", "1"]):
        with pytest.raises(StasisEngineError):
            _max_images(bad)


def test_no_module_but_config_reads_a_stasis_variable_from_the_environment() -> None:
    package = Path(__file__).resolve().parents[1] / "stasis_engine"
    reads = re.compile(r"""os\.environ(\.get\(|\[)\s*["']STASIS_|getenv\(\s*["']STASIS_""")
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.name != "config.py" and reads.search(p.read_text())
    ]
    assert offenders == []
