// Evaluates flags against a running evalrelay through the off-the-shelf OpenFeature OFREP
// provider, unchanged. Environment: RELAY_URL, SDK_KEY. Prints one JSON line per check and
// exits non-zero on the first mismatch. Driven by evalrelay/internal/app/ofrep_test.go, which
// serves the ruleset from evalrelay/internal/relaytest (flags "banner" and "limit").
import assert from 'node:assert/strict';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const baseUrl = process.env.RELAY_URL;
const key = process.env.SDK_KEY;
if (!baseUrl || !key) {
  console.error('RELAY_URL and SDK_KEY are required');
  process.exit(2);
}

await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, headers: [['Authorization', `Bearer ${key}`]] }));
const client = OpenFeature.getClient();

const checks = [
  async () => {
    // A rule matches the beta plan: TARGETING_MATCH, true.
    const d = await client.getBooleanDetails('banner', false, { targetingKey: 'u1', plan: 'beta' });
    assert.equal(d.value, true);
    assert.equal(d.reason, 'TARGETING_MATCH');
    assert.equal(d.variant, 'on');
    return d;
  },
  async () => {
    // Everyone else is split 50/50.
    const d = await client.getBooleanDetails('banner', false, { targetingKey: 'u2' });
    assert.equal(d.reason, 'SPLIT');
    assert.ok(typeof d.value === 'boolean');
    return d;
  },
  async () => {
    const d = await client.getNumberDetails('limit', 0, { targetingKey: 'u3' });
    assert.equal(d.value, 100);
    assert.equal(d.variant, 'high');
    assert.equal(d.reason, 'DEFAULT');
    return d;
  },
  async () => {
    // Unknown flag: the caller's default, with FLAG_NOT_FOUND.
    const d = await client.getStringDetails('no-such-flag', 'fallback', { targetingKey: 'u4' });
    assert.equal(d.value, 'fallback');
    assert.equal(d.errorCode, 'FLAG_NOT_FOUND');
    return d;
  },
  async () => {
    // Missing targeting key: the default, with TARGETING_KEY_MISSING.
    const d = await client.getBooleanDetails('banner', false, { plan: 'beta' });
    assert.equal(d.value, false);
    assert.equal(d.errorCode, 'TARGETING_KEY_MISSING');
    return d;
  },
  async () => {
    // Asking for the wrong type: the default, with TYPE_MISMATCH (checked by the SDK).
    const d = await client.getStringDetails('limit', 'x', { targetingKey: 'u5' });
    assert.equal(d.value, 'x');
    assert.equal(d.errorCode, 'TYPE_MISMATCH');
    return d;
  },
];

for (const [i, check] of checks.entries()) {
  try {
    const d = await check();
    console.log(JSON.stringify({ check: i, ok: true, flag: d.flagKey, value: d.value, reason: d.reason, errorCode: d.errorCode }));
  } catch (err) {
    console.log(JSON.stringify({ check: i, ok: false, error: String(err) }));
    process.exit(1);
  }
}
await OpenFeature.close();
