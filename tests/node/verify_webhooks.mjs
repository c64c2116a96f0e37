// The official @paddle/paddle-node-sdk 3.10.0, unchanged, verifies and parses webhooks keyhouse delivered.
// Run by tests/test_webhooks.py as a long-lived helper (not a `node --test` file: it has no tests of its
// own). Each stdin line is a JSON object {body, secret, signature}: the raw request body exactly as
// received, the destination's endpoint_secret_key and the Paddle-Signature header. Each answer is one
// stdout line, in order:
//   {"ok": true, "eventType", "eventId", "notificationId", "eventClass", "dataClass", "dataId", "dataStatus"}
//   {"ok": false, "error": "<message>"}
// The SDK refuses a signature more than 5 s old and that cannot be turned off, so the test sends each
// delivery as soon as it arrives and this process answers lines as they come (started once, not per line).
import { createInterface } from 'node:readline';
import { LogLevel, Paddle } from '@paddle/paddle-node-sdk';

const paddle = new Paddle('not-used-for-webhooks', { logLevel: LogLevel.none });

async function verify(line) {
  try {
    const { body, secret, signature } = JSON.parse(line);
    const event = await paddle.webhooks.unmarshal(body, secret, signature);
    return {
      ok: true,
      eventType: event.eventType,
      eventId: event.eventId,
      notificationId: event.notificationId,
      eventClass: event.constructor.name,
      dataClass: event.data?.constructor?.name ?? null,
      dataId: event.data?.id ?? null,
      dataStatus: event.data?.status ?? null,
    };
  } catch (error) {
    return { ok: false, error: String(error?.message ?? error) };
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  process.stdout.write(`${JSON.stringify(await verify(line))}\n`);
}
