"""stasis_engine: what runs inside an inference engine process (fast weights, the vLLM worker extension)."""

__version__ = "0.1.0"
