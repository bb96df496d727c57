"""Fast weights: dump tensors or raw GPU extents to a verifiable file, refill them in place at link speed.

    from stasis_engine.weights import dump, load_into, verify, Extent

    dump(dict(model.named_parameters()), "/snap/weights.stasisw")
    stats = load_into(dict(model.named_parameters()), "/snap/weights.stasisw")   # LoadStats

The format is described in docs/weights-format.md. Importing this package loads neither torch nor CUDA.
"""

from .checksum import verify
from .dump import dump
from .extent import Extent
from .format import Header, read_header
from .load import METHODS, load_into
from .stats import DumpStats, LoadStats, VerifyStats

__all__ = [
    "METHODS",
    "DumpStats",
    "Extent",
    "Header",
    "LoadStats",
    "VerifyStats",
    "dump",
    "load_into",
    "read_header",
    "verify",
]
