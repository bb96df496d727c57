"""The CUDA graphs' pool hook (stasis_engine.vllm._graphs): when it acts, and its refusals. The pool itself is
exercised on a GPU by gpu/vllm/device/graph_pool_probe.py."""

from __future__ import annotations

import sys
import types

import pytest

from stasis_engine.errors import StasisEngineError
from stasis_engine.vllm import _graphs


def test_off_by_default_and_without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_graphs.ENV, raising=False)
    assert _graphs.install_from_env() is False
    monkeypatch.setenv(_graphs.ENV, "gpu")
    assert _graphs.install_from_env() is False


def test_sleep_outside_a_vllm_process_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_graphs.ENV, "sleep")
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    assert _graphs.install_from_env() is False


def test_a_bad_value_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_graphs.ENV, "on")
    with pytest.raises(StasisEngineError, match=r"STASIS_VLLM_GRAPHS='on'.*gpu.*sleep"):
        _graphs.install_from_env()


def test_not_cuda_is_a_reason_to_keep_vllms_pool() -> None:
    platform = types.SimpleNamespace(is_cuda=lambda: False)
    assert _graphs._unsuitable(platform) == "not CUDA"
    assert _graphs.installed() is False
