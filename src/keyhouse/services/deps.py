"""What every use case needs, built once by ``bootstrap``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from keyhouse.domain.credentials import Pepper
from keyhouse.domain.times import utc_now
from keyhouse.store import Store

if TYPE_CHECKING:
    from keyhouse.services.auth import Authenticator
    from keyhouse.services.integrations import Gate
    from keyhouse.services.previews import PreviewCatalogue
    from keyhouse.services.secret_scanning import ScannerKeys
    from keyhouse.services.usage import UsageRecorder


@dataclass(frozen=True, slots=True)
class Peppers:
    """The current pepper hashes new secrets; older ones still verify what they hashed."""

    current: Pepper
    previous: tuple[Pepper, ...] = ()

    def by_id(self, pepper_id: str) -> Pepper | None:
        for pepper in (self.current, *self.previous):
            if pepper.id == pepper_id:
                return pepper
        return None

    def all(self) -> tuple[Pepper, ...]:
        return (self.current, *self.previous)


@dataclass(slots=True)
class Deps:
    store: Store
    peppers: Peppers
    clock: Callable[[], datetime] = utc_now
    #: ``last_used_at`` is written at most this often per key (Paddle promises 1-hour accuracy).
    touch_interval: timedelta = timedelta(minutes=5)
    authenticator: Authenticator = field(init=False)
    gate: Gate = field(init=False)
    preview_catalogue: PreviewCatalogue = field(init=False)
    usage: UsageRecorder = field(init=False)
    #: Client-token caps (Paddle sets none; keyhouse bounds abuse by a partner or a bug).
    token_cap_per_installation: int = 1_000
    token_cap_per_environment: int = 10_000
    #: Tests only: webhook destinations on private networks and this machine, in live too.
    webhooks_allow_private: bool = False
    #: The secret scanner's public keys; None: ``/secret-scanning/reports`` refuses every report.
    scanner_keys: ScannerKeys | None = None

    def __post_init__(self) -> None:
        # Imported here: both keep a reference back to these deps, and their modules import this one.
        from keyhouse.services.auth import Authenticator
        from keyhouse.services.integrations import Gate
        from keyhouse.services.previews import PreviewCatalogue
        from keyhouse.services.usage import UsageRecorder

        self.authenticator = Authenticator(self)
        self.gate = Gate(self)
        self.preview_catalogue = PreviewCatalogue(self)
        self.usage = UsageRecorder(self)
