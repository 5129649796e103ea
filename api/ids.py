"""Public identifiers: a prefix and a time-ordered random part (ULID layout, lower-case Crockford).

Ordering by id is ordering by creation time, which makes "newest first" pagination a plain
`ORDER BY id DESC` with the last id as the cursor.
"""

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

# Every pair of characters, by the 10 bits it encodes: an id's 26 characters in 13 look-ups instead
# of a division per character (intake makes several ids a request; that loop was a visible share).
_PAIRS = tuple(high + low for high in _ALPHABET for low in _ALPHABET)
_SHIFTS = tuple(range(120, -1, -10))


def _encode_id(millis: int, randomness: int) -> str:
    """The 48-bit time in 10 characters, then the 80-bit random part in 16: 130 bits, 5 a character."""
    value = millis << 80 | randomness
    pairs = _PAIRS
    return "".join([pairs[value >> shift & 1023] for shift in _SHIFTS])


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
    return f"{prefix}_{_encode_id(millis, randomness)}"
