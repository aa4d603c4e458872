// The marketplace in Debian's Chromium, as its three kinds of users meet it: a publisher signs
// up in the dashboard, registers the key they signed with and makes a publish token, and
// publishes with `penpal plugin publish`; the operator finds the package, reads what it asks
// for and installs it granting only part of it; a learner chats with it. Every page is
// checked with axe-core and photographed. Run by `cargo test -p penpal --test integration --
// web::`, which starts the server and passes PENPAL_URL, PENPAL_BIN, ARCHIVE and PUBLIC_KEY.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BASE, browser, log, watch, audit, shoot, check, run } from './harness.mjs';

const { PENPAL_BIN, ARCHIVE, PUBLIC_KEY } = process.env;
const PASSWORD = 'correct horse battery';

async function signIn(email) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'en-GB' });
  const page = await ctx.newPage();
  watch(page);
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.locator('main').getByRole('button', { name: 'Sign in', exact: true }).first().click();
  await page.waitForURL((u) => u.pathname !== '/login');
  return page;
}

await run('marketplace journey', async () => {
  log('a visitor browses the catalogue: nothing is published yet');
  const visitor = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  watch(visitor);
  await visitor.goto(`${BASE}/`);
  await visitor.getByRole('link', { name: 'Marketplace' }).click();
  await check(visitor, 'marketplace-empty-desktop', '/marketplace');
  await visitor.getByText('Nothing matches').waitFor();

  log('Ada becomes a publisher in her dashboard');
  const ada = await signIn('ada@example.com');
  await ada.goto(`${BASE}/publisher`);
  await check(ada, 'publisher-new-desktop', '/publisher');
  await ada.getByLabel('Publisher name').fill('ada');
  await ada.getByLabel('Name people see').fill('Ada’s tutors');
  await ada.getByRole('button', { name: 'Become a publisher' }).click();
  await ada.getByRole('heading', { name: 'Publisher: Ada’s tutors' }).waitFor();
  await ada.getByText('No key yet').waitFor();

  log('she registers the key she signs with, and makes a token for publishing');
  await ada.getByLabel('Public key').fill(PUBLIC_KEY);
  await ada.getByLabel('Label', { exact: true }).first().fill('laptop');
  await ada.getByRole('button', { name: 'Register key' }).click();
  await ada.getByRole('button', { name: 'Revoke laptop' }).waitFor();
  const tokens = ada.locator('section', { has: ada.getByRole('heading', { name: 'Publish tokens' }) });
  await tokens.getByLabel('Label').fill('CI');
  await tokens.getByRole('button', { name: 'Make a token' }).click();
  const shown = ada.locator('pre.token');
  await shown.waitFor();
  const token = (await shown.innerText()).trim();
  assert.match(token, /^pp_/, 'the token is shown once, in full');
  await ada.getByText('Copy it now').waitFor();
  await check(ada, 'publisher-dashboard-desktop', '/publisher');

  log('penpal plugin publish, with that token, as her CI would');
  const out = execFileSync(PENPAL_BIN, ['plugin', 'publish', ARCHIVE, '--registry', BASE], {
    env: { ...process.env, PENPAL_TOKEN: token, PENPAL_LOG: 'warn' }, encoding: 'utf8',
  });
  assert.match(out, /published ada-camille 1\.0\.0/);
  await ada.reload();
  await ada.getByRole('heading', { name: 'Your packages' }).waitFor();
  await ada.getByRole('button', { name: 'Withdraw 1.0.0' }).waitFor();
  assert.match(await ada.getByRole('button', { name: 'Make a token' }).locator('xpath=ancestor::section').innerText(), /CI — last used/);
  await shoot(ada, 'publisher-published-desktop');

  log('the operator finds it by a word of its description and a filter');
  const ops = await signIn('ops@example.com');
  await ops.getByRole('link', { name: 'Marketplace' }).click();
  await ops.getByLabel('Search').fill('patient');
  await ops.getByLabel('Kind').selectOption('tutor');
  await ops.getByRole('button', { name: 'Find' }).click();
  await ops.waitForURL((u) => u.searchParams.get('q') === 'patient' && u.searchParams.get('kind') === 'tutor');
  const found = ops.getByRole('list', { name: 'Packages found' }).getByRole('listitem');
  assert.equal(await found.count(), 1);
  assert.match(await found.innerText(), /by ada · v1\.0\.0/);
  await check(ops, 'marketplace-search-desktop', '/marketplace');

  log('its page says what it asks for in plain words; nothing is ticked');
  await found.getByRole('link').click();
  await check(ops, 'package-desktop', '/marketplace/ada-camille');
  const asks = ops.locator('ul.asks');
  assert.match(await asks.innerText(), /Keep its own data on this server/);
  assert.match(await asks.innerText(), /Ask this server’s language model/);
  const panel = ops.getByRole('region', { name: 'Install for the whole server' });
  const keep = panel.getByLabel(/Keep its own data/);
  const model = panel.getByLabel(/Ask this server’s language model/);
  assert.equal(await keep.isChecked(), false);
  assert.equal(await model.isChecked(), false);
  assert.match(await ops.locator('pre.readme').innerText(), /A patient tutor/);

  log('the operator grants the store, not the model');
  await keep.check();
  await panel.getByRole('button', { name: 'Install version 1.0.0' }).click();
  await panel.getByText('ada-camille 1.0.0 is installed.').waitFor();
  assert.match(await panel.locator('dd.granted').innerText(), /Keep its own data/);
  assert.match(await panel.locator('dd.ungranted').innerText(), /language model/);
  await audit(ops, 'package installed');
  await shoot(ops, 'package-installed-desktop');

  log('a learner picks the new tutor and chats with it');
  const ana = await signIn('ana@example.com');
  await ana.goto(`${BASE}/chat`);
  await ana.locator('main h1').first().waitFor();
  await ana.getByLabel('Tutor', { exact: true }).selectOption('ada-camille');
  await ana.getByRole('button', { name: 'Start' }).click();
  await ana.waitForURL(/\/chat\/[A-Za-z0-9_-]+$/);
  await ana.locator('.conn[data-state="online"]').waitFor();
  const box = ana.getByLabel('Your message');
  await box.fill('Je va au cinema avec mon amis');
  await box.press('Enter');
  const reply = ana.locator('.thread .msg.tutor:not(.streaming)').last();
  await reply.waitFor();
  assert.match(await reply.innerText(), /penpal-scripted/);
  await ana.locator('.thread .msg.learner').last().locator('.corrections').waitFor();

  log('the publisher withdraws the version; the catalogue no longer offers it');
  await ada.getByRole('button', { name: 'Withdraw 1.0.0' }).click();
  await ada.getByRole('button', { name: 'Restore 1.0.0' }).waitFor();
  await visitor.goto(`${BASE}/marketplace?q=patient`);
  await visitor.getByText('Nothing matches').waitFor();
});
