"""Root of the test tree: makes the lab's Python package importable for every tier."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lab"))
