"""Benchmarks: attnlab against PyTorch, Hugging Face and other peers, on this machine.

Run ``uv run attnlab bench`` (``--only NAME ...``, ``--quick``). The harness
(:mod:`.harness`) interleaves contenders, reports medians with min–max, paired
speed ratios, the fp32 matmul ceiling and peak memory; :mod:`.runner` runs the
suites and writes a markdown table, JSON and a plot with one panel per case
(:mod:`.report`).
"""

from .harness import (
           Case,
           Contender,
           Setup,
           Stats,
           matmul_ceiling,
           paired_ratios,
           peak_memory_mib,
           time_interleaved,
)
from .runner import PROFILES, SUITES, run

__all__ = ["PROFILES", "SUITES", "Case", "Contender", "Setup", "Stats", "matmul_ceiling",
           "paired_ratios", "peak_memory_mib", "run", "time_interleaved"]
