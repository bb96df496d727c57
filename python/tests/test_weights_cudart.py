"""The ctypes binding to torch's libcudart: every symbol resolves and failures become StasisEngineErrors.

Runs without a GPU wherever torch ships its CUDA runtime (the PyPI Linux wheels do); calls then fail with
cudaErrorNoDevice / cudaErrorInsufficientDriver, which is what the error path needs.
"""

from __future__ import annotations

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.weights import _cudart


@pytest.fixture
def rt() -> _cudart.CudaRuntime:
    path = _cudart._loaded_libcudart()
    if path is None:
        pytest.skip("this torch build has no dynamic libcudart")
    return _cudart.CudaRuntime(path)


def test_weights_cudart_binds_every_symbol(rt: _cudart.CudaRuntime) -> None:
    assert torch.__version__  # torch loaded the runtime we bound
    assert "libcudart" in rt.path


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_weights_cudart_errors_are_stasis_errors(rt: _cudart.CudaRuntime) -> None:
    with pytest.raises(StasisEngineError) as e:
        rt.set_device(0)
    assert e.value.code == "cuda_error" and "cudaSetDevice(0) failed: cudaError" in e.value.message
    with pytest.raises(StasisEngineError):
        rt.stream_create()
    assert rt.pointer_device(0x1000) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_weights_gpu_targets_without_cuda_fail_clearly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stasis_engine.weights import Extent, dump, load_into

    buf = torch.zeros(4096, dtype=torch.uint8)
    path = tmp_path / "x.stasisw"
    dump([Extent(buf.data_ptr(), 4096)], path, device="cpu")
    with pytest.raises(StasisEngineError) as e:
        load_into([Extent(buf.data_ptr(), 4096)], path)  # default device: CUDA
    assert e.value.code == "bad_argument" and 'device="cpu"' in (e.value.hint or "")
    with pytest.raises(StasisEngineError) as e:
        load_into([Extent(buf.data_ptr(), 4096)], path, device="cuda:0")
    assert e.value.code == "cuda_error"
