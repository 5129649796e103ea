"""A flame graph of the served process under intake load: `.venv/bin/python bench/profile.py`.

Starts the bench's Cheqpoint server on a fresh SQLite file, loads it with wrk (32 connections) and
records it with py-spy (`pip install py-spy`; it reads the process from outside, so the profile
includes the framework, the ORM and the database thread, not only our code). The SVG is written to
`bench/profiles/` (open it in a browser); `--policy` profiles with a policy file, such as
`bench/velocity.yaml`.
"""

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from intake import connection_key, load_with_wrk, start

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--policy", type=Path, help="CHEQPOINT_POLICY_FILE for the server")
    parser.add_argument("--output", type=Path, default=HERE / "profiles" / "intake.svg")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists() or not shutil.which("wrk"):
        raise SystemExit("needs py-spy (pip install py-spy) and wrk (apt-get install wrk)")
    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'profile.db'}"
    headers = {"Authorization": f"Bearer {asyncio.run(connection_key(url))}"}
    env = {"CHEQPOINT_POLICY_FILE": str(args.policy.resolve())} if args.policy else {}
    process, base = start("cheqpoint", url, env)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        recorder = subprocess.Popen([spy, "record", "-o", str(args.output), "-p", str(process.pid),
                                     "-d", str(args.seconds + 3), "-r", "200"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        print(load_with_wrk(base, headers, args.seconds, 32))
        recorder.wait(timeout=args.seconds + 60)
    finally:
        process.terminate()
        process.wait()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
