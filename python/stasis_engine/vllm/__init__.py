"""The vLLM integration: ``--worker-extension-cls stasis_engine.vllm.StasisWorkerExtension``.

Importing this package imports neither vLLM nor torch; the worker methods import them when called. Inside a vLLM
process (vLLM imports the extension while it builds the worker, before the model loads) it puts the CUDA graphs'
memory into the sleep pool where the server's environment says ``STASIS_VLLM_GRAPHS=sleep`` (``_graphs``).
"""

from . import _graphs
from .extension import StasisWorkerExtension

_graphs.install_from_env()

__all__ = ["StasisWorkerExtension"]
