import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootService, type BootedService } from '../support/service.js';

/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against a live
 * meshlimit under a little load: the top-limited table fills, the explain form answers, an
 * override set in the form is listed with its audit entry and removed again. A screenshot is
 * saved under test-results/ (gitignored) for a human to look at.
 */
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-test-token-0123456789';
const OUT = path.resolve(import.meta.dirname, '../../test-results');
const CONFIG = `
domain: edge
descriptors:
  - key: company_id
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: remote_address
    detailed_metric: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
`;

let svc: BootedService;
let browser: Browser;
let page: Page;

const ask = (key: string, value: string) =>
  fetch(`${svc.httpUrl}/json`, { method: 'POST', body: JSON.stringify({ domain: 'edge', descriptors: [{ entries: [{ key, value }] }] }) });

beforeAll(async () => {
  svc = await bootService({ files: { 'edge.yaml': CONFIG }, env: { BACKEND_TYPE: 'memory', ADMIN_TOKEN: TOKEN } });
  // A little load: some companies and addresses over their limits.
  for (let i = 0; i < 6; i++) for (const c of ['acme', 'globex', 'initech']) await ask('company_id', c);
  for (let i = 0; i < 3; i++) await ask('remote_address', '10.0.0.9');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  // The console must work offline: any request that leaves the admin port fails the test.
  page.on('request', (r) => {
    if (!r.url().startsWith(svc.httpUrl)) throw new Error(`the console requested ${r.url()}`);
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await svc?.close();
});

describe('web console', () => {
  it('shows the top limited descriptors (values only where the rule allows), runs explain, and round-trips an override', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${svc.httpUrl}/`);
    await page.fill('#token', TOKEN);
    await page.dispatchEvent('#token', 'change');

    // Top limited: three companies (values hidden) and one address (detailed_metric: shown).
    const rows = page.locator('#top-limited tbody tr');
    await rows.first().waitFor();
    await expect.poll(() => rows.count()).toBe(4);
    const table = await page.locator('#top-limited').innerText();
    expect(table).toContain('edge.company_id');
    expect(table).toContain('10.0.0.9');
    expect(table).not.toContain('acme');
    // Config tree with live decisions and denials per rule.
    await expect.poll(() => page.locator('#config-tree').innerText()).toMatch(/18 decisions, 12 denied/);
    await expect.poll(() => page.locator('#state-summary').innerText()).toContain('memory connected');

    // Explain: answers for the body in the form, charging nothing.
    await page.fill(
      '#explain-body',
      JSON.stringify({ domain: 'edge', descriptors: [{ entries: [{ key: 'company_id', value: 'acme' }] }] }),
    );
    await page.click('#explain-form button[type=submit]');
    await expect.poll(() => page.locator('#explain-result').innerText()).toMatch(/^200\n/);
    expect(await page.locator('#explain-result').innerText()).toContain('edge.company_id');

    // Counters lookup and reset.
    await page.fill('#counters-domain', 'edge');
    await page.fill('#counters-descriptor', 'company_id=acme');
    await page.click('#counters-form button[type=submit]');
    await expect.poll(() => page.locator('#counters-table tbody').innerText()).toContain('edge.company_id');
    page.once('dialog', (d) => void d.accept());
    await page.click('#counters-reset');
    await expect.poll(() => page.locator('#counters-message').innerText()).toContain('1 counter(s) deleted');
    expect((await ask('company_id', 'acme')).status).toBe(200);

    // Override round trip: set in the form, listed with its audit entry, enforced, removed.
    await page.fill('#override-domain', 'edge');
    await page.fill('#override-descriptor', 'company_id=globex');
    await page.fill('#override-rpu', '50');
    await page.selectOption('#override-unit', 'minute');
    await page.click('#override-form button[type=submit]');
    await expect.poll(() => page.locator('#overrides-table tbody').innerText()).toContain('company_id=globex');
    expect(await page.locator('#overrides-table tbody').innerText()).toContain('50/minute');
    await expect.poll(() => page.locator('#audit-table tbody tr').count()).toBe(1);
    expect((await ask('company_id', 'globex')).status).toBe(200);
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'console.png'), fullPage: true });

    await page.locator('#overrides-table tbody button', { hasText: 'Remove' }).click();
    await expect.poll(() => page.locator('#overrides-table tbody tr').count()).toBe(0);
    await expect.poll(() => page.locator('#audit-table tbody tr').count()).toBe(2);
    // Back to 2 a minute: the third ask in a row is denied, whether or not the minute of the
    // load above has ended meanwhile (a single ask was answered 200 when it had, on a slow run).
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await ask('company_id', 'globex')).status);
    expect(statuses[2]).toBe(429);
    expect(errors).toEqual([]);
  }, 60_000);
});
