"""``python -m stasis_engine.reference {make-model,serve} ...`` (``serve`` may be left out)."""

from __future__ import annotations

import sys
import time

_T0 = time.time()  # the front end's start-up clock starts here

USAGE = """usage: python -m stasis_engine.reference COMMAND ...

commands:
  make-model --config 3b|tiny --out DIR [--seed 0] [--device auto|cuda|cpu] [--force]
  serve --model-dir DIR --port P [--host 127.0.0.1] [--device auto|cuda|cpu] [--max-model-len N]
        [--cuda-graph-sizes 1,2,4,8] [--compile|--no-compile] [--enforce-eager] [--served-model-name NAME]

See docs/reference-engine.md."""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command.startswith("--"):
        command, rest = "serve", argv
    if command == "make-model":
        from .make_model import cli

        return cli(rest)
    if command == "serve":
        from .frontend import main as serve

        return serve(rest, _T0)
    if command == "engine":
        from .engine_main import run

        run(rest)  # does not return
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
