"""What a run costs on a Ray worker: the default demo twice through the embedded queue, then
twice through the server's queue joined to a real `ray start --head` with token auth, as the
README's cluster section sets it up (docs/ray.md's figures).

    python -m tools.raybench                 # 2 runs each way, the default image demo
    python -m tools.raybench --runs 3

The head runs on this machine with one CPU, a token of its own in a temporary folder (never
~/.ray), and is stopped before the command returns. Each run's figure is its job's elapsed
time as the queue reports it (the page's "done in N s"); the first run on a new worker also
pays for importing torch and building the model there.

Not for: the behaviour (tests/test_ray.py checks that), or a class (tools.loadtest).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.loadtest.server import free_port

ROOT = Path(__file__).resolve().parent.parent


def timed_runs(queue, config, runs: int) -> list[float]:
    """Submit the config `runs` times, one after the other; each job's elapsed seconds."""
    seconds = []
    for i in range(runs):
        job_id = queue.submit(config, owner=f"bench-{i}")
        while (view := queue.get(job_id, f"bench-{i}")).state in ("queued", "running"):
            time.sleep(0.1)
        if view.state != "done":
            raise RuntimeError(f"run {i + 1} ended {view.state}: {view.note}")
        seconds.append(view.elapsed_s)
    return seconds


def start_head(folder: Path) -> tuple[str, dict]:
    """`ray start --head` with token auth (RAY_AUTH_MODE=token, the token in its own file)."""
    token = folder / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    mark = {"TLS_RAYBENCH_HEAD": secrets.token_hex(8)}  # finds our head's processes, and only those
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), **mark}
    port = free_port()
    head = ["ray", "start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false"]
    subprocess.run(
        [*head, f"--temp-dir={folder / 'r'}", "--disable-usage-stats"], env=env, check=True, timeout=120, capture_output=True
    )
    return f"127.0.0.1:{port}", env


def stop_head(env: dict) -> None:
    """Stop the processes our `ray start` made (they carry its mark), not another user's Ray."""
    mark = f"TLS_RAYBENCH_HEAD={env['TLS_RAYBENCH_HEAD']}".encode()
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()):
        try:
            if mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2, help="runs each way, one after the other (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=0, help="override the demo's epochs (a shorter figure)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the head
    import ray

    from tlcore.serve import server_queue
    from tlcore.train import presets

    config = presets.image()
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    os.environ.pop("TLS_RAY_ADDRESS", None)
    here = timed_runs(server_queue(), config, args.runs)
    print("embedded queue (trained in the server): " + ", ".join(f"{s:.1f} s" for s in here), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="tlsray-", dir="/tmp"))  # short: Ray's socket paths are limited
    address, env = start_head(folder)
    try:
        os.environ.update(TLS_RAY_ADDRESS=address, RAY_AUTH_TOKEN_PATH=env["RAY_AUTH_TOKEN_PATH"])
        queue = server_queue()
        status = queue.wait_joined(60)
        if status.state != "connected":
            raise RuntimeError(f"the server did not join the head: {status}")
        remote = timed_runs(queue, config, args.runs)
        print("Ray worker (token auth, 1 CPU):          " + ", ".join(f"{s:.1f} s" for s in remote), flush=True)
    finally:
        ray.shutdown()
        stop_head(env)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
