// Drives the admin page in Debian's headless Chromium (playwright-core, no browser
// download). Started by tests/it/admin_page.rs, which runs the gateway and the upstreams.
//
// Env: HOOKWALL_ADMIN (http://127.0.0.1:PORT), HOOKWALL_TOKEN, optional
// HOOKWALL_SCREENSHOTS (a folder: PNGs of each view are written there).
//
// Protocol with the Rust side: a line `@<request>` on stdout asks it to act (send
// deliveries, check what an upstream received); it answers one line on stdin, `ok ...`
// or `err ...`. Exit status 0 means every scenario passed.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const admin = new URL(process.env.HOOKWALL_ADMIN);
const token = process.env.HOOKWALL_TOKEN;
const shots = process.env.HOOKWALL_SCREENSHOTS || '';
const TIMEOUT = 15000;

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(request) {
  process.stdout.write(`@${request}\n`);
  const { value, done } = await answers.next();
  if (done) throw new Error(`no answer to @${request}`);
  if (!value.startsWith('ok')) throw new Error(`@${request}: ${value}`);
  return value.slice(3);
}

function log(line) {
  process.stdout.write(`${line}\n`);
}

async function shot(page, name) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`) });
  log(`screenshot ${name}.png`);
}

/** Waits until the text of `locator` passes `test` (the page polls every 2 s). */
async function waitText(locator, test, what) {
  const until = Date.now() + TIMEOUT;
  let last = '';
  while (Date.now() < until) {
    last = (await locator.textContent({ timeout: 1000 }).catch(() => '')) || '';
    if (test(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: still "${last}"`);
}

const profile = mkdtempSync(join(tmpdir(), 'hookwall-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const requests = [];
const problems = [];
let failed = null;
let page = null;
try {
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of (401|409) /.test(m.text())) problems.push(`console: ${m.text()}`); });

  // 1. The token prompt refuses a wrong token and accepts the right one.
  await page.goto(admin.href);
  await page.locator('#view-login').waitFor({ state: 'visible' });
  await page.fill('#login-token', 'not-the-token');
  await page.keyboard.press('Enter');
  await waitText(page.locator('#login-error'), (t) => t.includes('Wrong token'), 'wrong token message');
  if (await page.locator('#view-overview').isVisible()) throw new Error('the overview opened with a wrong token');
  await page.fill('#login-token', token);
  await page.keyboard.press('Enter');
  await page.locator('#view-overview').waitFor({ state: 'visible' });
  log('ok: token prompt');

  // 2. The overview shows the route's counters rising after real deliveries.
  const forwarded = page.locator('article[data-route="acme"] [data-counter="forwarded"]');
  const before = Number(await waitText(forwarded, (t) => t !== '', 'forwarded counter'));
  await ask('deliver 3');
  await waitText(forwarded, (t) => Number(t) >= before + 3, 'forwarded counter after 3 deliveries');
  await ask('reject');
  const rejectedReason = page.locator('article[data-route="acme"] [data-reason="invalid_signature"]');
  await waitText(rejectedReason, (t) => t.includes('1'), 'rejections by reason');
  log('ok: overview counters rise');
  await ask('deliver 2');
  await waitText(forwarded, (t) => Number(t) >= before + 5, 'forwarded counter after 5 deliveries');
  await page.waitForTimeout(2500); // one more poll, so the sparkline has a shape
  await shot(page, 'overview');

  // Keyboard: the nav links are reachable and open their view.
  await page.locator('#nav a[data-view="deliveries"]').focus();
  await page.keyboard.press('Enter');
  await page.locator('#view-deliveries').waitFor({ state: 'visible' });

  // 3. A rejected delivery appears with its reason and diagnosis.
  await page.selectOption('#filter select[name="outcome"]', 'rejected');
  await page.click('#filter button[type="submit"]');
  const rejectedRow = page.locator('#deliveries-table tbody tr[data-outcome="rejected"]').first();
  await waitText(rejectedRow.locator('[data-reason]'), (t) => t === 'invalid_signature', 'rejected row reason');
  await rejectedRow.locator('a').click();
  await waitText(page.locator('#detail [data-diagnosis]'), (t) => t.includes('trailing_newline_added'), 'diagnosis');
  await waitText(page.locator('#detail .hint p'), (t) => t.includes('newline was added'), 'diagnosis explained');
  // Its replay is refused with a clear message: it never passed verification.
  await page.click('#detail [data-action="replay"]');
  await waitText(page.locator('#detail [data-result]'), (t) => t.includes('failed verification'), 'not_verified message');
  await waitText(page.locator('#detail [data-body]'), (t) => t.includes('"id": "evt-bad"'), 'pretty JSON body');
  log('ok: rejected delivery with reason and diagnosis');
  await shot(page, 'deliveries');

  // 4. Replay sends the exact bytes again.
  await ask('exact');
  await page.fill('#filter input[name="dedup_id"]', 'evt-exact');
  await page.selectOption('#filter select[name="outcome"]', '');
  await page.click('#filter button[type="submit"]');
  const exactRow = page.locator('#deliveries-table tbody tr[data-outcome="forwarded"]').first();
  await exactRow.locator('a').click();
  await page.locator('#detail [data-action="replay"]').waitFor();
  await page.click('#detail [data-action="replay"]');
  await waitText(page.locator('#detail [data-result]'), (t) => t.includes('upstream answered 200'), 'replay result');
  await ask('check-replay');
  await waitText(page.locator('#detail [data-replays]'), (t) => t.includes('upstream 200'), 'replay history');
  log('ok: replay delivered the exact bytes');

  // Bulk replay: the confirmation says how many match, and the job runs.
  await page.fill('#filter input[name="dedup_id"]', '');
  await page.selectOption('#filter select[name="route"]', 'acme');
  await page.selectOption('#filter select[name="outcome"]', 'forwarded');
  await page.click('#filter button[type="submit"]');
  const matching = Number(await ask('count-forwarded'));
  await page.click('#bulk-replay');
  await waitText(page.locator('#confirm-title'), (t) => t === `Replay ${matching} deliveries?`, 'bulk confirmation count');
  await page.click('#confirm-ok');
  await waitText(page.locator('#bulk-progress'), (t) => t.includes(`${matching} of ${matching} sent`) && t.includes('done'), 'bulk progress');
  log('ok: bulk replay');

  // 5. Dead-letter retry from the page delivers.
  await ask('dead-letter');
  await page.click('#nav a[data-view="queue"]');
  const dead = page.locator('#dead-table tbody tr[data-delivery="evt-dead"]');
  await dead.waitFor();
  await page.waitForSelector('#queue-table tbody tr[data-route="orders"]');
  await shot(page, 'queue');
  await ask('upstream-back');
  await dead.locator('[data-action="retry"]').click();
  await waitText(page.locator('#flash'), (t) => t.includes('Back in the queue'), 'retry message');
  await ask('check-retry');
  await page.locator('#dead-table tbody tr[data-delivery="evt-dead"]').waitFor({ state: 'detached' });
  log('ok: dead letter retried and delivered');

  // Reconcile: run now recovers the event the webhook missed.
  await page.click('#nav a[data-view="reconcile"]');
  const stripe = page.locator('#reconcile-table tbody tr[data-route="stripe"]');
  await stripe.locator('[data-action="run"]').click();
  await waitText(page.locator('#flash'), (t) => t.includes('1 recovered'), 'run now summary');
  await waitText(stripe.locator('[data-recovered]'), (t) => t === '1', 'recovered count');
  log('ok: reconcile run now');
  await shot(page, 'reconcile');

  // Config: the route table with secrets redacted, and a reload.
  await page.click('#nav a[data-view="config"]');
  await page.locator('#routes-table tbody tr[data-route="acme"]').waitFor();
  const table = await page.locator('#routes-table').textContent();
  if (!table.includes('[redacted]')) throw new Error('secrets are not shown redacted');
  if (table.includes(process.env.HOOKWALL_SECRET)) throw new Error('a secret is on the page');
  await page.click('#reload');
  await waitText(page.locator('#reload-state'), (t) => t.includes('ok at'), 'last reload result');
  log('ok: config and reload');
  await shot(page, 'config');

  // Narrow window and dark scheme stay readable (looked at in the screenshots).
  if (shots) {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.click('#nav a[data-view="overview"]');
    await page.waitForTimeout(300);
    await shot(page, 'overview-dark');
    await page.setViewportSize({ width: 420, height: 860 });
    await shot(page, 'overview-narrow');
  }

  // 6. No request left for any host but the admin listener.
  const foreign = requests.filter((u) => new URL(u).host !== admin.host);
  if (foreign.length) throw new Error(`requests to other hosts: ${foreign.join(', ')}`);
  log(`ok: ${requests.length} requests, all to ${admin.host}`);
  if (problems.length) throw new Error(problems.join('\n'));
} catch (e) {
  failed = e;
  // What the page showed, for the failure report.
  const shown = await page?.locator('main').innerText().catch(() => '');
  log(`page text at failure:\n${shown}`);
  await page?.screenshot({ path: join(tmpdir(), 'hookwall-admin-page-failure.png') }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed) {
  log(`FAIL: ${failed.stack || failed}`);
  if (problems.length) log(problems.join('\n'));
  process.exit(1);
}
log('PASS');
process.exit(0);
