"""The reference engine: a real Llama server that starts like vLLM, sleeps like vLLM and speaks vLLM's API.

    python -m stasis_engine.reference make-model --config tiny --out /tmp/tiny
    python -m stasis_engine.reference serve --model-dir /tmp/tiny --port 8000 --device cpu

Two processes: an HTTP front end (``frontend``, asyncio, no torch) and an engine process (``engine_main``)
holding the model, spawned by the front end and talking to it over a unix socket pair. See
docs/reference-engine.md. Importing this package loads nothing heavy.
"""
