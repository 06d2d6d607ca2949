"""Peak memory and CPU time of process trees, sampled from /proc while a benchmark runs.

Each *group* is a root process and all its descendants (a gunicorn master with its workers,
PostgreSQL with its backends). A process that dies between samples (a Schrödinger crash)
keeps the CPU time it had at its last sample; the loss is at most one interval's worth.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cpu_ticks: int       # utime + stime
    rss_bytes: int
    start_ticks: int     # distinguishes a reused pid


def read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "; comm may contain spaces
    return Proc(pid, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]) * PAGE, int(fields[19]))


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages (PostgreSQL's shared buffers) split among their users."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def all_procs() -> dict[int, Proc]:
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (proc := read_proc(int(name))) is not None:
            found[proc.pid] = proc
    return found


def descendants(root: int, procs: dict[int, Proc]) -> list[Proc]:
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            tree.append(procs[pid])
        todo += children.get(pid, [])
    return tree


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


# name -> the root pids of that group, re-resolved at each sample (a crashed program gets a new pid)
Groups = Callable[[dict[int, Proc]], dict[str, list[int]]]


@dataclass
class GroupStats:
    peak_rss_bytes: int = 0
    peak_pss_bytes: int = 0
    cpu_ticks: int = 0
    processes_seen: int = 0
    _last: dict[tuple[int, int], int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float | int]:
        return {"peak_rss_mib": round(self.peak_rss_bytes / MIB, 1),
                "peak_pss_mib": round(self.peak_pss_bytes / MIB, 1),
                "cpu_seconds": round(self.cpu_ticks / TICK, 2), "processes_seen": self.processes_seen}


class Sampler:
    """Samples every ``interval`` seconds on a thread between start() and stop()."""

    def __init__(self, groups: Groups, interval: float = 0.5) -> None:
        self.groups = groups
        self.interval = interval
        self.stats: dict[str, GroupStats] = {}
        self._baseline: dict[tuple[int, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="procstats", daemon=True)
        self._machine: tuple[int, int] = (0, 0)
        self.machine_busy_fraction = 0.0
        self.started = self.stopped = 0.0

    def start(self) -> Sampler:
        procs = all_procs()
        self._baseline = {(p.pid, p.start_ticks): p.cpu_ticks for p in procs.values()}
        self._machine = busy_ticks()
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        self.stopped = time.monotonic()
        busy, total = busy_ticks()
        if total > self._machine[1]:
            self.machine_busy_fraction = (busy - self._machine[0]) / (total - self._machine[1])

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        procs = all_procs()
        for name, roots in self.groups(procs).items():
            stats = self.stats.setdefault(name, GroupStats())
            tree = {p.pid: p for root in roots for p in descendants(root, procs)}.values()
            stats.peak_rss_bytes = max(stats.peak_rss_bytes, sum(p.rss_bytes for p in tree))
            stats.peak_pss_bytes = max(stats.peak_pss_bytes, sum(pss_bytes(p.pid) for p in tree))
            for proc in tree:
                key = (proc.pid, proc.start_ticks)
                if key not in stats._last:
                    stats.processes_seen += 1
                used = proc.cpu_ticks - self._baseline.get(key, 0)
                stats.cpu_ticks += used - stats._last.get(key, 0)
                stats._last[key] = used

    def cpu_seconds_total(self, names: list[str] | None = None) -> float:
        return sum(s.cpu_ticks for n, s in self.stats.items() if names is None or n in names) / TICK

    def rss_mib_total(self, names: list[str]) -> float:
        return round(sum(s.peak_rss_bytes for n, s in self.stats.items() if n in names) / MIB, 1)
