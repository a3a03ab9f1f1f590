"""Where the peer libraries live: a separate virtual environment, never factorkit's deps.

Create it with ``bash bench/setup_peers.sh`` (scikit-surprise, implicit, numpy<2); the
benchmarks run the peers with that interpreter in a subprocess on the same data files.
Override with ``FACTORKIT_PEER_PYTHON=/path/to/python``.
"""

import os
from pathlib import Path

PEER_PYTHON = os.environ.get(
    "FACTORKIT_PEER_PYTHON", str(Path(__file__).resolve().parent / ".peers" / "bin" / "python")
)
