"""``python -m stasis_engine.weights info|verify PATH``: print a weights file's header or check its checksums (JSON)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import StasisEngineError
from .checksum import verify
from .format import read_header


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stasis_engine.weights")
    parser.add_argument("command", choices=["info", "verify"])
    parser.add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            h = read_header(args.path)
            out = {
                "kind": h.kind,
                "alignment": h.alignment,
                "data_offset": h.data_offset,
                "file_size": h.file_size,
                "payload_bytes": h.payload_bytes,
                "meta": h.meta,
                "extents": [e.to_json() for e in h.extents],
            }
        else:
            out = verify(args.path).to_dict()
    except StasisEngineError as e:
        print(json.dumps({"error": e.to_dict()}), file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
