// Playwright drives Debian's Chromium (never a downloaded browser) against a gateway that
// `./run` starts; run the tests through that script, which sets CONCORDAT_URL,
// CONCORDAT_CERTS and NODE_EXTRA_CA_CERTS.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  // The machine has two cores and the gateway needs one of them.
  workers: 1,
  fullyParallel: false,
  // A flaky browser test is a bug to find, not to retry away.
  retries: 0,
  forbidOnly: true,
  reporter: [['list'], ['./counts-reporter.ts']],
  outputDir: './test-results',
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        // Without these Chromium reaches for Google's services, and this sandboxed
        // network refuses its connections.
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    // The gateway's dev CA is trusted through NODE_EXTRA_CA_CERTS, not ignored.
    ignoreHTTPSErrors: false,
    trace: 'off',
    screenshot: 'only-on-failure',
  },
});
