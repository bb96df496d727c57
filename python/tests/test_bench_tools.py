"""The C measuring tools under bench/ build cleanly and refuse bad usage (they run only on the GPU machine)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_pin_costs_builds_and_says_how_to_use_it(tmp_path: Path) -> None:
    binary = tmp_path / "pin_costs"
    subprocess.run(
        ["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(BENCH / "pin_costs.c"), "-ldl", "-pthread"],
        check=True,
    )
    run = subprocess.run([str(binary)], capture_output=True, text=True)
    assert run.returncode == 2 and "usage:" in run.stderr
