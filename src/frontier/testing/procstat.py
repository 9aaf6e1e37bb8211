"""CPU time of a running stack's processes from /proc (Linux), split into engine and framework.

A stack is the process trees under its root pids, plus processes whose command line holds a marker (a Ray
session directory) and their trees, for processes that were reparented. CPU is utime+stime of every thread.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Process titles of vLLM's engine core and its workers (vLLM's own, and Ray Serve LLM's Ray executor worker).
ENGINE_TITLES = ("VLLM::EngineCore", "VLLM::Worker", "ray::RayWorkerWrapper")
_PYTHON_OPTS_WITH_VALUE = {"-X", "-W", "-Q"}
_RAY_METHOD_SUFFIX = re.compile(r"^(ray::[^.\s]+)\.\w+$")
_IMPORTED = re.compile(r"(?:from|import) ([\w.]+)")


@dataclass(frozen=True)
class Proc:
    """One process at one instant: ``starttime`` (clock ticks after boot) tells a reused pid apart."""

    pid: int
    ppid: int
    starttime: int
    cpu_s: float
    label: str
    cmdline: str
    state: str = "R"  # Z: a zombie, gone but for its exit status


def process_label(args: list[str], comm: str) -> str:
    """A short, stable name: a process title (``VLLM::EngineCore``, ``ray::ServeController``), a Python
    script or module, or the executable's basename."""
    if not args or not args[0].strip():
        return comm
    first = args[0].strip()
    if "::" in first:
        title = first.split("  ")[0].strip()  # setproctitle may pad the title with spaces
        match = _RAY_METHOD_SUFFIX.match(title)  # a Ray actor's title names the method it is running
        return match.group(1) if match else title
    exe = os.path.basename(first.split(" ")[0])
    if not exe.startswith("python"):
        return exe
    rest = iter(args[1:])
    for arg in rest:
        if arg == "-m":
            return next(rest, exe)
        if arg == "-c":  # e.g. multiprocessing's resource tracker: name the module the code imports
            code = next(rest, "")
            match = _IMPORTED.search(code)
            return f"{exe} -c {match.group(1) if match else code[:30]}"
        if arg in _PYTHON_OPTS_WITH_VALUE:
            next(rest, None)
        elif not arg.startswith("-"):
            return os.path.basename(arg)
    return exe


def read_proc(pid: int, proc_root: str | Path = "/proc") -> Proc | None:
    """The process ``pid`` now, or None if it is gone."""
    base = Path(proc_root) / str(pid)
    try:
        stat = (base / "stat").read_text()
        raw_cmdline = (base / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm sits in parentheses and may itself hold spaces or parentheses: split at the last ')'.
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    args = [a for a in raw_cmdline.decode(errors="replace").split("\0") if a]
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        starttime=int(fields[19]),
        cpu_s=(int(fields[11]) + int(fields[12])) / CLK_TCK,
        label=process_label(args, comm),
        cmdline=" ".join(args),
        state=fields[0],
    )


def all_processes(proc_root: str | Path = "/proc") -> dict[int, Proc]:
    procs = {}
    for entry in Path(proc_root).iterdir():
        if entry.name.isdigit() and (proc := read_proc(int(entry.name), proc_root)) is not None:
            procs[proc.pid] = proc
    return procs


def stack_processes(roots: Iterable[int], markers: Iterable[str] = (),
                    procs: dict[int, Proc] | None = None) -> dict[int, Proc]:
    """The stack's processes: ``roots`` and processes whose command line holds a marker, with their descendants."""
    procs = all_processes() if procs is None else procs
    markers = [m for m in markers if m]
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    todo = [pid for pid in roots if pid in procs]
    todo += [p.pid for p in procs.values() if any(m in p.cmdline for m in markers)]
    found: dict[int, Proc] = {}
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = procs[pid]
            todo.extend(children.get(pid, ()))
    return found


def is_engine(label: str) -> bool:
    return label.startswith(ENGINE_TITLES)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds a stack used over a window: engine, framework, and framework by process label."""

    engine_s: float
    framework_s: float
    framework_by_label: dict[str, float]
    engine_labels: tuple[str, ...]


def cpu_used(before: dict[int, Proc], after: dict[int, Proc]) -> CpuUse:
    """CPU used between two snapshots of a stack. A process that started in between counts whole; one that
    ended in between is lost (its CPU went to no one still listed)."""
    engine = framework = 0.0
    by_label: dict[str, float] = {}
    engine_labels = set()
    for pid, proc in after.items():
        start = before.get(pid)
        used = proc.cpu_s - (start.cpu_s if start is not None and start.starttime == proc.starttime else 0.0)
        if is_engine(proc.label):
            engine += used
            engine_labels.add(proc.label)
        else:
            framework += used
            by_label[proc.label] = by_label.get(proc.label, 0.0) + used
    return CpuUse(engine, framework, by_label, tuple(sorted(engine_labels)))


class StackMeter:
    """Snapshots of one stack's processes, found afresh each time (Ray starts workers as it goes)."""

    def __init__(self, roots: Iterable[int], markers: Iterable[str] = (), proc_root: str | Path = "/proc") -> None:
        self.roots = list(roots)
        self.markers = list(markers)
        self.proc_root = proc_root

    def snapshot(self) -> dict[int, Proc]:
        return stack_processes(self.roots, self.markers, all_processes(self.proc_root))


def alive(procs: Iterable[Proc], proc_root: str | Path = "/proc") -> list[Proc]:
    """Those of ``procs`` still running: same pid and start time, not a zombie."""
    return [p for p in procs if (now := read_proc(p.pid, proc_root)) is not None
            and now.starttime == p.starttime and now.state != "Z"]


def end_processes(procs: Iterable[Proc], grace_s: float = 20.0) -> None:
    """SIGTERM those of ``procs`` still running, then SIGKILL whatever is left after ``grace_s``."""
    left = alive(procs)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = alive(left)
