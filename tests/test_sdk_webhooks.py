"""The official SDKs, unchanged, against keyhouse's webhook API: notification settings, event types,
events, notifications and their logs (delivery itself is tests/test_webhooks.py).

``paddle-python-sdk`` runs here; ``@paddle/paddle-node-sdk`` runs ``tests/node/notifications_api.mjs``
under ``node --test``. Both parse every entity into their own types, so a missing or mistyped field
fails here before it fails a user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from paddle_billing import Client, Options
from paddle_billing.Entities.Events import EventTypeName
from paddle_billing.Entities.Notifications import NotificationOrigin, NotificationStatus
from paddle_billing.Entities.NotificationSettings import NotificationSettingType
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Resources.NotificationSettings.Operations import (
    CreateNotificationSetting,
    UpdateNotificationSetting,
)

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.services import client_tokens
from keyhouse.services.client_tokens import TokenScope
from tests.conftest import need

if TYPE_CHECKING:
    from tests.servers import Keyhouse, Member

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow

NODE_TESTS = Path(__file__).resolve().parent / "node"
CLOSED_PORT = "http://127.0.0.1:9/hooks"  # nothing delivers in these tests: no worker runs


def sdk(keyhouse: Keyhouse, member: Member) -> Client:
    return Client(member.key, options=Options(environment=SimpleNamespace(base_url=keyhouse.server.url)))


def token_created(keyhouse: Keyhouse, member: Member) -> None:
    """A client-side token made by the account owner: its event fans out to the settings."""

    async def make(deps: services.Deps) -> None:
        scope = TokenScope(member.account_id, Environment.SANDBOX)
        await client_tokens.create_token(
            deps, scope, name="Checkout", description=None, created_by=Creator(CreatorKind.CLI, "test")
        )

    keyhouse.call(make)


def test_the_python_sdk_manages_settings_and_reads_notifications_and_events(keyhouse: Keyhouse) -> None:
    member = keyhouse.member()
    client = sdk(keyhouse, member)
    created = client.notification_settings.create(
        CreateNotificationSetting(
            description="Python receiver",
            destination=CLOSED_PORT,
            subscribed_events=[EventTypeName.ClientTokenCreated],
            type=NotificationSettingType.Url,
            include_sensitive_fields=False,
        )
    )
    assert created.id.startswith("ntfset_")
    assert created.endpoint_secret_key.startswith("pdl_ntfset_")
    assert [e.name for e in created.subscribed_events] == [EventTypeName.ClientTokenCreated]
    assert created.active is True
    assert [s.id for s in client.notification_settings.list()] == [created.id]
    assert client.notification_settings.get(created.id).endpoint_secret_key == created.endpoint_secret_key

    updated = client.notification_settings.update(
        created.id,
        UpdateNotificationSetting(
            description="Python receiver (renamed)",
            subscribed_events=[EventTypeName.ClientTokenCreated, EventTypeName.ClientTokenRevoked],
        ),
    )
    assert updated.description == "Python receiver (renamed)"
    assert sorted(e.name.value for e in updated.subscribed_events) == [
        "client_token.created",
        "client_token.revoked",
    ]

    names = {t.name.value for t in client.event_types.list()}
    assert {"client_token.created", "api_key_exposure.created"} <= names

    token_created(keyhouse, member)
    notifications = list(client.notifications.list())
    assert len(notifications) == 1
    notification = notifications[0]
    assert notification.type == EventTypeName.ClientTokenCreated
    assert notification.status == NotificationStatus.NotAttempted
    assert notification.origin == NotificationOrigin.Event
    assert notification.notification_setting_id == created.id
    assert notification.payload.notification_id == notification.id
    assert client.notifications.get(notification.id).times_attempted == 0
    assert list(client.notification_logs.list(notification.id)) == []
    with pytest.raises(ApiError) as refused:
        client.notifications.replay(notification.id)
    assert refused.value.error_code == "notification_cannot_replay"

    events = [e for e in client.events.list() if e.event_type == EventTypeName.ClientTokenCreated]
    assert [e.event_id for e in events] == [notification.payload.event_id]

    client.notification_settings.delete(created.id)
    with pytest.raises(ApiError) as gone:
        client.notification_settings.get(created.id)
    assert gone.value.error_code == "not_found"


def test_the_python_sdk_raises_paddles_error_for_a_refused_destination(keyhouse: Keyhouse) -> None:
    client = sdk(keyhouse, keyhouse.member())
    with pytest.raises(ApiError) as refused:
        client.notification_settings.create(
            CreateNotificationSetting(
                description="Metadata service",
                destination="http://169.254.169.254/latest",
                subscribed_events=[EventTypeName.ClientTokenCreated],
                type=NotificationSettingType.Url,
                include_sensitive_fields=False,
            )
        )
    assert refused.value.error_code == "url_notification_setting_incorrect"


def test_the_node_sdk_manages_settings_and_reads_notifications(keyhouse: Keyhouse) -> None:
    node = shutil.which("node")
    if node is None:
        need("Node SDK", "`node` is not on PATH")
    if not (NODE_TESTS / "node_modules" / "@paddle" / "paddle-node-sdk").is_dir():
        need("Node SDK", "tests/node/node_modules is missing: npm ci --prefix tests/node (make test does it)")
    assert node is not None
    member = keyhouse.member()
    client = sdk(keyhouse, member)
    client.notification_settings.create(
        CreateNotificationSetting(
            description="Python-made, read by Node",
            destination=CLOSED_PORT,
            subscribed_events=[EventTypeName.ClientTokenCreated],
            type=NotificationSettingType.Url,
            include_sensitive_fields=False,
        )
    )
    token_created(keyhouse, member)
    [notification] = list(client.notifications.list())
    env = {
        **os.environ,
        "KEYHOUSE_URL": keyhouse.server.url,
        "KEYHOUSE_KEY": member.key,
        "KEYHOUSE_NOTIFICATION_ID": notification.id,
    }
    done = subprocess.run(
        [node, "--test", "tests/node/notifications_api.mjs"],
        cwd=NODE_TESTS.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"node --test failed:\n{done.stdout}\n{done.stderr}"
    assert "# pass 2" in done.stdout, done.stdout
