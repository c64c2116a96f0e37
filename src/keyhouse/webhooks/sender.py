"""The one function that opens connections to webhook destinations, with the SSRF guard inside it.

The guard resolves the host itself, checks every address it resolves to against the destination
policy (``domain.notifications.refusal``), then connects to the checked address — never to a name
resolved again later — so a DNS answer that changes between check and connect (rebinding) cannot
smuggle a request to an internal address. TLS still verifies the certificate for the host name
(it is sent as SNI and checked against), and ``Host`` carries the name. Redirects are not
followed: a 3xx is a failed attempt like any other non-2xx.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from keyhouse import __version__
from keyhouse.domain.accounts import Environment
from keyhouse.domain.notifications import (
    DELIVERY_TIMEOUT_SECONDS,
    EXCERPT_MAX,
    Outcome,
    address_kind,
    refusal,
    signature,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Sender:
    """Posts signed webhook bodies. One per worker process (it holds an HTTP client)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
        resolver: Resolver = resolve,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver = resolver
        self.unix_time = unix_time
        # No keep-alive: connections go to a checked address with a per-request SNI, and a pooled
        # connection must never carry one destination's request to another's address.
        self.client = httpx.AsyncClient(
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(timeout),
            trust_env=False,  # a proxy from the environment would bypass the guard
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver(self, url: str, environment: Environment, secret: str, body: bytes) -> Outcome:
        """POST ``body`` signed with ``secret``; every failure becomes an :class:`Outcome`."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._deliver(url, environment, secret, body)
        except TimeoutError:
            return Outcome.no_response(f"no response within {self.timeout:g} s")

    async def _deliver(self, url: str, environment: Environment, secret: str, body: bytes) -> Outcome:
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError:
            return Outcome.no_response("the destination URL is not valid", permanent=True)
        scheme = parts.scheme.lower()
        if not host or scheme not in ("http", "https"):
            return Outcome.no_response("the destination URL is not valid", permanent=True)
        port = port or (443 if scheme == "https" else 80)
        try:
            addresses = await self.resolver(host, port)
        except OSError as exc:  # e.g. the name does not resolve (yet): worth retrying
            return Outcome.no_response(f"could not resolve {host}: {exc.strerror or exc}")
        if not addresses:
            return Outcome.no_response(f"could not resolve {host}")
        for address in addresses:
            reason = refusal(
                address_kind(ipaddress.ip_address(address)),
                scheme,
                environment,
                allow_private=self.allow_private,
            )
            if reason is not None:
                return Outcome.no_response(
                    f"blocked: {host} resolves to {address}; the destination {reason}", permanent=True
                )
        target = addresses[0]
        netloc = f"[{target}]:{port}" if ":" in target else f"{target}:{port}"
        timestamp = int(self.unix_time())  # signed per attempt: verifiers refuse signatures > 5 s old
        headers = {
            "Content-Type": "application/json",
            "Paddle-Signature": signature(secret, timestamp, body),
            "User-Agent": f"keyhouse-webhooks/{__version__}",
            "Host": parts.netloc.rpartition("@")[2],
        }
        request = self.client.build_request(
            "POST",
            urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")),
            content=body,
            headers=headers,
            extensions={"sni_hostname": host} if scheme == "https" else {},
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            return Outcome.no_response(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        try:
            excerpt = await _excerpt(response)
        finally:
            await response.aclose()
        return Outcome(response.status_code, response.headers.get("content-type"), excerpt)


async def _excerpt(response: httpx.Response) -> str:
    """The start of the answer only: a log keeps an excerpt, and a huge body is not read at all."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= EXCERPT_MAX * 4:  # enough bytes for EXCERPT_MAX characters of UTF-8
                break
    except httpx.HTTPError:
        pass  # the status is what counts; a body cut short is still an excerpt
    return b"".join(chunks).decode("utf-8", "replace")[:EXCERPT_MAX]
