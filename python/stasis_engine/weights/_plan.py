"""Turning (file range -> target address) copies into a few large reads and copies.

``coalesce`` merges copies that are adjacent both in the file and in one target allocation (views of one
arena become one copy). ``windows`` cuts the file ranges to read into aligned windows (a ring's or a lane's slot)
and lists, per window, the pieces to copy out of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 4096


@dataclass(frozen=True)
class Copy:
    offset: int  # in the file
    address: int  # destination
    size: int
    group: int = -1  # allocation identity; -1: never merged with a neighbour


@dataclass
class Window:
    start: int  # file offset, aligned
    length: int  # aligned, or up to the end of the file
    pieces: list[tuple[int, int, int]] = field(default_factory=list)  # (offset in window, dst address, size)

    @property
    def end(self) -> int:
        return self.start + self.length


def coalesce(copies: list[Copy]) -> list[Copy]:
    """Sort by file offset and merge neighbours contiguous in the file and in the same allocation."""
    out: list[Copy] = []
    for c in sorted((c for c in copies if c.size > 0), key=lambda c: c.offset):
        last = out[-1] if out else None
        if (
            last is not None
            and c.group != -1
            and c.group == last.group
            and last.offset + last.size == c.offset
            and last.address + last.size == c.address
        ):
            out[-1] = Copy(last.offset, last.address, last.size + c.size, last.group)
        else:
            out.append(c)
    return out


def spans(copies: list[Copy], file_size: int, merge_gap: int = 1 << 20) -> list[tuple[int, int]]:
    """Aligned ``(start, end)`` file ranges covering the copies; gaps up to ``merge_gap`` are read through."""
    out: list[list[int]] = []
    for c in copies:
        start = c.offset // ALIGN * ALIGN
        end = min(-(-(c.offset + c.size) // ALIGN) * ALIGN, file_size)
        if out and start - out[-1][1] <= merge_gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def windows(copies: list[Copy], file_size: int, window_bytes: int) -> list[Window]:
    """Windows of at most ``window_bytes`` (a multiple of 4096) over the spans, with their copy pieces.

    ``copies`` must be sorted by offset and disjoint (``coalesce`` output).
    """
    if window_bytes <= 0 or window_bytes % ALIGN:
        raise ValueError(f"window_bytes must be a positive multiple of {ALIGN}, got {window_bytes}")
    out = [
        Window(ws, min(ws + window_bytes, end) - ws)
        for start, end in spans(copies, file_size)
        for ws in range(start, end, window_bytes)
    ]
    j = 0
    for c in copies:
        pos, end = c.offset, c.offset + c.size
        while pos < end:
            while out[j].end <= pos:
                j += 1
            w = out[j]
            n = min(end, w.end) - pos
            w.pieces.append((pos - w.start, c.address + (pos - c.offset), n))
            pos += n
    return [w for w in out if w.pieces]
