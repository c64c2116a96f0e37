// The official @paddle/paddle-node-sdk 3.10.0, unchanged, drives a served keyhouse's client-side API
// (issue 4) with a client-side token as its key, and parses client tokens that carry allowed_origins.
// Run by tests/test_sdk_client_side.py, which starts the server, makes alice's sandbox (tax rate 0.2,
// a 1500 USD price and a 250 USD internal-tax price, two tokens, bob's partner key) and passes them
// in KEYHOUSE_* variables. Without them (e.g. under test_sdk_client_tokens.py, which runs the whole
// directory) every scenario here is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, LogLevel, Paddle } from '@paddle/paddle-node-sdk';

const env = process.env;
const url = env.KEYHOUSE_URL;
const configured = Boolean(url && env.KEYHOUSE_CLIENT_TOKEN && env.KEYHOUSE_PARTNER_KEY);
const skip = configured ? false : 'KEYHOUSE_CLIENT_TOKEN and friends are not set (run by tests/test_sdk_client_side.py)';

function paddle(key, customHeaders) {
  return new Paddle(key, { environment: url, logLevel: LogLevel.none, ...(customHeaders ? { customHeaders } : {}) });
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${error}`);
    assert.equal(error.code, code);
    assert.ok(error.detail);
    assert.equal(error.documentationUrl, `https://developer.paddle.com/v1/errors/shared/${code}`);
    return true;
  });
  return true;
}

test('pricing preview with a client-side token', { skip }, async () => {
  const client = paddle(env.KEYHOUSE_CLIENT_TOKEN);
  const preview = await client.pricingPreview.preview({
    items: [
      { priceId: env.KEYHOUSE_PRICE_ID, quantity: 3 },
      { priceId: env.KEYHOUSE_ADDON_ID, quantity: 2 },
    ],
  });
  assert.equal(preview.currencyCode, 'USD');
  const [first, second] = preview.details.lineItems;
  assert.equal(first.price.id, env.KEYHOUSE_PRICE_ID);
  assert.equal(first.quantity, 3);
  assert.equal(first.taxRate, '0.2');
  assert.deepEqual(
    [first.unitTotals.subtotal, first.unitTotals.tax, first.unitTotals.total],
    ['1500', '300', '1800'],
  );
  assert.deepEqual([first.totals.subtotal, first.totals.tax, first.totals.total], ['4500', '900', '5400']);
  assert.equal(first.formattedTotals.total, '$54.00');
  assert.equal(first.formattedUnitTotals.total, '$18.00');
  assert.equal(first.product.name, 'AeroEdit Pro');
  assert.deepEqual([second.totals.subtotal, second.totals.tax, second.totals.total], ['417', '83', '500']);
  assert.deepEqual(first.discounts, []);

  await rejectsWith(client.pricingPreview.preview({ items: [{ priceId: env.KEYHOUSE_PRICE_ID, quantity: 0 }] }), 'invalid_field');
});

test('transaction preview with a client-side token', { skip }, async () => {
  const preview = await paddle(env.KEYHOUSE_CLIENT_TOKEN).transactions.preview({
    items: [
      { priceId: env.KEYHOUSE_PRICE_ID, quantity: 3 },
      { priceId: env.KEYHOUSE_ADDON_ID, quantity: 1, includeInTotals: false },
    ],
  });
  assert.equal(preview.currencyCode, 'USD');
  assert.deepEqual(
    preview.items.map((i) => [i.price.id, i.quantity, i.includeInTotals]),
    [
      [env.KEYHOUSE_PRICE_ID, 3, true],
      [env.KEYHOUSE_ADDON_ID, 1, false],
    ],
  );
  const totals = preview.details.totals;
  assert.deepEqual([totals.subtotal, totals.tax, totals.total, totals.grandTotal], ['4500', '900', '5400', '5400']);
  assert.deepEqual(preview.details.lineItems.map((l) => l.totals.total), ['5400', '250']);
});

test('an origin-restricted token previews from its origin only', { skip }, async () => {
  const items = [{ priceId: env.KEYHOUSE_PRICE_ID, quantity: 1 }];
  const fromShop = paddle(env.KEYHOUSE_RESTRICTED_TOKEN, { Origin: env.KEYHOUSE_ORIGIN });
  const preview = await fromShop.pricingPreview.preview({ items });
  assert.equal(preview.details.lineItems[0].totals.total, '1800');
  await rejectsWith(
    paddle(env.KEYHOUSE_RESTRICTED_TOKEN, { Origin: 'https://evil.example.net' }).pricingPreview.preview({ items }),
    'forbidden',
  );
  await rejectsWith(paddle(env.KEYHOUSE_RESTRICTED_TOKEN).transactions.preview({ items }), 'forbidden');
});

test('client tokens that carry allowed_origins parse', { skip }, async () => {
  const partner = paddle(env.KEYHOUSE_PARTNER_KEY);
  const restricted = await partner.clientTokens.get(env.KEYHOUSE_RESTRICTED_TOKEN_ID);
  assert.equal(restricted.id, env.KEYHOUSE_RESTRICTED_TOKEN_ID);
  assert.equal(restricted.token, env.KEYHOUSE_RESTRICTED_TOKEN);
  assert.equal(restricted.name, 'Shop only');
  assert.equal(restricted.description, 'Pages of the shop');
  assert.equal(restricted.status, 'active');
  assert.equal(restricted.revokedAt, null);
  assert.ok(!Number.isNaN(Date.parse(restricted.createdAt)));

  const ids = [];
  for await (const token of partner.clientTokens.list()) ids.push(token.id);
  assert.deepEqual(ids.sort(), [env.KEYHOUSE_CLIENT_TOKEN_ID, env.KEYHOUSE_RESTRICTED_TOKEN_ID].sort());

  // A client token is no key for the server API; revoked, it is refused on the next preview.
  await rejectsWith(paddle(env.KEYHOUSE_CLIENT_TOKEN).clientTokens.get(env.KEYHOUSE_CLIENT_TOKEN_ID), 'forbidden');
  const revoked = await partner.clientTokens.revoke(env.KEYHOUSE_RESTRICTED_TOKEN_ID);
  assert.equal(revoked.status, 'revoked');
  const fromShop = paddle(env.KEYHOUSE_RESTRICTED_TOKEN, { Origin: env.KEYHOUSE_ORIGIN });
  await rejectsWith(
    fromShop.pricingPreview.preview({ items: [{ priceId: env.KEYHOUSE_PRICE_ID, quantity: 1 }] }),
    'invalid_client_token',
  );
});
