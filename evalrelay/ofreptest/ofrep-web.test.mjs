// Evaluates flags against a running evalrelay through the off-the-shelf OpenFeature OFREP *web*
// provider (the one browsers use), unchanged: it fetches every flag in one bulk request, serves
// them from its cache and polls with If-None-Match. Environment: RELAY_URL, SDK_KEY (a client
// key). Prints one JSON line per check; after the checks on ruleset v1 and one unchanged poll
// (304) it prints {"ready": true} and waits for the driver to publish v2, in which "theme"
// serves "dark", then checks the provider polls it in and says so. Exits non-zero on the first
// mismatch. Driven by evalrelay/internal/app/ofrep_test.go (TestOFREPWebProviderFromNPM).
import assert from 'node:assert/strict';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

const baseUrl = process.env.RELAY_URL;
const key = process.env.SDK_KEY;
if (!baseUrl || !key) {
  console.error('RELAY_URL and SDK_KEY are required');
  process.exit(2);
}

// Every bulk request the provider makes, as the relay answered it.
const requests = [];
const fetchImplementation = async (req, init) => {
  const res = await fetch(req, init);
  requests.push({
    status: res.status,
    ifNoneMatch: req.headers.get('if-none-match'),
    etag: res.headers.get('etag'),
    headers: [...req.headers.keys()],
  });
  return res;
};

// waitFor polls cond every 20 ms until it holds, failing after ms.
async function waitFor(what, ms, cond) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const changes = [];
OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (e) => changes.push(e.flagsChanged ?? []));

const provider = new OFREPWebProvider({
  baseUrl,
  headers: [['Authorization', `Bearer ${key}`]],
  pollInterval: 200,
  cacheMode: 'disabled', // no localStorage in Node
  fetchImplementation,
});
await OpenFeature.setContext({ targetingKey: 'u1', plan: 'beta' });
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();

let n = 0;
function report(d, extra = {}) {
  console.log(JSON.stringify({ check: n++, ok: true, flag: d.flagKey, value: d.value, variant: d.variant, reason: d.reason, errorCode: d.errorCode, ...extra }));
}

async function run() {
  // A rule matches the beta plan: TARGETING_MATCH, true, computed by the relay in one bulk request.
  let d = client.getBooleanDetails('banner', false);
  assert.equal(d.value, true);
  assert.equal(d.variant, 'on');
  assert.equal(d.reason, 'TARGETING_MATCH');
  assert.equal(d.flagMetadata.ruleId, 'beta');
  assert.equal(requests.length, 1, 'one bulk request, no per-flag requests');
  assert.equal(requests[0].status, 200);
  assert.ok(requests[0].etag, 'the bulk answer carries an ETag');
  report(d);

  d = client.getStringDetails('theme', 'none');
  assert.equal(d.value, 'light');
  assert.equal(d.variant, 'light');
  assert.equal(d.reason, 'DEFAULT');
  report(d);

  // "limit" is server-only: a client key does not see it.
  d = client.getNumberDetails('limit', 7);
  assert.equal(d.value, 7);
  assert.equal(d.errorCode, 'FLAG_NOT_FOUND');
  report(d);

  // A new context is evaluated again by the relay: u2 is not on the beta plan, so a 50/50 split.
  await OpenFeature.setContext({ targetingKey: 'u2' });
  d = client.getBooleanDetails('banner', false);
  assert.equal(d.reason, 'SPLIT');
  assert.equal(d.flagMetadata.experimentKey, 'banner-test');
  report(d);

  // Same targetingKey, new attributes: the provider keeps its ETag, so the relay's ETag must
  // cover the context (else this would be a 304 with u2's old, non-beta values).
  await OpenFeature.setContext({ targetingKey: 'u2', plan: 'beta' });
  d = client.getBooleanDetails('banner', false);
  assert.equal(d.value, true);
  assert.equal(d.reason, 'TARGETING_MATCH');
  report(d);

  // An unchanged poll sends the last ETag back and gets 304.
  const before = requests.length;
  await waitFor('a poll answered 304', 10000, () => requests.slice(before).some((r) => r.status === 304));
  const first304 = requests.slice(before).find((r) => r.status === 304);
  const last200 = requests.slice(0, requests.indexOf(first304)).findLast((r) => r.status === 200);
  assert.equal(first304.ifNoneMatch, last200.etag);
  assert.equal(changes.length, 0, 'no configuration change before one was published');
  report(client.getStringDetails('theme', 'none'), { polls304: requests.filter((r) => r.status === 304).length });

  // The driver publishes ruleset v2 ("theme" serves "dark"); a poll brings it in.
  const headers = [...new Set(requests.flatMap((r) => r.headers))];
  console.log(JSON.stringify({ ready: true, headers }));
  await waitFor('PROVIDER_CONFIGURATION_CHANGED', 30000, () => changes.length > 0);
  assert.ok(changes[0].includes('theme'), `flagsChanged ${JSON.stringify(changes[0])} names theme`);
  d = client.getStringDetails('theme', 'none');
  assert.equal(d.value, 'dark');
  assert.equal(d.variant, 'dark');
  report(d, { flagsChanged: changes[0] });
}

try {
  await run();
} catch (err) {
  console.log(JSON.stringify({ check: n, ok: false, error: String(err), requests }));
  process.exit(1);
}
await OpenFeature.close();
