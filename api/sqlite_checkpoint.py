"""SQLite's WAL checkpoints, taken off the group-commit writer's path.

In WAL mode a commit appends pages to the `-wal` file; a checkpoint copies them back into the
database file and syncs it. By default SQLite checkpoints inside whichever COMMIT takes the WAL past
1,000 pages, so every few seconds under load one batch's COMMIT also copied and synced the whole WAL
(2–10 ms with the disk quiet, 12–57 ms with the machine busy, measured by
`bench/pauses.py`), and every request in that batch and queued behind it
waited for it.

Here a thread with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)` every `interval`
seconds. PASSIVE takes neither the writer's lock nor the readers', so the writer keeps appending
while pages are copied, and the sqlite3 module releases the GIL while SQLite works, so the event
loop is not held either.

The WAL starts again from its beginning only when a write begins with every frame already copied.
Under steady writes a checkpoint running beside the writer rarely ends between two batches, so the
WAL grew past 4,000 pages in ten seconds at 64 requests a second. The app's connections therefore
keep SQLite's own checkpoint in the COMMIT, at `BACKSTOP_PAGES` instead of 1,000: when it fires,
this thread has already copied nearly every frame, so it copies the few left, syncs, and the next
write restarts the WAL. That bounds the WAL at about 16 MB, and also covers this thread stopping.

Durability does not depend on checkpoints: with `synchronous=FULL` (api/db.py) each COMMIT syncs
the WAL before it returns, and a checkpoint only moves already durable pages.
"""

import contextlib
import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 4_000  # ~16 MB of WAL at SQLite's 4 KB pages


class Checkpointer:
    """A daemon thread that checkpoints one SQLite file's WAL every `interval` seconds."""

    def __init__(self, path: str, interval: float = 0.25) -> None:
        self.path = path
        self.interval = interval
        self.runs = 0  # completed checkpoints, for tests and metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cheqpoint-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.exception("WAL checkpointer: cannot open %s; SQLite's automatic checkpoint remains", self.path)
            return
        with contextlib.closing(connection):
            connection.execute("PRAGMA synchronous=FULL")  # the checkpoint syncs the database file
            while not self._stop.wait(self.interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # a locked or busy file: try again next time
                    log.debug("WAL checkpoint skipped: %s", error)
                    continue
                self.runs += 1
