"""The timing harness: interleaved repeats, medians with min–max, ratios, ceiling, memory.

How a case is measured (and why):

* **Warm-up.** Each contender runs ``warmup`` times first (allocator, kernels,
  ``torch.compile``), untimed.
* **Interleaved repeats.** Repeat ``r`` times one call of every contender, the
  order rotating by one each repeat. On a shared machine the load changes from
  second to second; interleaving exposes peer and attnlab to the same load, so
  their *ratio* is far steadier than either time.
* **Medians with min–max.** A time is the median of its repeats, shown with the
  fastest and slowest. A speed ratio is the median of the per-repeat ratios
  ``peer time / contender time`` of the same repeat (paired), with their min–max:
  above 1 the contender is faster.
* **Matmul ceiling.** :func:`matmul_ceiling` times a square fp32 matmul: the
  GFLOP/s this machine reaches on the best-case kernel. A case that states its
  FLOPs reports the fraction of that ceiling it reaches.
* **Peak memory.** :func:`peak_memory_mib` resets Linux's peak resident set size
  (``/proc/self/clear_refs``), runs the call once and reads ``VmHWM`` from
  ``/proc/self/status``: the peak RSS above the RSS before the call. This sees
  every allocation PyTorch's CPU allocator makes (``tracemalloc`` does not),
  at page granularity. During the call glibc's ``mmap`` threshold is pinned to
  128 KiB (``mallopt``), so every block from 128 KiB up gets its own mapping and
  is counted, instead of reusing heap memory freed earlier (glibc's default
  threshold drifts up to 32 MiB); afterwards it is pinned at 32 MiB, the default's
  steady state, so timings see the usual allocator. Before the call
  ``malloc_trim(0)`` hands freed heap pages back to the system, so reusing them
  counts too. ``None`` where ``/proc`` is missing (not Linux).

Nothing here asserts a timing: the harness reports, the reader judges.
"""

import ctypes
import ctypes.util
import gc
import os
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

MIB = 2**20


@dataclass(frozen=True)
class Stats:
    """Median, minimum and maximum of some samples (seconds, ratios, ...)."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stats":
        """Summarise ``samples``.

        Raises:
            ValueError: If ``samples`` is empty.

        Example:
            >>> Stats.of([3.0, 1.0, 2.0, 10.0])
            Stats(median=2.5, low=1.0, high=10.0, count=4)
        """
        if len(samples) == 0:
            raise ValueError("samples must not be empty")
        values = [float(x) for x in samples]
        return cls(statistics.median(values), min(values), max(values), len(values))

    def scaled(self, factor: float) -> "Stats":
        """The same statistics multiplied by ``factor > 0`` (e.g. seconds -> ms)."""
        return Stats(self.median * factor, self.low * factor, self.high * factor, self.count)


def paired_ratios(peer: Sequence[float], contender: Sequence[float]) -> Stats:
    """Speed-up of ``contender`` over ``peer`` from times of the same repeats.

    Ratio ``i`` is ``peer[i] / contender[i]``; above 1 the contender is faster.

    Raises:
        ValueError: If the lists differ in length, are empty, or hold a time <= 0.

    Example:
        >>> paired_ratios([2.0, 4.0, 3.0], [1.0, 1.0, 3.0])
        Stats(median=2.0, low=1.0, high=4.0, count=3)
    """
    if len(peer) != len(contender):
        raise ValueError(f"peer and contender need the same number of repeats, got "
                         f"{len(peer)} and {len(contender)}")
    if any(t <= 0 for t in (*peer, *contender)):
        raise ValueError("times must be > 0")
    return Stats.of([p / c for p, c in zip(peer, contender, strict=True)])


@dataclass
class Contender:
    """One way of computing a case: a name, a call, and what it is compared with.

    Args:
        name: Shown in the table (``"torch SDPA"``, ``"attnlab"``, ...).
        fn: The timed call. It must do the whole job (e.g. forward and backward).
        path: The attnlab dispatch path or the peer's implementation, in words.
        target: The speed-up over the case's peer this contender should reach.
        versus: Measure ``target`` against this contender instead of the peer
            (e.g. a quantized path against llama.cpp); the speed-up column stays
            against the peer.
    """

    name: str
    fn: Callable[[], object]
    path: str = ""
    target: float | None = None
    versus: str | None = None


@dataclass
class Setup:
    """What a case's ``make()`` returns: the contenders and how to compare them.

    Args:
        contenders: Peer(s) and attnlab; names must be unique.
        check: Returns the largest absolute difference from the peer's result
            (computed once, untimed): one number for every contender, or a dict
            from contender name to its difference (contenders not in it get none).
        tolerance: The largest difference accepted by ``check``.
        notes: Things the reader should know (skipped peers, settings).
    """

    contenders: list[Contender]
    check: Callable[[], float | dict[str, float]] | None = None
    tolerance: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Case:
    """A benchmark case: built lazily (tensors only exist while it runs).

    Args:
        suite: The benchmark it belongs to (``"sdpa"``, ``"window"``, ...).
        name: What is measured, e.g. ``"causal fwd"``.
        make: Builds the :class:`Setup` (allocates inputs, loads models).
        peer: Name of the contender the others are compared with (None: no ratio).
        n: The sequence length, for the time/memory-vs-N plot.
        flops: Floating-point operations of one call, for GFLOP/s and the ceiling.
        tokens: Tokens one call processes or produces, for tokens/s.
        memory: Also measure each contender's peak memory.
        repeats: Overrides the profile's repeats (for slow cases).
    """

    suite: str
    name: str
    make: Callable[[], Setup]
    peer: str | None = None
    n: int | None = None
    flops: float | None = None
    tokens: int | None = None
    memory: bool = False
    repeats: int | None = None


def time_interleaved(contenders: Sequence[Contender], *, repeats: int,
                     warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each contender, ``repeats`` interleaved rounds after warm-up.

    Round ``r`` runs the contenders in an order rotated by ``r``, so none is
    always first (or always right after another's allocations).

    Raises:
        ValueError: If ``repeats < 1``, ``warmup < 0`` or names are not unique.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise ValueError(f"contender names must be unique, got {names}")
    for contender in contenders:
        for _ in range(warmup):
            contender.fn()
    times: dict[str, list[float]] = {name: [] for name in names}
    gc.collect(0)  # the young generation only: a full collection can take a second
    was_enabled = gc.isenabled()
    gc.disable()  # no collector pauses inside a timed call
    try:
        for r in range(repeats):
            k = r % len(contenders)
            for contender in [*contenders[k:], *contenders[:k]]:
                start = time.perf_counter()
                contender.fn()
                times[contender.name].append(time.perf_counter() - start)
    finally:
        if was_enabled:
            gc.enable()
    return times


def _proc_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            match = re.search(rf"^{field_name}:\s+(\d+) kB", status.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def _libc_call(name: str, *args: int) -> None:
    """Call a glibc allocator function (no-op where there is no glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        getattr(libc, name)(*args)
    except (OSError, AttributeError):
        pass


def peak_memory_mib(fn: Callable[[], object]) -> float | None:
    """Peak resident memory (MiB) that one call of ``fn`` adds; None if not measurable.

    See the module docstring for what is and is not counted.
    """
    gc.collect(1)  # young generations: frees cyclic garbage fast (a full pass can take 1 s)
    _libc_call("malloc_trim", 0)  # hand freed heap pages back: reusing them must fault again
    _libc_call("mallopt", M_MMAP_THRESHOLD, 128 * 1024)
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM (the peak RSS) to the current RSS, after the trim
    except OSError:
        _libc_call("mallopt", M_MMAP_THRESHOLD, 32 * MIB)
        return None
    try:
        before = _proc_kib("VmRSS")
        result = fn()
        peak = _proc_kib("VmHWM")
        del result
    finally:
        _libc_call("mallopt", M_MMAP_THRESHOLD, 32 * MIB)
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024 / MIB


def matmul_ceiling(size: int = 2048, repeats: int = 5) -> Stats:
    """GFLOP/s of a ``size``×``size`` fp32 matmul on this machine's CPU (median, min–max).

    Raises:
        ValueError: If ``size`` or ``repeats`` < 1.
    """
    if size < 1 or repeats < 1:
        raise ValueError(f"size and repeats must be >= 1, got {size} and {repeats}")
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        samples.append(2 * size**3 / (time.perf_counter() - start) / 1e9)
    return Stats.of(samples)


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS does not tell)."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def environment(env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The machine and software a run measured on (``env``: the cases' environment)."""
    import platform

    env = os.environ if env is None else env
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            match = re.search(r"^model name\s*:\s*(.+)$", info.read(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "gpu": torch.cuda.is_available(),
        "env": {name: env[name] for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                             "GOMP_SPINCOUNT", "KMP_BLOCKTIME",
                                             "MKL_NUM_THREADS")
                if name in env},
    }
