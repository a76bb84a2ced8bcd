/**
 * Debian's headless Chromium for the end-to-end tests (test/e2e), driven by playwright-core.
 * Without /usr/bin/chromium a test file is skipped, except in CI (CI set), where it must run
 * and so fails: .ci/run installs it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Whether `file` must be skipped here; says why once when it is. */
export function skipWithoutChromium(file: string): boolean {
  const skip = !existsSync(CHROMIUM) && !process.env.CI;
  if (skip) console.warn(`${file} skipped: ${CHROMIUM} is missing (install it: apt-get install -y chromium). In CI it is required.`);
  return skip;
}

/**
 * A headless Chromium on a fresh temporary profile (launch() makes its own --user-data-dir,
 * removed on close; Playwright refuses that flag in `args`). No sandbox (root in a
 * container), and nothing that reaches for the network this machine does not have: without
 * the background-networking flags Chromium's connections are refused many at a time.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
