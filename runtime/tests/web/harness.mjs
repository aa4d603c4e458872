// What every browser test here shares: Debian's Chromium launched headless, a watch on each
// page's console and uncaught errors, axe-core audits, full-page screenshots, and the mails
// the server sent to the test's SMTP sink. The server's address comes in PENPAL_URL.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BASE = process.env.PENPAL_URL;
export const SHOTS = process.env.SCREENSHOTS || 'screenshots';
const MAILDIR = process.env.MAILDIR;
assert.ok(BASE, 'PENPAL_URL is not set: run this through `cargo test -p penpal --test integration -- web::`');
mkdirSync(SHOTS, { recursive: true });
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // As root in a container Chromium's sandbox cannot start; the network flags keep it from
  // calling out to Google from a machine with no internet.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});

export const problems = [];
let step = 'start';
/** Names the step under way, for the failure report. */
export const log = (s) => { step = s; console.log(`- ${s}`); };
/** The step under way. */
export const currentStep = () => step;

export function watch(page) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console error on ${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught error on ${page.url()}: ${e.message}`));
}

/** Runs axe-core on the page; serious and critical violations fail the run. */
export async function audit(page, name) {
  // Evaluated through the DevTools protocol, so the page's CSP (no inline scripts) still holds.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`), [],
    `accessibility violations on ${name}`);
}

export async function shoot(page, name) {
  // Scrolled to the end, a sticky composer sits where it belongs in a full-page picture.
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits for the app to draw the page at `path`, then audits and photographs it. */
export async function check(page, name, path) {
  if (path) await page.waitForURL((u) => u.pathname === path || u.pathname.startsWith(path));
  await page.locator('main h1').first().waitFor();
  await audit(page, name);
  await shoot(page, name);
}

/** The text of every part of a raw message, decoded (quoted-printable or base64). */
export function mailText(raw) {
  return raw.split(/\r?\n--/).map((part) => {
    const [head, ...rest] = part.split(/\r?\n\r?\n/);
    const body = rest.join('\n\n');
    const cte = (head.match(/content-transfer-encoding:\s*([\w-]+)/i) || [])[1] || '';
    if (/base64/i.test(cte)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (/quoted-printable/i.test(cte)) {
      const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, x) => String.fromCharCode(parseInt(x, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    }
    return part;
  }).join('\n');
}

/** The newest link to `/page#token=…` mailed to `to`, waiting for it to arrive. */
export async function mailedLink(to, page) {
  return mailedMatch(to, new RegExp(`https?://[^\\s"<>]*/${page}#token=[A-Za-z0-9_-]+`));
}

/** The newest match of `pattern` in a mail to `to`, waiting for it to arrive. */
export async function mailedMatch(to, pattern) {
  for (let i = 0; i < 300; i++) {
    const files = readdirSync(MAILDIR).filter((f) => f.endsWith('.eml')).sort().reverse();
    for (const f of files) {
      const raw = readFileSync(join(MAILDIR, f), 'utf8');
      if (!new RegExp(`^To: .*${to.replace(/[.+]/g, '\\$&')}`, 'mi').test(raw)) continue;
      const m = mailText(raw).match(pattern);
      if (m) return m[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail to ${to} matching ${pattern}`);
}

/** Runs `journey`, then closes the browser; on failure prints the step and the pages'
 * problems, photographs every open page and exits non-zero. Prints `NAME complete` on success. */
export async function run(name, journey) {
  try {
    await journey();
    assert.deepEqual(problems, [], 'the pages logged errors');
    console.log(`${name} complete`);
    await browser.close();
  } catch (e) {
    console.log(`FAILED at step: ${step}`);
    console.log(e && e.stack ? e.stack : String(e));
    if (problems.length) console.log(`page problems:\n${problems.join('\n')}`);
    try {
      for (const ctx of browser.contexts()) for (const p of ctx.pages()) await p.screenshot({ path: join(SHOTS, `failure-${name}-${ctx.pages().indexOf(p)}.png`), fullPage: true });
    } catch { /* best effort */ }
    await browser.close();
    process.exit(1);
  }
}
