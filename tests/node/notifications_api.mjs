// The official @paddle/paddle-node-sdk 3.10.0, unchanged, drives a served keyhouse's webhook API:
// notification settings (create, list, get, update, delete), event types, notifications and logs.
// Run explicitly by tests/test_sdk_webhooks.py with KEYHOUSE_URL, KEYHOUSE_KEY (a merchant key with
// every permission) and KEYHOUSE_NOTIFICATION_ID (a notification that exists, not yet attempted).
// Not named *.test.mjs, so `node --test tests/node/` (the client-token scenarios) leaves it alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, LogLevel, Paddle } from '@paddle/paddle-node-sdk';

const url = process.env.KEYHOUSE_URL;
const key = process.env.KEYHOUSE_KEY;
const notificationId = process.env.KEYHOUSE_NOTIFICATION_ID;
assert.ok(url && key && notificationId, 'KEYHOUSE_URL, KEYHOUSE_KEY and KEYHOUSE_NOTIFICATION_ID must be set');

const paddle = new Paddle(key, { environment: url, logLevel: LogLevel.none });

async function all(collection) {
  const found = [];
  for await (const item of collection) found.push(item);
  return found;
}

test('notification settings: create, list, get, update, delete', async () => {
  const created = await paddle.notificationSettings.create({
    description: 'Node receiver',
    destination: 'http://127.0.0.1:9/node',
    type: 'url',
    subscribedEvents: ['client_token.created', 'client_token.revoked'],
    includeSensitiveFields: false,
  });
  assert.match(created.id, /^ntfset_[a-z0-9]{26}$/);
  assert.match(created.endpointSecretKey, /^pdl_ntfset_[a-zA-Z0-9]{26}_[a-zA-Z0-9]{32}$/);
  assert.equal(created.active, true);
  assert.equal(created.trafficSource, 'platform');
  assert.deepEqual(created.subscribedEvents.map((e) => e.name), ['client_token.created', 'client_token.revoked']);
  assert.equal(created.subscribedEvents[0].group, 'Client-side token');

  const listed = await paddle.notificationSettings.list();
  assert.ok(listed.some((s) => s.id === created.id));

  const fetched = await paddle.notificationSettings.get(created.id);
  assert.equal(fetched.endpointSecretKey, created.endpointSecretKey);

  const updated = await paddle.notificationSettings.update(created.id, {
    active: false,
    subscribedEvents: ['api_key.revoked'],
  });
  assert.equal(updated.active, false);
  assert.deepEqual(updated.subscribedEvents.map((e) => e.name), ['api_key.revoked']);

  await paddle.notificationSettings.delete(created.id);
  await assert.rejects(paddle.notificationSettings.get(created.id), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, 'not_found');
    return true;
  });
});

test('event types, notifications, logs and a refused replay', async () => {
  const types = await paddle.eventTypes.list();
  assert.ok(types.some((t) => t.name === 'client_token.created' && t.availableVersions[0] === 1));

  const notifications = await all(paddle.notifications.list());
  const mine = notifications.find((n) => n.id === notificationId);
  assert.ok(mine, `notification ${notificationId} is listed`);
  assert.equal(mine.type, 'client_token.created');
  assert.equal(mine.status, 'not_attempted');
  assert.equal(mine.origin, 'event');
  assert.equal(mine.payload.notificationId, notificationId);
  assert.match(mine.payload.data.id, /^ctkn_/);

  const one = await paddle.notifications.get(notificationId);
  assert.equal(one.timesAttempted, 0);
  assert.deepEqual(await all(paddle.notifications.getLogs(notificationId)), []);

  await assert.rejects(paddle.notifications.replay(notificationId), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, 'notification_cannot_replay');
    return true;
  });
});
