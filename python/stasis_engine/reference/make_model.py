"""``make-model``: deterministic random Llama weights as Hugging Face safetensors shards plus config.json.

Each tensor is drawn from its own generator, seeded from (seed, tensor name), as ``normal(0, init_std)``
(norm weights are ones), so a tensor's values do not depend on the order or sharding. Values depend on
the generator's device: the same seed gives the same model on every CPU, and on every GPU of one kind.
config.json is written last: a directory without it is incomplete and is rewritten.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

from .phases import emit
from .presets import PRESETS

SHARD_BYTES = 2 * 10**9


def _seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (1 << 63)


def _is_complete(out: Path, preset: str, seed: int) -> bool:
    try:
        with open(out / "config.json") as f:
            meta = json.load(f).get("stasis", {})
    except (OSError, ValueError):
        return False
    return meta.get("preset") == preset and meta.get("seed") == seed


def make_model(
    preset: str,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    device: str = "auto",
    shard_bytes: int = SHARD_BYTES,
    force: bool = False,
) -> dict[str, Any]:
    """Write the model; returns a summary. Skips (``"skipped": True``) when ``out`` already holds it."""
    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}, expected one of {', '.join(PRESETS)}")
    path = Path(out)
    if not force and _is_complete(path, preset, seed):
        return {"out": str(path), "skipped": True}
    start = time.perf_counter()
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    from .model import build_meta_model

    spec = PRESETS[preset]
    model = build_meta_model(LlamaConfig.from_dict(dict(spec.config)))
    params = [(n, tuple(p.shape), p.dtype) for n, p in model.named_parameters()]
    dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    if device == "cuda" and dev.type != "cuda":
        raise RuntimeError("--device cuda, but torch sees no CUDA device")

    shards: list[list[tuple[str, tuple[int, ...], Any]]] = [[]]
    size = 0
    for item in params:
        nbytes = _numel(item[1]) * torch.empty((), dtype=item[2]).element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(item)
        size += nbytes

    path.mkdir(parents=True, exist_ok=True)
    for stale in [*path.glob("*.safetensors"), path / "config.json", path / "model.safetensors.index.json"]:
        stale.unlink(missing_ok=True)
    names = (
        ["model.safetensors"]
        if len(shards) == 1
        else [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    )
    weight_map: dict[str, str] = {}
    total = 0
    for fname, shard in zip(names, shards, strict=True):
        tensors = {}
        for name, shape, dtype in shard:
            tensors[name] = _draw(torch, name, shape, dtype, spec.init_std, seed, dev).cpu()
            weight_map[name] = fname
            total += tensors[name].numel() * tensors[name].element_size()
        save_file(tensors, str(path / fname), metadata={"format": "pt"})
        os.chmod(path / fname, 0o644)  # safetensors creates 0600; the server may run as another user
        del tensors
    if len(shards) > 1:
        with open(path / "model.safetensors.index.json", "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    config = {
        **spec.config,
        "stasis": {
            "preset": preset,
            "seed": seed,
            "generator": dev.type,
            "init_std": spec.init_std,
            "tokenizer": "bytes-v1",
        },
    }
    tmp = path / "config.json.partial"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
    os.replace(tmp, path / "config.json")
    return {
        "out": str(path),
        "skipped": False,
        "bytes": total,
        "files": len(names),
        "generator": dev.type,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _draw(torch: Any, name: str, shape: tuple[int, ...], dtype: Any, std: float, seed: int, dev: Any) -> Any:
    if name.endswith("norm.weight"):
        return torch.ones(shape, dtype=dtype, device=dev)
    g = torch.Generator(device=dev)
    g.manual_seed(_seed(seed, name))
    return torch.randn(shape, generator=g, device=dev, dtype=torch.float32).mul_(std).to(dtype)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m stasis_engine.reference make-model",
        description="Write a deterministic random Llama model (safetensors + config.json).",
    )
    p.add_argument(
        "--config", choices=sorted(PRESETS), default="3b", help="3b: Llama-3.2-3B's shape (bf16); tiny: CPU tests"
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="where to draw the weights")
    p.add_argument("--shard-gb", type=float, default=SHARD_BYTES / 1e9, help="shard size in GB (default 2)")
    p.add_argument("--force", action="store_true", help="rewrite even if DIR already holds this model")
    a = p.parse_args(argv)
    emit(
        "stasis-make-model",
        make_model(a.config, a.out, seed=a.seed, device=a.device, shard_bytes=int(a.shard_gb * 1e9), force=a.force),
    )
    return 0
