/**
 * The admin console (issue 16) end to end, in Debian's headless Chromium driven by
 * playwright-core: sign in, see the nodes, queues and dead-letter pages, find a channel by
 * prefix, open it, publish from the form and watch the publication arrive in the live view of
 * another tab (the session, not a user token, authorises the stream). Script errors and
 * Content-Security-Policy violations fail the test.
 *
 * Screenshots of every page are kept in test-output/admin/ (gitignored), or in
 * TIDINGS_E2E_SCREENSHOTS when set. Needs /usr/bin/chromium, as test/e2e/demo.test.ts.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app/gateway.js';
import { ADMIN_PASSWORD } from '../helpers/admin.js';
import { CHROMIUM, launchChromium, skipWithoutChromium } from '../helpers/browser.js';
import { API_KEY, call } from '../helpers/api.js';
import { TestStack, uniqueChannel } from '../helpers/stack.js';

const skip = skipWithoutChromium('test/e2e/admin.test.ts');

const UI_TIMEOUT = 20_000;
const SHOTS =
  process.env.TIDINGS_E2E_SCREENSHOTS ?? join(import.meta.dirname, '..', '..', 'test-output', 'admin');

describe.skipIf(skip)(`admin console in headless Chromium (${CHROMIUM})`, () => {
  const stack = new TestStack();
  let browser: Browser;
  let context: BrowserContext;
  let gateway: RunningGateway;
  const problems: string[] = [];
  const base = uniqueChannel('e2e-admin');
  const channel = `${base}-room`;

  beforeAll(async () => {
    gateway = await stack.gateway({ TIDINGS_ADMIN_PASSWORD: ADMIN_PASSWORD, TIDINGS_API_KEY: API_KEY });
    await stack.worker({ TIDINGS_NODE_NAME: 'worker-e2e' });
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await stack.close();
  });

  async function open(path: string): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT);
    page.on('pageerror', (err) => problems.push(`${path}: ${err.message}`));
    page.on('console', (msg) => {
      // The wrong password's 401 is meant; anything else (a CSP violation above all) is not.
      if (msg.type() === 'error' && !msg.text().includes('status of 401'))
        problems.push(`${path}: console: ${msg.text()}`);
    });
    await page.goto(`http://127.0.0.1:${gateway.port}${path}`);
    return page;
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  it('signs in, shows the cluster, finds a channel, publishes, and sees it arrive live', async () => {
    await call(gateway.port, 'publish', { channel, data: { text: 'before the console' } });
    await call(gateway.port, 'publish', { channel: `${base}-other`, data: { text: '<b>not bold</b>' } });

    const page = await open('/admin/nodes');
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await shot(page, '1-login');
    await page.locator('#password').fill('wrong-password-000000');
    await page.locator('button[type=submit]').click();
    await page.locator('.banner.error', { hasText: 'Wrong password' }).waitFor();
    await page.locator('#password').fill(ADMIN_PASSWORD);
    await page.locator('button[type=submit]').click();
    await page.waitForURL('**/admin/nodes');
    await page.locator('td', { hasText: gateway.nodeName }).waitFor();
    await waitForText(page, '/admin/nodes', 'worker-e2e');
    await shot(page, '2-nodes');

    await page.locator('nav a', { hasText: 'Queues' }).click();
    await page.locator('h1', { hasText: 'Queues' }).waitFor();
    await shot(page, '3-queues');
    await page.locator('nav a', { hasText: 'Dead letters' }).click();
    await page.locator('h2', { hasText: 'Webhook dead letters' }).waitFor();
    await shot(page, '4-dead-letters');

    await page.locator('nav a', { hasText: 'Channels' }).click();
    await page.locator('#prefix').fill(base);
    await page.locator('form.search button').click();
    await page.locator('td a', { hasText: channel }).waitFor();
    expect(await page.locator('td a').allTextContents()).toEqual([`${base}-other`, channel]);
    await shot(page, '5-channels');

    await page.locator('td a', { hasText: channel }).click();
    await page.locator('#live-state[data-state="live"]').waitFor();
    await page.locator('td pre', { hasText: 'before the console' }).waitFor();
    expect(await page.locator('#top-offset').textContent()).toBe('1');

    // Another tab publishes through the form; this one sees it arrive on its live stream.
    const publisher = await open(`/admin/channel?name=${encodeURIComponent(channel)}`);
    await publisher
      .locator('#data')
      .fill('{"text": "hello from the console", "html": "<img src=x onerror=alert(1)>"}');
    await publisher.locator('#publish').click();
    await publisher.locator('.banner.notice', { hasText: 'Published at offset 2.' }).waitFor();
    await shot(publisher, '6-published');

    const arrived = page.locator('#live li[data-offset="2"]');
    await arrived.waitFor();
    expect(await arrived.locator('pre').textContent()).toContain('<img src=x onerror=alert(1)>');
    expect(await page.locator('#live img').count()).toBe(0);
    expect(await page.locator('#top-offset').textContent()).toBe('2');
    await shot(page, '7-live');

    await page.locator('form.logout button').click();
    await page.waitForURL('**/admin/login');
    expect(problems).toEqual([]);
    console.log(`admin console screenshots: ${SHOTS}`);
  });
});

/** Reloads `path` until `text` shows (the worker announces itself within a lease period). */
async function waitForText(page: Page, path: string, text: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if ((await page.content()).includes(text)) return;
    await page.waitForTimeout(250);
    await page.goto(new URL(path, page.url()).toString());
  }
  throw new Error(`${text} never showed on ${path}`);
}
