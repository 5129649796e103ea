"""Public identifiers: a prefix and a time-ordered random part (ULID layout, lower-case Crockford).

Ordering by id is ordering by creation time, which makes "newest first" pagination a plain
`ORDER BY id DESC` with the last id as the cursor.
"""

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(randomness, 16)}"
