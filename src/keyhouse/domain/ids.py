"""Entity ids: ``<prefix>_`` + 26 lowercase characters, time-ordered (a lowercase ULID).

The 26 characters are Crockford base32 (``0-9a-z`` minus ``i l o u``): 10 for the creation time in
milliseconds, 16 for 80 random bits. Within one millisecond the random part is incremented, so ids
made by one process sort in creation order; ``order_by=id[DESC]`` is therefore newest first.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_BODY = re.compile(r"[a-z\d]{26}", re.ASCII)
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def new_ulid(now_ms: int | None = None) -> str:
    """26 characters; monotonic within this process."""
    global _last
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        last_ms, last_rand = _last
        if ms > last_ms:
            rand = secrets.randbits(80)
        elif last_rand + 1 < 2**80:
            ms, rand = last_ms, last_rand + 1
        else:  # this millisecond's random space is used up: borrow the next millisecond
            ms, rand = last_ms + 1, secrets.randbits(80)
        _last = (ms, rand)
    return _encode(ms, 10) + _encode(rand, 16)


def new_id(prefix: str) -> str:
    return f"{prefix}_{new_ulid()}"


def is_id(prefix: str, value: str) -> bool:
    """True when ``value`` is ``<prefix>_`` followed by 26 lowercase alphanumerics (Paddle's pattern)."""
    head = prefix + "_"
    return value.startswith(head) and _ID_BODY.fullmatch(value[len(head) :]) is not None
