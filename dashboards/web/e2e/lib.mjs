// Helpers of the browser tests: launch Debian's Chromium through playwright-core, sign in,
// call the APIs through the dashboards server, poll with deadlines, save screenshots.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests through dashboards/scripts/test.sh e2e`);
  return v;
}

export const env = {
  url: need('SWITCHYARD_E2E_URL'),
  token: need('SWITCHYARD_E2E_TOKEN'),
  project: need('SWITCHYARD_E2E_PROJECT'),
  sdkKey: need('SWITCHYARD_E2E_SDK_KEY'),
  ingestURL: need('SWITCHYARD_E2E_INGEST_URL'),
  artifacts: need('SWITCHYARD_E2E_ARTIFACTS'),
};
mkdirSync(env.artifacts, { recursive: true });

// Flags from machines/polyglot.md: without the background-networking ones, Chromium keeps
// trying hosts this machine cannot reach.
export async function launch() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ baseURL: env.url, viewport: { width: 1440, height: 900 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // HTTP errors the app handles (a 409 for a duplicate key, a 503 from a service that is not
    // running) are logged by Chromium as "Failed to load resource"; anything else is a bug.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
  });
  return { browser, context, page, problems };
}

export async function signIn(page) {
  await page.goto('/');
  await page.getByRole('heading', { name: 'Sign in to Switchyard' }).waitFor();
  await page.getByLabel('API token').fill(env.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

export async function shot(page, name) {
  const path = join(env.artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export function saveText(name, text) {
  writeFileSync(join(env.artifacts, name), text);
}

/** Calls an API through the dashboards server (so the proxy is exercised too). */
export async function api(method, path, body) {
  const resp = await fetch(env.url + path, {
    method,
    headers: { Authorization: `Bearer ${env.token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Polls fn until it returns a truthy value or the deadline passes. */
export async function eventually(what, fn, timeoutMs = 30_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A UUIDv7 (what SDKs send as event_id). */
export function uuidv7(ms = Date.now()) {
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Sends SDK events to the ingest collector with the server SDK key. */
export async function sendEvents(events) {
  for (let i = 0; i < events.length; i += 5000) {
    const batch = events.slice(i, i + 5000);
    const resp = await fetch(`${env.ingestURL}/v1/events`, {
      method: 'POST',
      headers: { Authorization: env.sdkKey, 'Content-Type': 'application/json' },
      body: JSON.stringify(batch),
    });
    const body = await resp.json();
    if (resp.status !== 202 || body.accepted !== batch.length) throw new Error(`ingest answered ${resp.status} ${JSON.stringify(body)}`);
  }
}
