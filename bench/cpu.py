"""The server's CPU per intake request, by thread: `.venv/bin/python bench/cpu.py [--seconds 8] [--policy FILE]`.

On a shared machine the maximum rate moves with how much of a core the server gets; the CPU time it
spends per request moves much less, so it is the figure to compare two versions by (run them
alternately, several times). Starts the bench's Cheqpoint server on a fresh SQLite file, loads it
with wrk at 32 connections and reads each thread's CPU time from /proc before and after.
`--policy bench/velocity.yaml` serves that policy (CHEQPOINT_POLICY_FILE): the difference from a run
without it is what the policy's rules, and the totals they read, cost a request.
"""

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from intake import connection_key, load_with_wrk, start


def thread_cpu(pid: int) -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        seconds[tid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--policy", type=Path, help="a policy file for the server (CHEQPOINT_POLICY_FILE)")
    args = parser.parse_args()
    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'cpu.db'}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    env = {"CHEQPOINT_POLICY_FILE": str(args.policy.resolve())} if args.policy else None
    process, base = start("cheqpoint", url, env)
    try:
        load_with_wrk(base, headers, 1, 32)  # warm up (it runs its own 2 s warm-up too)
        before, began = thread_cpu(process.pid), time.monotonic()
        measured = load_with_wrk(base, headers, args.seconds, 32)
        after, elapsed = thread_cpu(process.pid), time.monotonic() - began
    finally:
        process.terminate()
        process.wait()
    requests = measured["requests_per_s"] * elapsed  # wrk's warm-up inside the window ran at about that rate
    print(f"{measured['requests_per_s']:.0f} requests/s, p99 {measured['p99_ms']:.0f} ms, "
          f"load average {os.getloadavg()[0]:.1f}")
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    for tid, spent in sorted(used.items(), key=lambda item: -item[1]):
        if spent >= 0.01:
            label = "event loop" if tid == str(process.pid) else "thread"
            print(f"  {label} {tid}: {1000 * spent / requests:.3f} ms of CPU a request")
    print(f"  total: {1000 * sum(used.values()) / requests:.3f} ms of CPU a request")


if __name__ == "__main__":
    main()
