// Unit tests of keyhouse.js request building and error shapes, with Node's own test runner:
//   node --test tests/js/
// No network and no npm dependencies: every call gets a fake fetcher.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

const MODULE = '../../src/keyhouse/web/static/keyhouse.js';
const keyhouse = await import(MODULE);
const { Initialize, PricePreview, TransactionPreview, buildRequest, renameKeys, toSnake, toCamel, KeyhouseError } =
  keyhouse;

const TOKEN = `test_${'0123456789abcdef'.repeat(2).slice(0, 27)}`;
const LIVE_TOKEN = `live_${'f'.repeat(27)}`;
const API_BASE = 'https://api.keyhouse.test';

/** A fresh copy of the module (a distinct URL is a distinct module instance), never initialized. */
const freshModule = (tag) => import(`${MODULE}?${tag}`);

/** A fetcher that records its calls and answers `status` with `body` (an object, or raw text). */
function fakeFetcher(status, body) {
  const calls = [];
  const fetcher = async (url, init) => {
    calls.push({ url, init });
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'content-type': 'application/json' } });
  };
  return { fetcher, calls };
}

/** Assert that `promise` rejects with a KeyhouseError carrying `fields`; returns the error. */
async function rejectsWith(promise, fields) {
  let caught;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof KeyhouseError || caught?.name === 'KeyhouseError', `not a KeyhouseError: ${caught}`);
  assert.ok(caught instanceof Error);
  for (const [name, value] of Object.entries(fields)) assert.deepEqual(caught[name], value, name);
  return caught;
}

describe('before Initialize', () => {
  test('buildRequest throws authentication_missing', async () => {
    const fresh = await freshModule('never-initialized-1');
    assert.throws(
      () => fresh.buildRequest('/pricing-preview', { items: [] }),
      (error) =>
        error.name === 'KeyhouseError' &&
        error.type === 'request_error' &&
        error.code === 'authentication_missing' &&
        /Initialize/.test(error.detail),
    );
  });

  test('PricePreview and TransactionPreview reject with authentication_missing and never fetch', async () => {
    const fresh = await freshModule('never-initialized-2');
    const { fetcher, calls } = fakeFetcher(200, { data: {} });
    for (const preview of [fresh.PricePreview, fresh.TransactionPreview]) {
      await assert.rejects(preview({ items: [] }, fetcher), (error) => {
        assert.equal(error.code, 'authentication_missing');
        assert.equal(error.type, 'request_error');
        return true;
      });
    }
    assert.equal(calls.length, 0);
  });
});

describe('Initialize', () => {
  test('defaults to production, as Paddle.js does, and strips a trailing slash from apiBase', () => {
    const result = Initialize({ token: TOKEN, apiBase: `${API_BASE}/` });
    assert.equal(result.environment, 'production');
    assert.equal(result.apiBase, API_BASE);
    const [, init] = buildRequest('/pricing-preview', {});
    assert.equal(init.headers['Keyhouse-Environment'], 'production');
  });

  test('accepts sandbox and production, and returns the token masked', () => {
    for (const environment of ['sandbox', 'production']) {
      const result = Initialize({ token: TOKEN, environment, apiBase: API_BASE });
      assert.equal(result.environment, environment);
      assert.equal(result.token, `${TOKEN.slice(0, 9)}…`);
      assert.ok(!JSON.stringify(result).includes(TOKEN), 'the whole token must not be echoed');
    }
    assert.equal(Initialize({ token: LIVE_TOKEN, environment: 'production', apiBase: API_BASE }).environment, 'production');
  });

  test('refuses anything that is not a client-side token, API keys above all', () => {
    const bad = [
      undefined,
      null,
      42,
      '',
      'test_',
      `test_${'a'.repeat(26)}`, // one short
      `test_${'a'.repeat(28)}`, // one long
      `test_${'A'.repeat(27)}`, // uppercase hex
      `test_${'g'.repeat(27)}`, // not hex
      `sbx_${'a'.repeat(27)}`,
      ` ${TOKEN}`,
      'pdl_sdbx_apikey_01m910tr674a9tkbzj8yn57ngr_xd6agVcd41eiKCAATPlT1R_uyA',
    ];
    for (const token of bad) {
      assert.throws(
        () => Initialize({ token, environment: 'sandbox', apiBase: API_BASE }),
        (error) =>
          error instanceof KeyhouseError &&
          error.type === 'request_error' &&
          error.code === 'invalid_client_token' &&
          /never an API key/.test(error.detail),
        `token ${JSON.stringify(token)}`,
      );
    }
    assert.throws(() => Initialize(), (error) => error.code === 'invalid_client_token');
  });

  test('refuses an unknown environment (live is the CLI word, not Paddle.js)', () => {
    for (const environment of ['live', 'Sandbox', 'test', '', null]) {
      assert.throws(
        () => Initialize({ token: TOKEN, environment, apiBase: API_BASE }),
        (error) => error instanceof KeyhouseError && error.code === 'bad_request' && /sandbox/.test(error.detail),
        `environment ${JSON.stringify(environment)}`,
      );
    }
  });

  test('a refused Initialize keeps the previous settings', () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    assert.throws(() => Initialize({ token: 'nope', environment: 'production', apiBase: 'https://elsewhere.test' }));
    const [url, init] = buildRequest('/pricing-preview', {});
    assert.equal(url, `${API_BASE}/pricing-preview`);
    assert.equal(init.headers['Keyhouse-Environment'], 'sandbox');
  });
});

describe('buildRequest', () => {
  test('POSTs to apiBase + path with the Bearer token, JSON and the intended environment', () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    for (const path of ['/pricing-preview', '/transactions/preview']) {
      const [url, init] = buildRequest(path, { items: [] });
      assert.equal(url, `${API_BASE}${path}`);
      assert.equal(init.method, 'POST');
      assert.deepEqual(init.headers, {
        Authorization: `Bearer ${TOKEN}`,
        'Content-Type': 'application/json',
        'Keyhouse-Environment': 'sandbox',
      });
      assert.equal(typeof init.body, 'string');
    }
  });

  test('sends a snake_cased JSON body from camelCase, through nested arrays and objects', () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    const [, init] = buildRequest('/transactions/preview', {
      items: [
        { priceId: 'pri_01', quantity: 2 },
        { priceId: 'pri_02', quantity: 1, includeInTotals: true },
      ],
      currencyCode: 'USD',
      customerIpAddress: '203.0.113.7',
      address: { countryCode: 'US', postalCode: '10001' },
      ignoreTrials: false,
      discountId: null,
    });
    assert.deepEqual(JSON.parse(init.body), {
      items: [
        { price_id: 'pri_01', quantity: 2 },
        { price_id: 'pri_02', quantity: 1, include_in_totals: true },
      ],
      currency_code: 'USD',
      customer_ip_address: '203.0.113.7',
      address: { country_code: 'US', postal_code: '10001' },
      ignore_trials: false,
      discount_id: null,
    });
  });

  test('an absent request is an empty JSON object', () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    assert.equal(buildRequest('/pricing-preview')[1].body, '{}');
    assert.equal(buildRequest('/pricing-preview', null)[1].body, '{}');
  });

  test('explicit settings win over the module state', () => {
    const [url, init] = buildRequest('/pricing-preview', {}, {
      token: LIVE_TOKEN,
      environment: 'production',
      apiBase: 'https://other.test',
    });
    assert.equal(url, 'https://other.test/pricing-preview');
    assert.equal(init.headers.Authorization, `Bearer ${LIVE_TOKEN}`);
    assert.equal(init.headers['Keyhouse-Environment'], 'production');
  });
});

describe('key renaming', () => {
  test('toSnake and toCamel', () => {
    assert.equal(toSnake('priceId'), 'price_id');
    assert.equal(toSnake('customerIpAddress'), 'customer_ip_address');
    assert.equal(toSnake('items'), 'items');
    assert.equal(toCamel('price_id'), 'priceId');
    assert.equal(toCamel('documentation_url'), 'documentationUrl');
    assert.equal(toCamel('first_line_1'), 'firstLine1');
    assert.equal(toCamel('quantity'), 'quantity');
  });

  test('renameKeys goes deep into objects and arrays and leaves values alone', () => {
    const wire = { line_items: [{ unit_totals: { sub_total: '1500' }, tags: ['a_b', null, 3] }], tax_rate: '0.2' };
    const camel = renameKeys(wire, toCamel);
    assert.deepEqual(camel, { lineItems: [{ unitTotals: { subTotal: '1500' }, tags: ['a_b', null, 3] }], taxRate: '0.2' });
    assert.deepEqual(renameKeys(camel, toSnake), wire);
    for (const value of [null, undefined, 0, 'text_value', true]) assert.equal(renameKeys(value, toCamel), value);
  });
});

describe('previews with a fake fetcher', () => {
  const answer = {
    data: {
      customer_id: null,
      currency_code: 'USD',
      details: {
        line_items: [
          {
            price: { id: 'pri_01', unit_price: { amount: '1500', currency_code: 'USD' } },
            quantity: 3,
            tax_rate: '0.2',
            formatted_totals: { subtotal: '$45.00', tax: '$9.00', total: '$54.00' },
          },
        ],
      },
    },
    meta: { request_id: 'req_1' },
  };

  test('PricePreview sends the built request and returns camelCased { data, meta }', async () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    const { fetcher, calls } = fakeFetcher(200, answer);
    const result = await PricePreview({ items: [{ priceId: 'pri_01', quantity: 3 }] }, fetcher);
    assert.equal(calls.length, 1);
    assert.deepEqual([calls[0].url, calls[0].init], buildRequest('/pricing-preview', { items: [{ priceId: 'pri_01', quantity: 3 }] }));
    assert.deepEqual(result, {
      data: {
        customerId: null,
        currencyCode: 'USD',
        details: {
          lineItems: [
            {
              price: { id: 'pri_01', unitPrice: { amount: '1500', currencyCode: 'USD' } },
              quantity: 3,
              taxRate: '0.2',
              formattedTotals: { subtotal: '$45.00', tax: '$9.00', total: '$54.00' },
            },
          ],
        },
      },
      meta: { requestId: 'req_1' },
    });
  });

  test('TransactionPreview posts to /transactions/preview', async () => {
    Initialize({ token: TOKEN, environment: 'production', apiBase: API_BASE });
    const { fetcher, calls } = fakeFetcher(200, { data: { currency_code: 'USD' }, meta: { request_id: 'req_2' } });
    const result = await TransactionPreview({ items: [{ priceId: 'pri_01', quantity: 1 }], ignoreTrials: true }, fetcher);
    assert.equal(calls[0].url, `${API_BASE}/transactions/preview`);
    assert.equal(calls[0].init.headers['Keyhouse-Environment'], 'production');
    assert.deepEqual(JSON.parse(calls[0].init.body), { items: [{ price_id: 'pri_01', quantity: 1 }], ignore_trials: true });
    assert.deepEqual(result, { data: { currencyCode: 'USD' }, meta: { requestId: 'req_2' } });
  });

  test('an API error becomes a KeyhouseError with type, code, detail, documentation_url and status', async () => {
    Initialize({ token: TOKEN, environment: 'production', apiBase: API_BASE });
    const error = {
      type: 'request_error',
      code: 'invalid_client_token',
      detail: 'A test_ client-side token belongs to the sandbox environment, but this request is for production.',
      documentation_url: 'https://developer.paddle.com/v1/errors/shared/invalid_client_token',
    };
    for (const preview of [PricePreview, TransactionPreview]) {
      const { fetcher } = fakeFetcher(403, { error, meta: { request_id: 'req_3' } });
      const caught = await rejectsWith(preview({ items: [] }, fetcher), { ...error, status: 403 });
      assert.equal(caught.message, error.detail);
    }
  });

  test('an error missing documentation_url gets null there', async () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    const { fetcher } = fakeFetcher(429, { error: { type: 'request_error', code: 'too_many_requests', detail: 'Slow down.' } });
    await rejectsWith(PricePreview({ items: [] }, fetcher), {
      code: 'too_many_requests',
      documentation_url: null,
      status: 429,
    });
  });

  test('an error body on a 200 is still an error', async () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    const { fetcher } = fakeFetcher(200, { error: { type: 'api_error', code: 'internal_error', detail: 'Oops.' } });
    await rejectsWith(PricePreview({ items: [] }, fetcher), { type: 'api_error', code: 'internal_error', status: 200 });
  });

  test('a non-JSON or empty answer becomes bad_response with the HTTP status', async () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    for (const [status, body] of [
      [502, '<html>Bad gateway</html>'],
      [200, ''],
      [200, 'null'],
    ]) {
      const { fetcher } = fakeFetcher(status, body);
      const caught = await rejectsWith(PricePreview({ items: [] }, fetcher), {
        type: 'api_error',
        code: 'bad_response',
        status,
      });
      assert.match(caught.detail, new RegExp(`HTTP ${status}`));
    }
  });

  test('a fetcher that throws (CORS refusal, network down) becomes request_blocked', async () => {
    Initialize({ token: TOKEN, environment: 'sandbox', apiBase: API_BASE });
    const fetcher = async () => {
      throw new TypeError('Failed to fetch');
    };
    const caught = await rejectsWith(PricePreview({ items: [] }, fetcher), {
      type: 'network_error',
      code: 'request_blocked',
      status: 0,
      documentation_url: null,
    });
    assert.match(caught.detail, /Failed to fetch/);
    assert.match(caught.detail, /origin/);
  });
});
