"""Connection Keys: 256 random bits, shown once, stored only as a SHA-256 hash.

A key this long needs no slow hash: nobody can guess one, so a fast digest is enough and keeps
authentication cheap on every request.
"""

import hashlib
import secrets

KEY_PREFIX = "cq_"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    """What operators see in listings to tell keys apart: `cq_Ab12Cd…`."""
    return key[: len(KEY_PREFIX) + 6]
