"""Every secret string keyhouse issues: formats, parsing, checksums, obfuscation and keyed hashes.

API key (NOTE: frozen format, Paddle's since May 2025; 69 characters)::

    pdl_sdbx_apikey_01jkdpbhazdpn3wpcya45as9tg_q6TGTJyvoIz7LDtXT65bX7_AQO
    └┬┘ └┬─┘ └─┬──┘ └────────┬───────────────┘ └─────────┬────────┘ └┬┘
     │   │     │             │                           │           └ checksum: CRC32 of everything
     │   │     │             │                           │             before the last "_", as 3 base62
     │   │     │             │                           └ secret: 22 random [A-Za-z0-9] (≈131 bits)
     │   │     │             └ the key's id without "apikey_": 26 [a-z0-9]
     │   │     └ literal
     │   └ environment marker: sdbx | live
     └ literal

The checksum lets a typo or a look-alike be refused without a database read. It is not a secret.

Legacy key (Paddle's before May 2025): 50 random [A-Za-z0-9], no prefix, no id; found by its hash.

Client-side token (NOTE: frozen): ``test_`` (sandbox) or ``live_`` + 27 random lowercase hex.
It is publishable, so it is stored retrievably; it authenticates only client-side operations.

Hashing: HMAC-SHA256 keyed by a server pepper over the whole key string. The secret part has about
131 bits of entropy, so a slow password KDF would add cost and nothing else: no dictionary exists to
attack, and the pepper keeps a stolen database from being checked offline. Each stored hash names the
pepper id that made it, so peppers can rotate. Compare only with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass, field

from keyhouse.domain.accounts import Environment

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ALNUM = string.ascii_letters + string.digits
# re.ASCII: without it \d also matches other scripts' digits ("٠"), which are not part of any format.
API_KEY_RE = re.compile(r"pdl_(sdbx|live)_apikey_([a-z\d]{26})_([A-Za-z\d]{22})_([A-Za-z\d]{3})", re.ASCII)
LEGACY_KEY_RE = re.compile(r"[A-Za-z\d]{50}", re.ASCII)
CLIENT_TOKEN_RE = re.compile(r"(test|live)_[a-f\d]{27}", re.ASCII)
_MARKERS = {"sdbx": Environment.SANDBOX, "live": Environment.LIVE}
_TOKEN_PREFIXES = {"test": Environment.SANDBOX, "live": Environment.LIVE}


@dataclass(frozen=True, slots=True)
class Pepper:
    """A server-side HMAC key. ``id`` is a fingerprint safe to store beside the hashes."""

    key: bytes = field(repr=False)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: verification looks the pepper up by id on every request.
        fingerprint = hmac.new(self.key, b"keyhouse pepper id", hashlib.sha256).hexdigest()[:12]
        object.__setattr__(self, "id", fingerprint)


@dataclass(frozen=True, slots=True)
class ParsedApiKey:
    environment: Environment
    key_id: str
    full: str


@dataclass(frozen=True, slots=True)
class ParsedClientToken:
    environment: Environment
    token: str


def checksum(body: str) -> str:
    """CRC32 of ``body`` folded into exactly 3 base62 characters."""
    value = zlib.crc32(body.encode()) % 62**3
    return BASE62[value // 3844] + BASE62[value // 62 % 62] + BASE62[value % 62]


def random_string(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def format_api_key(environment: Environment, key_id: str, secret: str) -> str:
    body = f"pdl_{environment.key_marker}_{key_id}_{secret}"
    return f"{body}_{checksum(body)}"


def new_api_key_secret(environment: Environment, key_id: str) -> str:
    """A fresh full key for ``key_id``. The only place a plaintext key is born."""
    return format_api_key(environment, key_id, random_string(22))


def new_legacy_key() -> str:
    return random_string(50)


def parse_api_key(value: str) -> ParsedApiKey | None:
    """The key's environment and id, or ``None`` for anything that is not a well-formed key."""
    match = API_KEY_RE.fullmatch(value)
    if match is None or checksum(value[:-4]) != match.group(4):
        return None
    return ParsedApiKey(_MARKERS[match.group(1)], f"apikey_{match.group(2)}", value)


def is_legacy_key(value: str) -> bool:
    return LEGACY_KEY_RE.fullmatch(value) is not None


def new_client_token(environment: Environment) -> str:
    return f"{environment.client_token_prefix}_{secrets.token_hex(14)[:27]}"


def parse_client_token(value: str) -> ParsedClientToken | None:
    if CLIENT_TOKEN_RE.fullmatch(value) is None:
        return None
    return ParsedClientToken(_TOKEN_PREFIXES[value[:4]], value)


def obfuscate_key(environment: Environment | None, key_id: str) -> str:
    """Paddle's ``key`` field: the key up to the first 10 characters of the id, then ``****``.

    A legacy key (``environment`` None) has no ``pdl_`` prefix and no id inside it; it shows its
    keyhouse id instead, so no character of its secret is ever displayed.
    """
    head = key_id[: len("apikey_") + 10]
    if environment is None:
        return f"{head}****"
    return f"pdl_{environment.key_marker}_{head}****"


def hash_secret(pepper: Pepper, secret: str) -> bytes:
    return hmac.digest(
        pepper.key, secret.encode(), "sha256"
    )  # the C one-shot: same bytes, a fraction of the cost


def secret_matches(pepper: Pepper, secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_secret(pepper, secret), stored)


def parse_bearer(header: str) -> str | None:
    """The credential in ``Bearer <credential>`` (scheme in any case: the Node SDK sends ``bearer``)."""
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        return None
    return credential
