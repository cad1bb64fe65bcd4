"""Shared pytest setup: make tests/ importable so test files can import the oracles."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
