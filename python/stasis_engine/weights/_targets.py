"""Targets (named tensors or raw extents) checked against a header before any byte is written."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import StasisEngineError
from .extent import Extent
from .format import ExtentRecord, Header


@dataclass(frozen=True)
class Target:
    key: str | int  # tensor name, or address for a raw extent
    address: int
    size: int
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    group: int = -1  # allocation identity (tensor storage); -1 for raw extents, never merged

    @property
    def label(self) -> str:
        return repr(self.key) if isinstance(self.key, str) else f"{self.key:#x}+{self.size}"


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "cuda"
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


def resolve_device(device: Any) -> Device:
    """``None`` (the current CUDA device), "cpu", "cuda", "cuda:N", N, or a torch.device."""
    if device is None or device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise StasisEngineError(
                "bad_argument",
                "raw extents default to the current CUDA device, and CUDA is not available",
                hint='pass device="cpu" for host memory',
            )
        return Device("cuda", torch.cuda.current_device())
    if isinstance(device, int) and not isinstance(device, bool):
        return Device("cuda", device)
    text = str(device)
    if text == "cpu":
        return Device("cpu")
    if text.startswith("cuda:") and text[5:].isdigit():
        return Device("cuda", int(text[5:]))
    raise StasisEngineError("bad_argument", f"device {device!r}, expected 'cpu', 'cuda', 'cuda:N' or N")


def tensor_dtype_name(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def from_source(source: Any, device: Any) -> tuple[str, list[Target], Device]:
    """``(kind, targets, device)`` for a mapping of tensors or a sequence of Extents."""
    if isinstance(source, Mapping):
        targets, dev = _from_tensors(source)
        return "tensors", targets, dev
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        bad = [x for x in source if not isinstance(x, Extent)]
        if bad:
            raise StasisEngineError("bad_argument", f"expected Extent items, got {type(bad[0]).__name__}")
        return "extents", [Target(e.address, e.address, e.size) for e in source], resolve_device(device)
    raise StasisEngineError(
        "bad_argument", f"expected a mapping name -> tensor or a sequence of Extent, got {type(source).__name__}"
    )


def _from_tensors(tensors: Mapping[Any, Any]) -> tuple[list[Target], Device]:
    import torch

    out: list[Target] = []
    devices: set[str] = set()
    for name, t in tensors.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise StasisEngineError("bad_argument", f"expected str -> torch.Tensor, got {name!r} -> {type(t).__name__}")
        device = t.device
        if device.type not in ("cpu", "cuda"):
            raise StasisEngineError("weights_target", f"tensor {name!r} is on {device}, expected cpu or cuda")
        if not t.is_contiguous():
            raise StasisEngineError(
                "weights_target", f"tensor {name!r} is not contiguous", hint="pass .contiguous() tensors"
            )
        devices.add("cpu" if device.type == "cpu" else f"cuda:{device.index}")
        size, address = t.nbytes, t.data_ptr()
        # The allocation a tensor views (its storage's start), without making a storage object for each.
        group = address - t.storage_offset() * t.element_size() if size else -1
        out.append(Target(name, address, size, tensor_dtype_name(t), tuple(t.shape), group))
    if len(devices) > 1:
        raise StasisEngineError(
            "weights_target",
            f"tensors span several devices ({', '.join(sorted(devices))})",
            hint="load each device's tensors with its own call",
        )
    return out, resolve_device(devices.pop() if devices else "cpu")


def check_overlaps(targets: list[Target]) -> None:
    """Two targets sharing bytes (tied weights passed twice, say) would be written twice: refuse."""
    live = sorted((t for t in targets if t.size), key=lambda t: t.address)
    for a, b in itertools.pairwise(live):
        if a.address + a.size > b.address:
            raise StasisEngineError(
                "weights_target",
                f"targets {a.label} and {b.label} overlap in memory",
                hint="pass tied or aliased tensors once",
            )


def match(
    header: Header, kind: str, targets: list[Target], path: Any, strict: bool
) -> list[tuple[ExtentRecord, Target]]:
    """Pair each target with its extent; raise on the first mismatch, naming the extent."""
    if kind != header.kind:
        raise StasisEngineError(
            "weights_layout",
            f"{path} holds {header.kind}, the targets are {kind}",
            hint="load named tensors from a tensor dump and raw extents from an extent dump",
        )
    problems = layout_problems(header.extents, targets, strict)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        code = "weights_target" if problems[0][0] == "target" else "weights_layout"
        raise StasisEngineError(
            code,
            f"{path}: {problems[0][1]}{more}",
            hint="refill the same model (same weights layout) the file was dumped from",
            details={"problems": [p for _, p in problems[:20]], "count": len(problems)},
        )
    by_key = {r.key: r for r in header.extents}
    return [(by_key[t.key], t) for t in targets]


def layout_problems(records: Sequence[ExtentRecord], targets: list[Target], strict: bool) -> list[tuple[str, str]]:
    """Every difference between the file's extents and the targets: ``(category, one-line description)``."""
    by_key = {r.key: r for r in records}
    seen: set[Any] = set()
    out: list[tuple[str, str]] = []
    for t in targets:
        if t.key in seen:
            out.append(("layout", f"target {t.label} is given twice"))
            continue
        seen.add(t.key)
        r = by_key.get(t.key)
        if r is None:
            out.append(("layout", f"target {t.label} has no extent in the file"))
        elif t.size < r.size:
            out.append(("target", f"extent {r.label}: target is smaller than the extent ({t.size} < {r.size} bytes)"))
        elif t.size > r.size:
            out.append(("target", f"extent {r.label}: target is larger than the extent ({t.size} > {r.size} bytes)"))
        elif r.dtype is not None and t.dtype is not None and r.dtype != t.dtype:
            out.append(("target", f"extent {r.label}: dtype {r.dtype} in the file, target is {t.dtype}"))
        elif r.shape is not None and t.shape is not None and r.shape != t.shape:
            out.append(("target", f"extent {r.label}: shape {list(r.shape)} in the file, target is {list(t.shape)}"))
    if strict:
        for r in records:
            if r.key not in seen:
                out.append(("layout", f"extent {r.label} has no target"))
    return out
