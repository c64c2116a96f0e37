"""Exposure reports from a secret scanner (GitHub's secret-scanning partner program).

A report is trusted only when signed: ECDSA P-256 over SHA-256 of the raw body, base64 in
``Github-Public-Key-Signature``, by the key named in ``Github-Public-Key-Identifier``. The public
keys are configuration (GitHub publishes them at ``api.github.com/meta/public_keys/secret_scanning``;
the operator saves that file), never fetched at request time, so a network attacker cannot swap them.

A leaked API key that still works is revoked inside the request that reports it. Look-alikes whose
checksum fails are answered ``false_positive`` before any database read, so a flood of random
strings costs no queries.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from keyhouse.domain import credentials, exposures, keys
from keyhouse.domain.errors import BadRequest, Forbidden
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.exposures import ExposureSource, ReportedToken
from keyhouse.domain.integrations import AuditEntry
from keyhouse.services import events
from keyhouse.services.deps import Deps
from keyhouse.services.keys import key_event
from keyhouse.store import Transaction

UNSIGNED = "Secret-scanning reports must be signed (Github-Public-Key-Identifier and -Signature headers)."
BAD_SIGNATURE = "The report's signature does not verify against any configured scanner key."


@dataclass(frozen=True, slots=True)
class ScannerKeys:
    """The scanner's public keys by identifier."""

    keys: Mapping[str, ec.EllipticCurvePublicKey]

    @classmethod
    def from_github_json(cls, text: str) -> ScannerKeys:
        """GitHub's published format: ``{"public_keys": [{"key_identifier", "key" (PEM)}, ...]}``."""
        document = json.loads(text)
        found: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in document.get("public_keys", []):
            public = load_pem_public_key(entry["key"].encode())
            if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
                raise ValueError(f"scanner key {entry['key_identifier']} is not an ECDSA P-256 key")
            found[str(entry["key_identifier"])] = public
        return cls(found)

    def verify(self, identifier: str | None, signature: str | None, body: bytes) -> None:
        """Raise ``Forbidden`` unless ``body`` was signed by the named key."""
        if not identifier or not signature:
            raise Forbidden(UNSIGNED)
        public = self.keys.get(identifier)
        if public is None:
            raise Forbidden(BAD_SIGNATURE)
        try:
            public.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise Forbidden(BAD_SIGNATURE) from None


async def handle_report(
    deps: Deps, identifier: str | None, signature: str | None, body: bytes
) -> list[dict[str, str]]:
    """Verify, then act on every match; the answer GitHub expects, one label per match."""
    if deps.scanner_keys is None:
        raise Forbidden(
            "Secret scanning is not configured on this keyhouse (KEYHOUSE_SECRET_SCANNING_KEYS_FILE)."
        )
    deps.scanner_keys.verify(identifier, signature, body)
    try:
        reported = exposures.parse_report(json.loads(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequest(f"Invalid report: {exc}.") from None
    # Look-alikes (a failed checksum, another format) are answered without touching the database.
    candidates = [m for m in reported if _credential_shaped(m.token)]
    found: dict[int, bool] = {}
    if candidates:
        async with deps.store.transaction() as tx:
            for index, match in enumerate(reported):
                if _credential_shaped(match.token):
                    found[index] = await _handle(deps, tx, match)
    return [exposures.report_answer(m, found.get(i, False)) for i, m in enumerate(reported)]


def _credential_shaped(token: str) -> bool:
    return credentials.parse_api_key(token) is not None or credentials.parse_client_token(token) is not None


async def _handle(deps: Deps, tx: Transaction, match: ReportedToken) -> bool:
    """Act on one well-formed match; whether it is a real credential of this keyhouse."""
    parsed = credentials.parse_api_key(match.token)
    if parsed is None:
        return await _client_token(deps, tx, match)
    key = await tx.get_key(parsed.key_id)
    if key is None or key.environment is not parsed.environment or key.is_legacy:
        return False
    now = deps.clock()
    working, retired = deps.authenticator.match(await tx.secrets_of(key.id), match.token, now)
    if working is None and retired is None:  # a retired secret that leaked is still this key's
        return False
    if await tx.find_exposure(key.id, ExposureSource.GITHUB, match.url[:250] or "unknown") is not None:
        return True  # the same report again (scanners retry): already handled
    exposure = exposures.github_exposure(key, match, now)
    await tx.add_exposure(exposure)
    exposed = keys.mark_exposed(key, now)
    revoked = keys.revoke(exposed, now) if exposure.action_taken is exposures.ActionTaken.REVOKED else exposed
    if revoked is not key:
        await tx.update_key(revoked)
    await events.record(
        tx,
        new_event(
            EventType.API_KEY_EXPOSURE_CREATED,
            exposure.wire(),
            account_id=key.account_id,
            environment=key.environment,
            installation_id=key.installation_id,
            now=now,
        ),
    )
    if revoked.status is not exposed.status:
        await key_event(deps, tx, EventType.API_KEY_REVOKED, revoked)
    return True


async def _client_token(deps: Deps, tx: Transaction, match: ReportedToken) -> bool:
    """Client-side tokens are public by design: recorded in the audit log, never revoked."""
    token = await tx.get_token_by_value(match.token)
    if token is None:
        return False
    await tx.add_audit(
        AuditEntry(
            at=deps.clock(),
            actor=f"secret-scanning:{match.source or 'unknown'}"[:150],
            subject=token.id,
            field="exposed_at",
            old=None,
            new=(match.url or "unknown")[:150],
        )
    )
    return True
