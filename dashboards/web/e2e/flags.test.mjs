// Managing a flag in the browser: create it, edit a rule (with validation), toggle it in a
// normal and a critical environment, roll a change back — each checked against the flag
// service's API, not only against what the page shows.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, env, eventually, launch, shot, signIn } from './lib.mjs';

let b;
before(async () => {
  b = await launch();
  await signIn(b.page);
});
after(async () => {
  await b?.browser.close();
  assert.deepEqual(b?.problems ?? [], [], 'the pages logged errors');
});

const P = env.project;
const flagKey = 'one-page-checkout';

test('creates a flag', async () => {
  const { page } = b;
  await page.goto(`/p/${P}/flags`);
  await page.getByRole('heading', { name: 'Flags' }).waitFor();
  await page.getByRole('button', { name: 'New flag' }).click();
  const dialog = page.getByRole('dialog', { name: 'New flag' });
  await dialog.getByLabel('Key').fill(flagKey);
  await dialog.getByLabel('Name').fill('One-page checkout');
  await dialog.getByLabel('Tags').fill('checkout, experiment');
  await dialog.getByRole('button', { name: 'Create flag' }).click();
  await page.getByRole('heading', { name: 'One-page checkout' }).waitFor();
  await page.waitForURL(`**/p/${P}/flags/${flagKey}`);
  const flag = await api('GET', `/api/v1/projects/${P}/flags/${flagKey}`);
  assert.deepEqual(flag.variations.map((v) => v.key), ['on', 'off']);
  assert.deepEqual(flag.tags, ['checkout', 'experiment']);

  await page.goto(`/p/${P}/flags`);
  await page.getByLabel('Search (press /)').waitFor();
  // "/" focuses the search; filtering by text narrows the list to the new flag.
  await page.keyboard.press('/');
  await page.keyboard.type('one-page');
  await page.getByRole('link', { name: flagKey }).waitFor();
  await eventually('the list to show only matching flags', async () => (await page.getByRole('row').count()) === 2);
  await shot(page, 'flags-list');
});

test('edits a rule, refusing an invalid one', async () => {
  const { page } = b;
  await page.goto(`/p/${P}/flags/${flagKey}`);
  await page.getByRole('tab', { name: 'Development' }).click();
  const panel = page.getByRole('tabpanel');
  await panel.getByRole('button', { name: 'Add rule' }).click();
  const rule = panel.getByRole('listitem', { name: 'Rule 1' });
  await rule.getByLabel('Attribute').fill('email');
  await rule.getByLabel('Operator').selectOption('matches');
  await rule.getByLabel('Values (comma-separated)').fill('(example');
  await rule.getByText('“(example” is not a valid regular expression').waitFor();
  assert.equal(await panel.getByRole('button', { name: 'Save targeting' }).isDisabled(), true, 'an invalid rule must not be saveable');

  await rule.getByLabel('Operator').selectOption('ends_with');
  await rule.getByLabel('Values (comma-separated)').fill('@example.com, @example.org');
  await rule.getByLabel('Variation', { exact: true }).selectOption('on');
  await panel.getByLabel('Change comment').fill('staff get the new checkout');
  await panel.getByRole('button', { name: 'Save targeting' }).click();
  await panel.getByRole('listitem').filter({ hasText: 'v2 · update' }).waitFor();

  const cfg = await api('GET', `/api/v1/projects/${P}/flags/${flagKey}/environments/development`);
  assert.equal(cfg.version, 2);
  assert.equal(cfg.rules.length, 1);
  assert.deepEqual(cfg.rules[0].clauses[0], { attribute: 'email', op: 'ends_with', values: ['@example.com', '@example.org'] });
  assert.deepEqual(cfg.rules[0].serve, { variation: 'on' });
});

test('toggles the flag, asking for confirmation in the critical environment', async () => {
  const { page } = b;
  await page.goto(`/p/${P}/flags/${flagKey}`);
  await page.getByRole('switch', { name: `${flagKey} in Development` }).click();
  await eventually('development to be on', async () => (await api('GET', `/api/v1/projects/${P}/flags/${flagKey}/environments/development`)).on === true);

  await page.getByRole('switch', { name: `${flagKey} in Production` }).click();
  const dialog = page.getByRole('dialog', { name: `Turn ${flagKey} on in Production?` });
  await dialog.waitFor();
  const confirm = dialog.getByRole('button', { name: 'Turn on' });
  assert.equal(await confirm.isDisabled(), true, 'a critical change needs the environment typed first');
  await dialog.getByLabel('Comment (recorded in the audit log)').fill('launch');
  await dialog.getByLabel('Type production to confirm').fill('production');
  await confirm.click();
  await dialog.waitFor({ state: 'detached' });
  const prod = await api('GET', `/api/v1/projects/${P}/flags/${flagKey}/environments/production`);
  assert.equal(prod.on, true);
  await page.getByRole('switch', { name: `${flagKey} in Production`, checked: true }).waitFor();
  await shot(page, 'flag-detail');
});

test('rolls a change back in one click (plus confirmation)', async () => {
  const { page } = b;
  await page.goto(`/p/${P}/flags/${flagKey}`);
  await page.getByRole('tab', { name: 'Development' }).click();
  const panel = page.getByRole('tabpanel');
  await panel.getByRole('button', { name: 'Roll back to version 1' }).click();
  const dialog = page.getByRole('dialog', { name: 'Roll back to v1 in Development?' });
  await dialog.getByRole('button', { name: 'Roll back' }).click();
  await dialog.waitFor({ state: 'detached' });
  const cfg = await eventually('the rollback', async () => {
    const c = await api('GET', `/api/v1/projects/${P}/flags/${flagKey}/environments/development`);
    return c.version === 4 ? c : null; // v2 rule, v3 toggle, v4 rollback to v1
  });
  assert.deepEqual(cfg.rules, []);
  await panel.getByRole('listitem').filter({ hasText: 'v4 · rollback' }).waitFor();
});

test('the audit log shows the changes and exports them', async () => {
  const { page } = b;
  await page.goto('/audit');
  await page.getByLabel('Action (press /)').fill('flag_config.');
  const rows = page.getByTestId('audit-row');
  await rows.filter({ hasText: 'flag_config.toggle' }).first().waitFor();
  await rows.filter({ hasText: 'flag_config.rollback' }).first().waitFor();
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Export CSV' }).click();
  const file = await download;
  assert.equal(file.suggestedFilename(), 'switchyard-audit.csv');
  await shot(page, 'audit-log');
});

test('environments: create and copy an SDK key', async () => {
  const { page } = b;
  await page.goto(`/p/${P}/environments`);
  await page.getByRole('heading', { name: 'Environments & SDK keys' }).waitFor();
  const card = page.locator('section').filter({ has: page.getByRole('heading', { name: /^Staging/ }) });
  await card.getByRole('button', { name: 'New SDK key' }).click();
  const dialog = page.getByRole('dialog', { name: 'New SDK key in Staging' });
  await dialog.getByLabel('Name').fill('web shop');
  await dialog.getByLabel('Kind').selectOption('client');
  await dialog.getByRole('button', { name: 'Create key' }).click();
  const key = await card.getByTestId('new-sdk-key').textContent();
  assert.match(key, /^sdk-cli-/);
  const keys = await api('GET', `/api/v1/projects/${P}/environments/staging/sdk-keys`);
  assert.ok(keys.items.some((k) => k.key === key), 'the created key is listed by the API');
  await shot(page, 'environments');
  // Revoked with a comment, which reaches the audit log (a DELETE has no body: it travels in
  // a header, percent-encoded, through the dashboards' proxy).
  await card.getByRole('button', { name: 'Revoke web shop' }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke “web shop” now?' });
  await confirm.getByLabel('Comment (recorded in the audit log)').fill('fuite dans les logs — 100% remplacée');
  await confirm.getByRole('button', { name: 'Revoke' }).click();
  await confirm.waitFor({ state: 'detached' });
  const audit = await api('GET', '/api/v1/audit?action=sdk_key.revoke');
  assert.equal(audit.items.find((e) => e.resource_key === 'web shop')?.comment, 'fuite dans les logs — 100% remplacée');
});

test('metrics catalog: create a metric without SQL, with the API’s validation next to the field', async () => {
  const { page } = b;
  await page.goto(`/p/${P}/metrics`);
  const create = async () => {
    await page.getByRole('button', { name: 'New metric' }).click();
    const dialog = page.getByRole('dialog', { name: 'New metric' });
    await dialog.getByLabel('Key', { exact: true }).fill('add-to-cart');
    await dialog.getByLabel('Name').fill('Add to cart');
    await dialog.getByLabel('Event key').fill('add-to-cart');
    return dialog;
  };
  let dialog = await create();
  await dialog.getByLabel('until').fill('a week');
  await dialog.getByRole('button', { name: 'Create metric' }).click();
  await dialog.getByText('a duration such as 0s, 24h or 168h').waitFor();
  await dialog.getByLabel('until').fill('168h');
  await dialog.getByRole('button', { name: 'Create metric' }).click();
  await dialog.waitFor({ state: 'detached' });
  const m = await api('GET', `/api/v1/projects/${P}/metrics/add-to-cart`);
  assert.equal(m.kind, 'proportion');
  assert.equal(m.window.start, '0s');
  assert.match(m.window.end, /^168h(0m0s)?$/); // Go's duration spelling
  // The same key again: the flag service refuses it, and says so in the form.
  dialog = await create();
  await dialog.getByRole('button', { name: 'Create metric' }).click();
  await dialog.getByRole('alert').first().waitFor();
  assert.match(await dialog.getByRole('alert').first().textContent(), /add-to-cart|exists|already/i);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('row').filter({ hasText: 'Add to cart' }).waitFor();
  await shot(page, 'metrics');
});

test('the other pages render', async () => {
  const { page } = b;
  for (const [path, heading, name] of [
    [`/p/${P}/guardrails`, 'Guardrails', 'guardrails'],
    [`/p/${P}/stale`, 'Stale flags', 'stale-flags'],
    ['/members', 'Members & roles', 'members'],
  ]) {
    await page.goto(path);
    await page.getByRole('heading', { name: heading, exact: true }).waitFor();
    // Every loading indicator gone (a page may load several lists at once).
    await page.waitForFunction(() => ![...document.querySelectorAll('[role="status"]')].some((e) => e.textContent.includes('Loading')));
    await shot(page, name);
  }
});
