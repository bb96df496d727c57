#!/usr/bin/env python3
"""What a process tree holds in memory, grouped by mapping: the private (dirty and anonymous) bytes that CRIU
writes into a snapshot image, largest first.

    python3 bench/smaps_summary.py ROOT_PID [TOP]
"""
from __future__ import annotations

import collections
import os
import sys


def tree(root: int) -> list[int]:
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids[ppid].append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def groups(pid: int) -> dict[str, list[int]]:
    """mapping name -> [private_dirty, anonymous, rss] bytes."""
    acc: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    name = "?"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                name = head[5] if len(head) > 5 else "[anon]"
                if name.startswith("/") and ".so" in name:
                    name = "libs: " + os.path.basename(name).split(".so")[0]
            elif head[0] == "Private_Dirty:":
                acc[name][0] += int(head[1]) * 1024
            elif head[0] == "Anonymous:":
                acc[name][1] += int(head[1]) * 1024
            elif head[0] == "Rss:":
                acc[name][2] += int(head[1]) * 1024
    return acc


def main() -> None:
    root = int(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:80]
            g = groups(pid)
        except OSError:
            continue
        tot = [sum(v[i] for v in g.values()) for i in range(3)]
        print(f"pid {pid} ({cmd}): private dirty {tot[0] / 1e6:.0f} MB, anonymous {tot[1] / 1e6:.0f} MB, rss {tot[2] / 1e6:.0f} MB")
        for name, v in sorted(g.items(), key=lambda kv: -kv[1][0])[:top]:
            if v[0] >= 1 << 20:
                print(f"  {v[0] / 1e6:9.1f} MB dirty {v[1] / 1e6:9.1f} MB anon  {name[:70]}")


if __name__ == "__main__":
    main()
