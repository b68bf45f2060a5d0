// The fixtures' guard itself: it must see each kind of problem, or every other test's
// silence about console errors and failed requests means nothing. These tests watch a
// context of their own, outside the fixtures, because they provoke problems on purpose.
import { test as base, expect } from '@playwright/test';
import { Guard, clientCertificate, CONCORDAT_URL } from '../fixtures';

const test = base.extend<{ mentorPage: import('@playwright/test').Page; guard: Guard }>({
  guard: async ({}, use) => {
    await use(new Guard());
  },
  mentorPage: async ({ browser, guard }, use) => {
    const context = await browser.newContext({
      clientCertificates: [clientCertificate('police-mentor')],
    });
    guard.watch(context);
    const page = await context.newPage();
    await page.goto(`${CONCORDAT_URL}/v1/whoami`);
    await use(page);
    guard.stop();
    await context.close();
  },
});

test('the guard records console errors, page errors and refused subresources', async ({
  mentorPage: page,
  guard,
}) => {
  await page.evaluate(() => console.error('deliberate console error'));
  const pageError = page.waitForEvent('pageerror');
  await page.evaluate(() => {
    setTimeout(() => {
      throw new Error('deliberate page error');
    });
  });
  await pageError;
  const status = await page.evaluate(async () => (await fetch('/v1/no-such-resource')).status);
  expect(status).toBe(404);

  const seen = guard.unexpected().map((p) => `${p.kind}: ${p.text}`);
  expect(seen).toContain('console: deliberate console error');
  expect(seen).toContain('page error: Error: deliberate page error');
  expect(seen).toContain('response: 404 Not Found');
  expect(seen).toContainEqual(expect.stringMatching(/^console: Failed to load resource: .* 404/));
});

test('a declared refusal excuses its response and console error, and only those', async ({
  mentorPage: page,
  guard,
}) => {
  guard.expectRefusal({ url: '/v1/no-such-resource', status: 404 });
  guard.expectRefusal({ url: '/v1/never-requested', status: 403 });
  await page.evaluate(async () => {
    await fetch('/v1/no-such-resource');
    await fetch('/v1/another-missing-resource');
  });

  const seen = guard.unexpected();
  expect(seen.map((p) => p.url)).not.toContain(`${CONCORDAT_URL}/v1/no-such-resource`);
  expect(seen).toContainEqual(
    expect.objectContaining({ kind: 'response', url: `${CONCORDAT_URL}/v1/another-missing-resource` }),
  );
  expect(guard.unmet()).toEqual([{ url: '/v1/never-requested', status: 403 }]);
});
