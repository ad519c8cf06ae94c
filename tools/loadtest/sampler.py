"""The server's memory and CPU from /proc, and the machine's load average."""

from __future__ import annotations

import os
import threading
import time


def family(pid: int) -> list[int]:
    """A process and all its descendants (a CPU server's training processes, tlcore.serve.process_jobs)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


class Sampler(threading.Thread):
    """The server's resident memory (MB) and CPU seconds, every 0.5 s, from /proc: the server
    process and its training processes together (their RSS summed: the libraries both map count
    twice, so the figure errs high)."""

    def __init__(self, pid: int, trace: str | None = None):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop_flag = pid, [], threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.trace = open(trace, "w") if trace else None  # noqa: SIM115 -- closed when the thread ends
        if self.trace:
            self.trace.write("t,pid,name,rss_mb,pss_mb\n")

    def _write_trace(self) -> None:
        """Each process of the family's RSS and PSS (shared pages split between their users)."""
        now = time.monotonic()
        for pid in family(self.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    name = f.read().replace(b"\0", b" ").decode(errors="replace")[:60].replace(",", " ")
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    fields = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[-1:] == ["kB"]}
            except OSError:
                continue
            self.trace.write(f"{now:.2f},{pid},{name},{fields['Rss'] / 1024:.0f},{fields['Pss'] / 1024:.0f}\n")
        self.trace.flush()

    def read(self) -> tuple[float, float, float]:
        rss = cpu = 0.0
        for pid in family(self.pid):
            try:
                one_rss, one_cpu = self._one(pid)
            except (OSError, StopIteration):
                if pid == self.pid:
                    raise
                continue  # a training process that just ended
            rss, cpu = rss + one_rss, cpu + one_cpu
        return time.monotonic(), rss, cpu

    def _one(self, pid: int) -> tuple[float, float]:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return rss, (int(parts[11]) + int(parts[12])) / self.tick  # utime + stime

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.samples.append(self.read())
                if self.trace:
                    self._write_trace()
            except (OSError, StopIteration):
                return
            self.stop_flag.wait(0.5)

    def cpu_between(self, t0: float, t1: float) -> float | None:
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return None
        return (inside[-1][2] - inside[0][2]) / max(inside[-1][0] - inside[0][0], 1e-9)

    def wait_idle(self, at_least: float, at_most: float, window: float = 3.0, busy: float = 0.1) -> float:
        """Sleep `at_least` s, then until the server used under `busy` CPU-s per s over `window` s
        (the closed tabs' jobs cancelled, the queue empty), or `at_most` s in all; the seconds waited."""
        t0 = time.monotonic()
        time.sleep(at_least)
        while time.monotonic() - t0 < at_most:
            now = time.monotonic()
            used = self.cpu_between(now - window, now)
            if used is not None and used < busy:
                break
            time.sleep(0.5)
        return time.monotonic() - t0


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
