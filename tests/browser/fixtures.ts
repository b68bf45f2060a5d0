// Fixtures for the browser tests: a page per principal, holding that principal's client
// certificate; a guard that fails the test on any browser console error, uncaught page
// error, failed request or HTTP error response the test did not declare; and `snap` for
// screenshots. Tests import `test` and `expect` from here, not from @playwright/test.
import fs from 'node:fs';
import path from 'node:path';
import {
  test as base,
  expect,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Page,
} from '@playwright/test';

export { expect };

function fromRunner(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests through tests/browser/run`);
  }
  return value;
}

/** The gateway under test, e.g. `https://localhost:40123`. */
export const CONCORDAT_URL = fromRunner('CONCORDAT_URL');
/** The run's development PKI directory (ca.pem, clients/<name>.pem and .key). */
const CERTS = fromRunner('CONCORDAT_CERTS');

/** The development principals, one per role, and `stranger`: a certificate from the dev CA
 * for nobody the gateway knows. */
export type Principal =
  | 'police-mentor'
  | 'scas-dispatch'
  | 'programme-coordinator'
  | 'nhs-ig-lead'
  | 'ig-auditor'
  | 'gateway-admin'
  | 'stranger';

/** The password the development PKI gives every PKCS #12 bundle. */
const DEV_P12_PASSWORD = 'concordat-dev';

type ClientCertificate = NonNullable<BrowserContextOptions['clientCertificates']>[number];

/** The principal's certificate for the gateway's origin: the PKCS #12 bundle where the dev
 * PKI wrote one (the form people import into their browsers), the PEM pair otherwise. */
export function clientCertificate(principal: Principal): ClientCertificate {
  const origin = new URL(CONCORDAT_URL).origin;
  const clients = path.join(CERTS, 'clients');
  const pfxPath = path.join(clients, `${principal}.p12`);
  if (fs.existsSync(pfxPath)) {
    return { origin, pfxPath, passphrase: DEV_P12_PASSWORD };
  }
  return {
    origin,
    certPath: path.join(clients, `${principal}.pem`),
    keyPath: path.join(clients, `${principal}.key`),
  };
}

/** What a test says it expects to be refused: a URL (absolute, or a path on the gateway, or
 * a pattern) and either the HTTP status or `'no-connection'` for a request that gets no
 * response at all (such as a TLS handshake the gateway refuses). */
export type Refusal = { url: string | RegExp; status: number | 'no-connection' };

/** Something that went wrong in the browser. `url` is the request's, or for console and page
 * errors where Chromium says it happened. */
export type Problem =
  | { kind: 'console'; url: string; text: string }
  | { kind: 'page error'; url: string; text: string }
  | { kind: 'request failed'; url: string; text: string }
  | { kind: 'response'; url: string; status: number; text: string };

function matches(pattern: string | RegExp, url: string): boolean {
  if (pattern instanceof RegExp) return pattern.test(url);
  return new URL(pattern, CONCORDAT_URL).href === url;
}

/** Whether `refusal` accounts for `problem`. Chromium reports a refused load twice: the
 * request's outcome, and a console error "Failed to load resource: …" naming the same URL;
 * one declaration covers both. */
function excuses(refusal: Refusal, problem: Problem): boolean {
  if (!matches(refusal.url, problem.url)) return false;
  switch (problem.kind) {
    case 'response':
      return problem.status === refusal.status;
    case 'request failed':
      return refusal.status === 'no-connection';
    case 'console':
      return refusal.status === 'no-connection'
        ? problem.text.startsWith('Failed to load resource: net::')
        : problem.text.includes(`the server responded with a status of ${refusal.status}`);
    case 'page error':
      return false;
  }
}

/** Chromium asks every origin for /favicon.ico by itself when a page names no icon (a JSON
 * response from /v1 cannot name one) and logs the gateway's refusal as a console error;
 * Playwright does not even report that request. A page that links an icon elsewhere is
 * still held to it. */
function isImplicitFavicon(url: string): boolean {
  return url === new URL('/favicon.ico', CONCORDAT_URL).href;
}

/** The icon the console's pages link. Chromium fetches a page's icon only once the page
 * has loaded, and cancels that fetch (net::ERR_ABORTED) when the test has already moved on
 * to the next page: the test's pace, not a fault of the page. An icon that is refused or
 * fails any other way is still a problem. */
function isIconCutShort(url: string, errorText: string): boolean {
  return url === new URL('/console/assets/icon.svg', CONCORDAT_URL).href && errorText === 'net::ERR_ABORTED';
}

/** Records every problem in the contexts it watches, and says which ones no declared
 * refusal accounts for. */
export class Guard {
  readonly problems: Problem[] = [];
  private readonly refusals: Refusal[] = [];
  private recording = true;

  watch(context: BrowserContext): void {
    const record = (problem: Problem) => {
      if (this.recording) this.problems.push(problem);
    };
    context.on('console', (message) => {
      const url = message.location().url;
      if (message.type() === 'error' && !isImplicitFavicon(url)) {
        record({ kind: 'console', url, text: message.text() });
      }
    });
    context.on('weberror', (error) => {
      record({ kind: 'page error', url: error.page()?.url() ?? '', text: String(error.error()) });
    });
    context.on('requestfailed', (request) => {
      const text = request.failure()?.errorText ?? 'failed';
      if (isIconCutShort(request.url(), text)) return;
      record({ kind: 'request failed', url: request.url(), text });
    });
    context.on('response', (response) => {
      if (response.status() >= 400) {
        record({
          kind: 'response',
          url: response.url(),
          status: response.status(),
          text: `${response.status()} ${response.statusText()}`,
        });
      }
    });
  }

  expectRefusal(refusal: Refusal): void {
    this.refusals.push(refusal);
  }

  /** Stops recording: closing a context aborts whatever it still had in flight, and that is
   * the test's end, not a fault of the page. */
  stop(): void {
    this.recording = false;
  }

  /** Problems no declared refusal accounts for. */
  unexpected(): Problem[] {
    return this.problems.filter((p) => !this.refusals.some((r) => excuses(r, p)));
  }

  /** Declared refusals that never happened: a test that says a page is forbidden must see it
   * refused, or the declaration is hiding nothing and the test proves nothing. */
  unmet(): Refusal[] {
    return this.refusals.filter((r) => !this.problems.some((p) => excuses(r, p)));
  }
}

type Fixtures = {
  /** A new browser context holding `principal`'s client certificate, and a page in it;
   * `options` sets anything else about the context (viewport, device scale factor). */
  pageAs: (principal: Principal, options?: BrowserContextOptions) => Promise<Page>;
  /** A page in a context with no client certificate. It accepts any server certificate, so
   * that the missing client certificate is the only thing wrong with its connections. */
  pageWithoutCertificate: () => Promise<Page>;
  /** Declares that this test deliberately provokes a refusal; see {@link Refusal}. */
  expectRefusal: (url: string | RegExp, status: number | 'no-connection') => void;
  guard: Guard;
};

async function newGuardedPage(
  browser: Browser,
  guard: Guard,
  contexts: BrowserContext[],
  options: BrowserContextOptions,
): Promise<Page> {
  const context = await browser.newContext(options);
  contexts.push(context);
  guard.watch(context);
  return context.newPage();
}

export const test = base.extend<Fixtures>({
  guard: async ({}, use) => {
    const guard = new Guard();
    await use(guard);
    expect(guard.unexpected(), 'browser problems this test did not declare').toEqual([]);
    expect(guard.unmet(), 'refusals this test declared but never saw').toEqual([]);
  },

  pageAs: async ({ browser, guard }, use) => {
    const contexts: BrowserContext[] = [];
    await use((principal, options = {}) =>
      newGuardedPage(browser, guard, contexts, {
        ...options,
        clientCertificates: [clientCertificate(principal)],
        ignoreHTTPSErrors: false,
      }),
    );
    guard.stop();
    await Promise.all(contexts.map((c) => c.close()));
  },

  pageWithoutCertificate: async ({ browser, guard }, use) => {
    const contexts: BrowserContext[] = [];
    await use(() => newGuardedPage(browser, guard, contexts, { ignoreHTTPSErrors: true }));
    guard.stop();
    await Promise.all(contexts.map((c) => c.close()));
  },

  expectRefusal: async ({ guard }, use) => {
    await use((url, status) => guard.expectRefusal({ url, status }));
  },
});

const SCREENSHOTS = path.join(__dirname, 'screenshots');

/** Saves a full-page screenshot to tests/browser/screenshots/<name>.png. */
export async function snap(page: Page, name: string): Promise<void> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) {
    throw new Error(`screenshot name ${JSON.stringify(name)}: use lower-case letters, digits, -`);
  }
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
