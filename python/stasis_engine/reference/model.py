"""transformers' LlamaForCausalLM, built on the meta device and pointed at views into a weights arena.

The library's own model code does all the math; this module only decides where each parameter lives
(``plan_weights``), binds the model to that memory (``bind_weights``) and fills it from the model's
safetensors files (``read_safetensors``), as an engine's model loader would.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import StasisEngineError
from .arena import align_up


@dataclass(frozen=True)
class Slot:
    """Where one parameter lives in the weights arena."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int
    nbytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": str(self.dtype).removeprefix("torch."),
            "shape": list(self.shape),
            "offset": self.offset,
            "nbytes": self.nbytes,
        }


def load_config(model_dir: str) -> Any:
    from transformers import LlamaConfig

    from . import attention  # registers the engine's attention function with transformers

    config = LlamaConfig.from_pretrained(model_dir)
    config._attn_implementation = attention.NAME
    return config


def build_meta_model(config: Any) -> torch.nn.Module:
    """The model with every parameter on the meta device, in the config's dtype: no memory, no init cost."""
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model: Any = LlamaForCausalLM(config)
    dtype = config.dtype if isinstance(config.dtype, torch.dtype) else torch.float32
    model.to(dtype=dtype)  # constructing does not apply config.dtype (from_pretrained would): bf16 stays bf16
    model.eval()
    return model


def plan_weights(model: torch.nn.Module) -> tuple[list[Slot], int]:
    """One aligned slot per distinct parameter (tied weights once), in the model's parameter order."""
    slots: list[Slot] = []
    offset = 0
    for name, p in model.named_parameters():  # remove_duplicate=True: lm_head tied to embed_tokens appears once
        nbytes = p.numel() * p.element_size()
        slots.append(Slot(name, p.dtype, tuple(p.shape), offset, nbytes))
        offset = align_up(offset + nbytes)
    return slots, offset


def bind_weights(model: torch.nn.Module, arena: torch.Tensor, slots: list[Slot]) -> dict[str, torch.Tensor]:
    """Replace every parameter by a view into ``arena``; tied parameters keep sharing. Returns name -> view."""
    views: dict[str, torch.Tensor] = {}
    replaced: dict[int, torch.nn.Parameter] = {}
    params = dict(model.named_parameters())
    for s in slots:
        view = arena[s.offset : s.offset + s.nbytes].view(s.dtype).view(s.shape)
        views[s.name] = view
        replaced[id(params[s.name])] = torch.nn.Parameter(view, requires_grad=False)
    for module in model.modules():
        for key, p in list(module._parameters.items()):
            if p is not None and id(p) in replaced:
                module._parameters[key] = replaced[id(p)]
    return views


def materialize_buffers(model: torch.nn.Module, config: Any, device: torch.device) -> None:
    """Rebuild what meta construction left empty (the rotary embedding's inv_freq), then check nothing is meta."""
    inner: Any = model.model
    inner.rotary_emb = type(inner.rotary_emb)(config=config).to(device)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.device.type == "meta"]
    if left:
        raise StasisEngineError(
            "model_invalid",
            f"{len(left)} tensors still on the meta device after binding: {', '.join(left[:5])}",
            "the model has parameters or buffers this loader does not know; only LlamaForCausalLM is supported",
        )


def safetensors_files(model_dir: str) -> list[str]:
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
        return [os.path.join(model_dir, n) for n in names]
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return [single]
    raise StasisEngineError(
        "model_missing",
        f"no model.safetensors or model.safetensors.index.json in {model_dir}",
        "create a model with: python -m stasis_engine.reference make-model",
    )


def read_safetensors(model_dir: str, views: dict[str, torch.Tensor], tied: bool) -> dict[str, Any]:
    """Copy every tensor of the model's safetensors files into its view; all names, dtypes, shapes checked.

    Each file is opened, copied and closed in turn, so no mmap of the files outlives the call (whatever is
    still mapped when the process is checkpointed ends up in the snapshot).
    """
    from safetensors import safe_open

    start = time.perf_counter()
    filled: set[str] = set()
    nbytes = 0
    for path in safetensors_files(model_dir):
        with safe_open(path, framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                if name == "lm_head.weight" and tied:
                    continue  # tied to the embedding: the same memory, written once
                dst = views.get(name)
                if dst is None:
                    raise StasisEngineError("model_invalid", f"{path}: tensor {name!r} is not a parameter of the model")
                src = f.get_tensor(name)
                if src.dtype != dst.dtype or tuple(src.shape) != tuple(dst.shape):
                    raise StasisEngineError(
                        "model_invalid",
                        f"{path}: {name} is {src.dtype} {list(src.shape)}, the model expects "
                        f"{dst.dtype} {list(dst.shape)}",
                    )
                dst.copy_(src)
                nbytes += src.numel() * src.element_size()
                filled.add(name)
                del src
    missing = sorted(set(views) - filled)
    if missing:
        raise StasisEngineError(
            "model_invalid",
            f"{len(missing)} parameters missing from the safetensors files of {model_dir}: {', '.join(missing[:5])}",
        )
    if any(v.is_cuda for v in views.values()):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "bytes": nbytes,
        "seconds": round(seconds, 3),
        "gbps": round(nbytes / seconds / 1e9, 3) if seconds else 0,
        "files": len(safetensors_files(model_dir)),
    }
