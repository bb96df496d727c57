"""``serve`` options: parsed once from the command line, validated, handed to the engine process as JSON."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import StasisEngineError
from .api import ModelInfo
from .tokenizer import EOS_ID

DEFAULT_MAX_MODEL_LEN = 4096
DEFAULT_GRAPH_SIZES = (1, 2, 4, 8)
# Prompt widths (tokens) a single prompt's prefill is padded to and replayed from a CUDA graph, as vLLM replays
# small token batches from graphs (its cudagraph capture sizes); longer prompts and batches run eagerly.
DEFAULT_PREFILL_WIDTHS = (16, 32, 64, 128)


@dataclass(frozen=True)
class ServeOptions:
    """What ``serve`` was asked for. ``device="auto"``: CUDA when available; ``compile=None``: on for CUDA only."""

    model_dir: str
    port: int
    host: str = "127.0.0.1"
    device: str = "auto"
    max_model_len: int | None = None
    cuda_graph_sizes: tuple[int, ...] = DEFAULT_GRAPH_SIZES
    prefill_graph_widths: tuple[int, ...] = DEFAULT_PREFILL_WIDTHS
    compile: bool | None = None
    enforce_eager: bool = False
    served_model_name: str | None = None
    #: torch.compile's backend (the CPU tests pass "eager": no compiler needed).
    compile_backend: str = "inductor"

    @property
    def name(self) -> str:
        return self.served_model_name or self.model_dir

    @property
    def max_batch(self) -> int:
        return max(self.cuda_graph_sizes)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> ServeOptions:
        raw = json.loads(text)
        raw["cuda_graph_sizes"] = tuple(raw["cuda_graph_sizes"])
        raw["prefill_graph_widths"] = tuple(raw.get("prefill_graph_widths", DEFAULT_PREFILL_WIDTHS))
        return ServeOptions(**raw)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--cuda-graph-sizes {text!r}: expected integers like 1,2,4,8") from e
    if not sizes or sizes[0] < 1 or sizes[-1] > 256:
        raise argparse.ArgumentTypeError(f"--cuda-graph-sizes {text!r}: expected batch sizes in [1, 256]")
    return sizes


def _widths(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "none"):
        return ()
    try:
        widths = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--prefill-graph-widths {text!r}: expected integers like 16,32,64") from e
    if widths and (widths[0] < 1 or widths[-1] > 4096):
        raise argparse.ArgumentTypeError(f"--prefill-graph-widths {text!r}: expected prompt widths in [1, 4096]")
    return widths


def build_parser(prog: str = "python -m stasis_engine.reference serve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Serve a Llama model with vLLM's API and sleep mode.")
    p.add_argument("--model-dir", required=True, help="directory with config.json and *.safetensors")
    p.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one, printed when ready)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; the control endpoints are unauthenticated, keep it on loopback)",
    )
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument(
        "--max-model-len",
        type=int,
        default=None,
        help=f"context length (default min(max_position_embeddings, {DEFAULT_MAX_MODEL_LEN}))",
    )
    p.add_argument(
        "--cuda-graph-sizes",
        type=_sizes,
        default=DEFAULT_GRAPH_SIZES,
        help="decode batch sizes to capture CUDA graphs for; the largest is the maximum batch (1,2,4,8)",
    )
    p.add_argument(
        "--prefill-graph-widths",
        type=_widths,
        default=DEFAULT_PREFILL_WIDTHS,
        help="prompt widths a single prompt's prefill is padded to and replayed from a CUDA graph "
        "(16,32,64,128; 'none': prefills run eagerly)",
    )
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the decode step (default: on for CUDA, off for CPU)",
    )
    p.add_argument("--enforce-eager", action="store_true", help="no torch.compile and no CUDA graphs (as vLLM's)")
    p.add_argument("--served-model-name", default=None, help="model name in the API (default: --model-dir)")
    return p


def parse_serve_args(argv: list[str]) -> ServeOptions:
    a = build_parser().parse_args(argv)
    if not 0 <= a.port <= 65535:
        raise StasisEngineError("bad_argument", f"--port {a.port}, expected 0..65535")
    return ServeOptions(
        model_dir=a.model_dir,
        port=a.port,
        host=a.host,
        device=a.device,
        max_model_len=a.max_model_len,
        cuda_graph_sizes=a.cuda_graph_sizes,
        prefill_graph_widths=a.prefill_graph_widths,
        compile=a.compile,
        enforce_eager=a.enforce_eager,
        served_model_name=a.served_model_name,
    )


def read_model_config(model_dir: str) -> dict[str, Any]:
    """``config.json`` of a Llama model directory, checked for what the engine needs."""
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError as e:
        raise StasisEngineError(
            "model_missing",
            f"no config.json in {model_dir}",
            "create a model with: python -m stasis_engine.reference make-model",
        ) from e
    except ValueError as e:
        raise StasisEngineError("model_invalid", f"{path} is not valid JSON: {e}") from e
    if config.get("model_type") != "llama":
        raise StasisEngineError("model_invalid", f"{path}: model_type={config.get('model_type')!r}, expected 'llama'")
    for key in ("vocab_size", "max_position_embeddings", "hidden_size", "num_hidden_layers"):
        if not isinstance(config.get(key), int):
            raise StasisEngineError("model_invalid", f"{path}: {key}={config.get(key)!r}, expected an integer")
    if config["vocab_size"] < EOS_ID + 1:
        raise StasisEngineError(
            "model_invalid",
            f"{path}: vocab_size={config['vocab_size']}, the byte tokenizer needs at least {EOS_ID + 1}",
        )
    return config


def model_info(opts: ServeOptions, config: dict[str, Any]) -> ModelInfo:
    limit = config["max_position_embeddings"]
    max_len = opts.max_model_len if opts.max_model_len is not None else min(limit, DEFAULT_MAX_MODEL_LEN)
    if not 2 <= max_len <= limit:
        raise StasisEngineError(
            "bad_argument", f"--max-model-len {max_len}, expected 2..{limit} (max_position_embeddings of the model)"
        )
    eos = config.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) and eos else eos
    if not isinstance(eos, int):
        raise StasisEngineError("model_invalid", f"eos_token_id={config.get('eos_token_id')!r}, expected an integer")
    return ModelInfo(opts.name, config["vocab_size"], max_len, eos)
