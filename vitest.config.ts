import { defineConfig } from 'vitest/config';

// Projects: unit tests are pure and fast; integration tests start real Redis and
// PostgreSQL servers (test/helpers/global-setup.ts) and may spawn gateway/worker processes;
// faults kill, freeze and cut off servers and processes of a cluster of its own; e2e drives
// the demo page in headless Chromium against the same servers.
export default defineConfig({
  test: {
    // Servers and child processes compete for two cores: keep files from piling up.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The fault suite: a whole cluster (private servers behind proxies, child gateways and
        // workers) under traffic, one fault per test, each followed by an audit.
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // The demo page in headless Chromium (/usr/bin/chromium), against an in-process stack.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/helpers/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
