"""No plaintext secret is ever written down: not in the database (files or tables), not in logs.

Keys are made by the CLI in its own processes (new-format, legacy imported from stdin, legacy
generated) and by this process, used against a real server (accepted, refused, revoked), and then
the database and everything the server and the CLI wrote to stderr are searched for each key and
for its secret part. A control search for each key's id proves the search looks at real data.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from keyhouse import services
from keyhouse.bootstrap import Database
from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.permissions import Permission
from tests.conftest import POSTGRES_URL

if TYPE_CHECKING:
    from tests.servers import Keyhouse

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow

LEGACY_SECRET = credentials.new_legacy_key()


def database_bytes(keyhouse: Keyhouse) -> bytes:
    """SQLite: the database file and its WAL, raw. PostgreSQL: every row of every table, as text."""
    parsed = Database.parse(keyhouse.database.url)
    if parsed.kind == "sqlite":
        files = [Path(parsed.target), Path(f"{parsed.target}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    return asyncio.run(postgres_dump(parsed.schema)).encode()


async def postgres_dump(schema: str | None) -> str:
    assert schema is not None
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
        assert {"api_keys", "api_key_secrets"} <= {t["table_name"] for t in tables}
        lines = []
        for table in tables:
            name = f'"{schema}"."{table["table_name"]}"'
            # row::text renders every column, bytea included (as \x-hex).
            lines += [r["row"] for r in await conn.fetch(f"SELECT t::text AS row FROM {name} t")]  # noqa: S608
        return "\n".join(lines)
    finally:
        await conn.close()


def secret_forms(key: str) -> list[str]:
    """The key, its 22-character secret part (new format) and both in hex, as a bytea would show."""
    forms = [key]
    parsed = credentials.API_KEY_RE.fullmatch(key)
    if parsed is not None:
        forms.append(parsed.group(3))
    else:
        forms += [key[:22], key[-22:]]  # a legacy key has no marked part; any long slice will do
    return forms + [form.encode().hex() for form in forms]


def test_no_plaintext_key_is_ever_in_the_database_or_the_logs(keyhouse: Keyhouse) -> None:
    server = keyhouse.server
    account = keyhouse.call(lambda deps: services.create_account(deps, "Alice's shop")).id
    scope = ["--account", account, "--env", "sandbox"]
    # Three CLI processes at once: their start-up is the slow part.
    running = [
        keyhouse.start_cli("keys", "create", *scope, "--name", "CRM", "--all-permissions", "--json"),
        keyhouse.start_cli("keys", "import-legacy", *scope, "--json"),
        keyhouse.start_cli("keys", "import-legacy", *scope, "--generate", "--json"),
    ]
    stdins = ["", LEGACY_SECRET + "\n", ""]
    outputs = [process.communicate(stdin, timeout=60) for process, stdin in zip(running, stdins, strict=True)]
    assert [p.returncode for p in running] == [0, 0, 0], outputs
    created, imported, generated = (json.loads(stdout) for stdout, _ in outputs)
    cli_stderr = "".join(stderr for _, stderr in outputs)
    assert imported["key"] != LEGACY_SECRET  # shown once only when keyhouse made it
    issued = {
        created["id"]: created["key"],
        imported["id"]: LEGACY_SECRET,
        generated["id"]: generated["key"],
    }
    live = keyhouse.member(environment=Environment.LIVE, permissions=frozenset({Permission.PRODUCT_READ}))
    issued[live.key_id] = live.key

    with server.client() as client:
        for key_id, key in issued.items():
            auth = {"Authorization": f"Bearer {key}"}
            assert client.get("/", headers=auth).status_code == 200
            assert client.get(f"/api-keys/{key_id}", headers=auth).status_code == 200
            client.get("/api-keys", headers=auth)  # 200, or 403 forbidden for keys without api_key.read
            # Near misses that reach the verifier with most of the secret in them.
            typo = key[:-1] + ("y" if key[-1] != "y" else "z")
            assert client.get("/", headers={"Authorization": f"Bearer {typo}"}).status_code == 403
            assert client.get("/", headers={"Authorization": f"Bearer {key} {key}"}).status_code == 403
            assert client.get("/", headers={"Authorization": key}).status_code == 403
        keyhouse.call(lambda deps: services.revoke_key(deps, created["id"]))
        revoked = client.get("/", headers={"Authorization": f"Bearer {created['key']}"})
        assert revoked.json()["error"]["code"] == "invalid_token"

    stored = database_bytes(keyhouse)
    logs = server.output() + cli_stderr
    for key_id, key in issued.items():
        assert key_id.encode() in stored  # the search looks at the real rows
        for form in secret_forms(key):
            assert form.encode() not in stored, f"plaintext of {key_id} found in the database"
            assert form not in logs, f"plaintext of {key_id} found in the logs"
