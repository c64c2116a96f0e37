// The official @paddle/paddle-node-sdk 3.10.0, unchanged, drives a served keyhouse's client-side tokens API.
// Run by tests/test_sdk_client_tokens.py, which starts the server and passes KEYHOUSE_URL and
// KEYHOUSE_KEY (a partner key with client_token.read and client_token.write, on an installation of an
// allow-listed integration, with no tokens yet). The SDK sends `bearer` in lowercase, no Paddle-Version,
// `order_by=id[ASC]` and follows `meta.pagination.next` by string concatenation (sdk.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, LogLevel, Paddle } from '@paddle/paddle-node-sdk';

const url = process.env.KEYHOUSE_URL;
const key = process.env.KEYHOUSE_KEY;
assert.ok(url && key, 'KEYHOUSE_URL and KEYHOUSE_KEY must be set');

const paddle = new Paddle(key, { environment: url, logLevel: LogLevel.none });
const TOKEN_ID = /^ctkn_[a-z0-9]{26}$/;

async function all(collection) {
  const found = [];
  for await (const token of collection) found.push(token);
  return found;
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${error}`);
    assert.equal(error.code, code);
    assert.equal(error.type, 'request_error');
    assert.ok(error.detail);
    assert.equal(error.documentationUrl, `https://developer.paddle.com/v1/errors/shared/${code}`);
    return true;
  });
}

test('create, get, list across pages, update and revoke', async () => {
  const made = [];
  for (let i = 0; i < 5; i++) {
    made.push(await paddle.clientTokens.create({ name: `Node ${i}`, description: i === 0 ? 'First' : undefined }));
  }
  const [first] = made;
  assert.match(first.id, TOKEN_ID);
  assert.match(first.token, /^test_[0-9a-f]{27}$/);
  assert.equal(first.name, 'Node 0');
  assert.equal(first.description, 'First');
  assert.equal(made[1].description, null);
  assert.equal(first.status, 'active');
  assert.equal(first.revokedAt, null);
  assert.ok(!Number.isNaN(Date.parse(first.createdAt)));
  assert.equal(first.updatedAt, first.createdAt);

  const fetched = await paddle.clientTokens.get(first.id);
  assert.deepEqual(fetched, first);

  // Every page, two at a time, following `next` as keyhouse returns it.
  const ids = made.map((t) => t.id).sort();
  const ascending = paddle.clientTokens.list({ perPage: 2, orderBy: 'id[ASC]' });
  assert.deepEqual((await all(ascending)).map((t) => t.id), ids);
  assert.equal(ascending.estimatedTotal, 5);
  const descending = await all(paddle.clientTokens.list({ perPage: 2, orderBy: 'id[DESC]' }));
  assert.deepEqual(descending.map((t) => t.id), [...ids].reverse());
  assert.deepEqual((await all(paddle.clientTokens.list())).map((t) => t.id), [...ids].reverse());

  // .next() page by page
  const paged = paddle.clientTokens.list({ perPage: 2 });
  const pages = [];
  while (paged.hasMore) pages.push((await paged.next()).map((t) => t.id));
  assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);

  const updated = await paddle.clientTokens.update(made[1].id, { status: 'revoked' });
  assert.equal(updated.status, 'revoked');
  assert.ok(updated.revokedAt);
  const revoked = await paddle.clientTokens.revoke(made[2].id);
  assert.equal(revoked.status, 'revoked');
  assert.equal((await paddle.clientTokens.revoke(made[2].id)).revokedAt, revoked.revokedAt);

  // status filter: active only by default, revoked on request, both together
  const active = await all(paddle.clientTokens.list({ perPage: 2 }));
  assert.deepEqual(active.map((t) => t.id).sort(), [made[0].id, made[3].id, made[4].id].sort());
  const gone = await all(paddle.clientTokens.list({ status: ['revoked'] }));
  assert.deepEqual(gone.map((t) => t.id).sort(), [made[1].id, made[2].id].sort());
  assert.ok(gone.every((t) => t.status === 'revoked'));
  const both = await all(paddle.clientTokens.list({ status: ['active', 'revoked'], perPage: 3 }));
  assert.equal(both.length, 5);
});

test('refusals arrive as ApiError with every field', async () => {
  const token = await paddle.clientTokens.create({ name: 'Refusals' });
  await rejectsWith(paddle.clientTokens.update(token.id, { status: 'revoked' }).then(() =>
    paddle.clientTokens.update(token.id, { status: 'active' })), 'invalid_field');
  await rejectsWith(paddle.clientTokens.get('ctkn_01hzx3k9q8w7v6t5r4p3n2m1ab'), 'not_found');
  await rejectsWith(paddle.clientTokens.get('not-an-id'), 'not_found');
  await assert.rejects(paddle.clientTokens.create({ name: '' }), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.code, 'invalid_field');
    assert.deepEqual(error.errors.map((e) => e.field), ['name']);
    return true;
  });
  const stranger = new Paddle('pdl_sdbx_apikey_01hzx3k9q8w7v6t5r4p3n2m1ab_AAAAAAAAAAAAAAAAAAAAAA_AAA', {
    environment: url,
    logLevel: LogLevel.none,
  });
  await rejectsWith(stranger.clientTokens.create({ name: 'x' }), 'invalid_token');
  const clientSide = new Paddle(token.token, { environment: url, logLevel: LogLevel.none });
  await rejectsWith(clientSide.clientTokens.get(token.id), 'forbidden');
});
