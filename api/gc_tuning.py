"""The garbage collector, tuned while the service serves.

A full (generation 2) collection walks every container object the collector tracks. After start-up
that is mostly what the imports and the app built (about 165,000 objects: modules, classes,
functions, SQLAlchemy's and pydantic's structures), none of which will ever be garbage. Under intake
load one full collection ran every several seconds and held the event loop for about 100 ms of CPU
(`bench/pauses.py`), every request in flight waiting behind it. `gc.freeze()` moves everything alive
at that moment into a permanent generation the collector no longer walks (a full collection then
took 4 ms); cycles made later are found and freed as before.
"""

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def frozen_after_startup() -> Iterator[None]:
    """Freeze what exists once the app has started; give it back to the collector when it stops.

    Unfreezing on the way out matters where one process starts and stops apps many times (the
    tests): what an app left behind can then be collected like anything else.
    """
    gc.collect()  # start-up's own garbage is freed now, not frozen with the rest
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
