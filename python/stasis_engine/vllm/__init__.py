"""The vLLM integration: ``--worker-extension-cls stasis_engine.vllm.StasisWorkerExtension``.

Importing this package imports neither vLLM nor torch; the worker methods import them when called.
"""

from .extension import StasisWorkerExtension

__all__ = ["StasisWorkerExtension"]
