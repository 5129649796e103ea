"""Public identifiers: a prefix and a time-ordered random part (ULID layout, lower-case Crockford).

Ordering by id is ordering by creation time, which makes "newest first" pagination a plain
`ORDER BY id DESC` with the last id as the cursor.
"""

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


_lock = threading.Lock()
_last = (0, 0)


def new_id(prefix: str) -> str:
    """Ids made in one process never go backwards: within a millisecond the random part counts up,
    so an audit trail written in one transaction reads in the order it was written."""
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis <= _last[0]:
            millis, randomness = _last[0], _last[1] + 1
        else:
            randomness = int.from_bytes(os.urandom(10), "big") >> 1  # headroom to count up
        _last = (millis, randomness)
    return f"{prefix}_{_encode(millis, 10)}{_encode(randomness, 16)}"
