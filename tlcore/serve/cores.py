"""How a CPU class server shares its cores: runs at a time, and torch threads for each run.

Small models gain little from many threads (a default fine-tune: 1 thread 30.6 s, 2 threads
20.2 s for six jobs on a quiet 2-core box; two runs of 1 thread each, 20.0 s), so a server
with many cores runs several jobs at once with a few threads each, not one job on all of them.
But a lone run on an otherwise idle server should not leave cores idle: each run's threads
are decided again at its start and at every step (`JobQueue` asks `threads_now` with the
number of runs going, of pages being drawn and of cores other programs keep busy:
`BusyElsewhere`), so a lone run uses every core and gives them back as soon as a second run
starts, pages need the CPU or another program on the machine does.

torch's thread count is per calling thread for the work it runs (OpenMP's per-thread setting,
checked: a worker that sets 1 runs on 1 core while another thread runs on 2); a thread that
never set it takes the last value anyone set. So each worker sets its own.

Workers and threads come from the core count, or from the class file (`cpu_workers`,
`threads_per_job` in class.toml, tlcore.serve.class_limits); 0 means "from the core count":

    cores      runs at a time   threads per run when all are busy   a lone run
    1-3        1                cores                               every core
    4-15       cores // 2       2                                   every core
    16+        cores // 4       4                                   every core

On 2 cores one run at a time on both: six default jobs through the queue took 0.80 of 1 x 1's
time on 1 x 2 and 0.86 on 2 x 1 (tools.queuebench, a loaded box), and a class of 30 with two
runs at a time peaked at 3.3 GB of server memory (tools.loadtest), over the 3 GB goal.

torch's threads wait for each other at the end of every parallel region. By default they spin
there (libgomp), so when the machine has other work and one of a run's threads is off its core,
the others burn the time slice: measured on the shared 2-core box at load average 7-9, 30
training steps of a small CNN took 1.6-4.4 s on 1 thread, 6.6-36 s on 2 spinning threads and
3.1-3.6 s on 2 threads that sleep while they wait (OMP_WAIT_POLICY=PASSIVE; whole runs:
`python -m tools.queuebench --spin`). A class server is never only
training (pages, other runs, other programs), so it never spins for long.

But sleeping at every barrier is slow too: a default fine-tune's three epochs took 3.53 s on 2
sleeping threads against 2.54 s spinning on a quiet box. libgomp spins `GOMP_SPINCOUNT` times
before it sleeps; measured on the quiet 2-core box (train time of the default demo, 2 threads):
0 (passive) 3.53 s, 1,000 3.17 s, 10,000 2.79 s, 100,000 2.59 s, libgomp's default 2.54 s; with
two busy programs beside it: passive 5.0-5.6 s, 10,000 6.4-7.8 s, default 8.1 s. The default demo
in Chromium, click to Finished: 3.6-4.4 s passive, 3.1-3.6 s at 10,000. So app.py spins briefly,
then sleeps (`wait_briefly()`, before torch is first imported): a lone run is fast, and a busy
server's runs drop to one thread while pages are drawn (`threads_now`), where nothing waits.
Set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself to choose otherwise.

Not for: GPUs (one worker per GPU, tlcore.serve.jobs) or the Ray cluster (tlcore.serve.ray_jobs).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


def wait_passively() -> bool:
    """torch's threads sleep instead of spinning while they wait for each other (see above).
    Only before torch is imported (OpenMP reads it once); False when it is too late or the
    environment already chose."""
    import sys

    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


SPIN_COUNT = "10000"  # see above


def wait_briefly() -> bool:
    """torch's threads spin a short while (SPIN_COUNT), then sleep, while they wait for each other
    (see above). Only before torch is imported; False when it is too late or the environment
    already chose."""
    import sys

    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


def hand_over_interpreter(ms: float) -> float:
    """A thread that waits for the interpreter gets it after `ms` milliseconds, not Python's 5
    (sys.setswitchinterval); 0 keeps Python's own. Returns the interval now in force, in seconds.

    A server that trains in its own threads shares one interpreter between the training thread
    and the pages' script threads. Each torch operation lets the interpreter go and must take it
    back when it returns; while a page script holds it, the training thread waits until the
    holder is asked to let go, which Python does only after the switch interval. A default fine-tune
    dispatches a few thousand operations, so at 5 ms those waits outgrow the arithmetic: six
    class-experiment cells beside one busy Python thread (`python -m tools.queuebench --where thread
    --busy 1 --switch-ms 5,1,5,1`, the 2-core box) took 44-46 s at 5 ms and 30 s at 1 ms (0.67-0.68);
    a class of 30 filling a class experiment, 115 s (mean of 8) against 108 s (mean of 7), within
    run-to-run noise (docs/class-experiment.md, session 24). The pages lose nothing measurable: the
    interval only matters while two threads want the interpreter, and handing it over costs microseconds."""
    import sys

    if ms > 0:
        sys.setswitchinterval(ms / 1000)
    return sys.getswitchinterval()


def count() -> int:
    """The cores this process may run on (its affinity mask: a container's or taskset's limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CpuPlan:
    cores: int  # the cores training may use
    workers: int  # runs at a time
    threads: int  # torch threads per run when every worker is busy

    def threads_now(self, running: int, pages: int = 0, elsewhere: float = 0.0) -> int:
        """A run's torch threads now: the cores shared among the `running` runs, less one for each
        page being drawn (the pages are answered first) and one for each core that other programs
        keep busy (`elsewhere`, in cores: `BusyElsewhere`; half a core counts); one core always
        stays with training."""
        taken = max(0, pages) + int(max(0.0, elsewhere) + 0.5)
        free = self.cores - min(taken, self.cores - 1)
        return max(1, free // max(1, running))


def pages_first(elsewhere: float) -> bool:
    """Does a CPU run start behind the server's pages (its nice raised), with `elsewhere` cores kept
    busy by other programs (`BusyElsewhere`)? Only while they keep under half a core busy.

    Inside the server, pages first: a class's clicks and a fresh visitor's page are answered
    while training takes the rest. But a nice value weighs against every program of the same
    scheduler group (Linux's autogroup puts a terminal session's programs in one), not only the
    pages: beside two busy loops started from the server's own terminal, a run at nice 10 got
    about a tenth of a core (tools/neighbours.py). So where other programs keep a core busy the
    run starts at the server's own priority, an equal of theirs, on fewer threads (`threads_now`).
    Programs in other groups (other sessions, containers) share the cores with the server's
    group as a whole, whatever the nice inside it."""
    return elsewhere < 0.5


def per_job(cores: int) -> int:
    """Threads per run when every worker is busy (the table above)."""
    return cores if cores < 4 else 2 if cores < 16 else 4


def plan(cores: int | None = None, *, workers: int = 0, threads: int = 0) -> CpuPlan:
    """The plan for `cores` (this machine's by default); `workers` or `threads` above 0 override
    (the class file). Given only threads, the workers follow: as many as fit in the cores."""
    cores = count() if cores is None else max(1, cores)
    threads = threads if threads > 0 else (max(1, cores // workers) if workers > 0 else per_job(cores))
    workers = workers if workers > 0 else max(1, cores // threads)
    return CpuPlan(cores, workers, min(threads, cores))


HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def box_busy_s() -> float | None:
    """The machine's busy CPU seconds since boot, every core together (Linux's /proc/stat: user to
    steal, less idle and iowait; guest time is in user already); None where there is no /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / HZ if len(ticks) >= 5 else None


def process_busy_s(pid: int) -> float | None:
    """A process's CPU seconds so far (Linux's /proc/PID/stat), None when it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / HZ


class BusyElsewhere:
    """How many cores other programs kept busy lately: the machine's busy time less this process's
    own and its training processes' (`own_pids`), over the last `every_s` or more. A run's torch
    threads wait for each other at every step, so a thread that shares its core with another
    program holds the others back (and spins a while: GOMP_SPINCOUNT above); at nice 10 the
    training threads lose that core almost wholly. Measured on a 2-core box with one busy loop
    (a program at the normal priority) beside it: the server's warm-up runs (the default demo, the
    race's linear probe and full epoch, in a thread at nice 10) took 20.0 s and 19.9 core-s on 2
    threads, 9.9 s and 9.8 on 1, 11.7 s and 11.6 paced by this (7.0 s either way on the quiet box);
    `nice -n 10 python -m tlcore finetune --strategy full --epochs 3 --no-cache-features`, 22.4 s on
    2 threads and 12.1 on 1 (8.8 and 12.3 quiet). Warm runs whose data, model and features were
    ready lost little (`python -m tools.queuebench --jobs 2 --strategy full --elsewhere 1`: 12.8 s
    on 2 threads, 12.4 on 1). So a run leaves such a core alone (`CpuPlan.threads_now`) and takes
    it back when it is free again.

    Read at most every `every_s` (a run asks at every step); 0.0 until two reads are `every_s` apart
    and where the machine has no /proc. Thread-safe."""

    def __init__(
        self,
        own_pids: Callable[[], Iterable[int]] = tuple,
        every_s: float = 0.5,
        *,
        box: Callable[[], float | None] = box_busy_s,
        process: Callable[[int], float | None] = process_busy_s,
        own: Callable[[], float] = lambda: sum(os.times()[:2]),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.own_pids, self.every_s = own_pids, every_s
        self._box, self._process, self._own, self._clock = box, process, own, clock
        self._lock = threading.Lock()
        self._last: tuple[float, float, float, dict[int, float]] | None = None  # (when, box, own, pid -> busy)
        self._cores = 0.0

    def cores(self) -> float:
        """Cores kept busy by other programs in the last window (0.0 when unknown)."""
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last[0] < self.every_s:
                return self._cores
            box = self._box()
            if box is None:
                return 0.0
            children = {pid: busy for pid in self.own_pids() if (busy := self._process(pid)) is not None}
            own = self._own()
            if self._last is not None:
                when, box0, own0, children0 = self._last
                # a training process's time counts as ours only where it was seen both times
                ours = own - own0 + sum(busy - children0[pid] for pid, busy in children.items() if pid in children0)
                self._cores = max(0.0, (box - box0 - ours) / (now - when))
            self._last = (now, box, own, children)
            return self._cores


def on_a_thread_of_its_own(fn: Callable[..., object], *args, name: str) -> None:
    """fn(*args) in a new thread, waited for; what it raises is raised here. The thread starts at the
    caller's priority (the one a job's own thread lowers for itself: tlcore.serve.jobs)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as error:  # noqa: BLE001 -- handed to the caller, who decides
            raised.append(error)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if raised:
        raise raised[0]
