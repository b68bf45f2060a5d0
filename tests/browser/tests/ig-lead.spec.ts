// The NHS IG lead's work in the console: their agency's agreements, approving a drafted
// version, and suspending an agreement. The suspension is of `isa-browser-suspension`,
// which tests/browser/run imports for this test alone, so no other test's reads change.
import { test, expect, snap, clientCertificate, CONCORDAT_URL } from '../fixtures';
import { at, londonZoneNow, uniqueTag } from '../console';

test("the IG lead sees their agency's agreements", async ({ pageAs }) => {
  const page = await pageAs('nhs-ig-lead');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Agreements' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Agreements' })).toBeVisible();
  const rows = page.getByRole('table').locator('tbody tr');
  await expect(rows.filter({ hasText: 'isa-iow-recovery' })).toContainText('version 1');
  for (const parties of await rows.locator('td:nth-child(2)').allInnerTexts()) {
    expect(parties).toContain('iow-nhs');
  }
  await snap(page, 'ig-lead-01-agreements');
});

test('a version drafted through the API is approved in the console', async ({ pageAs, playwright }) => {
  // The IG lead drafts the next version of the example agreement, as an API client would.
  const api = await playwright.request.newContext({
    baseURL: CONCORDAT_URL,
    clientCertificates: [clientCertificate('nhs-ig-lead')],
  });
  const current = await api.get('/v1/agreements/isa-iow-recovery');
  expect(current.status()).toBe(200);
  const agreement = await current.json();
  const latest = agreement.versions[agreement.versions.length - 1];
  const version: number = latest.version + 1;
  const title = `Integrated Recovery Programme, revised (${uniqueTag()})`;
  const drafted = await api.post('/v1/agreements', {
    data: { ...latest.document, version, title },
  });
  expect(drafted.status(), await drafted.text()).toBe(201);
  expect(await drafted.json()).toMatchObject({ id: 'isa-iow-recovery', version, status: 'draft' });
  await api.dispose();

  const page = await pageAs('nhs-ig-lead');
  await page.goto(at('/console/agreements'));
  // The agreement keeps the title of the version in force until the draft is approved.
  const inForceTitle: string = agreement.versions.find(
    (v: { version: number }) => v.version === agreement.in_force_version,
  ).document.title;
  await page.getByRole('link', { name: inForceTitle, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: inForceTitle, exact: true })).toBeVisible();
  await expect(page.getByRole('region', { name: `Version ${version}`, exact: true })).toContainText(title);
  const draft = page.getByRole('region', { name: `Version ${version}`, exact: true });
  await expect(draft).toContainText('Waiting for: hampshire-police, iow-nhs, scas, iow-recovery');
  await expect(draft).toContainText('Drafted');
  await expect(draft).toContainText('by nhs-ig-lead');
  await snap(page, 'ig-lead-02-draft-to-approve');

  await draft.getByRole('button', { name: `Approve version ${version} for iow-nhs` }).click();
  await expect(page).toHaveURL(at('/console/agreements/isa-iow-recovery'));
  const approved = page.getByRole('region', { name: `Version ${version}`, exact: true });
  await expect(approved).toContainText(
    new RegExp(`iow-nhs by nhs-ig-lead, \\d+ \\w{3} \\d{4}, \\d{2}:\\d{2} ${londonZoneNow()}`),
  );
  await expect(approved).toContainText('Waiting for: hampshire-police, scas, iow-recovery');
  await expect(approved.getByRole('button')).toHaveCount(0);
  // The other parties have not approved: version 1 stays in force. It was imported, so
  // it waits for no approvals and offers none.
  await expect(page.locator('main > dl.facts')).toContainText('version 1');
  const inForce = page.getByRole('region', { name: 'Version 1', exact: true });
  await expect(inForce).toContainText('none needed: imported by an operator');
  await expect(inForce).not.toContainText('Waiting for');
  await expect(inForce.getByRole('button')).toHaveCount(0);
  await snap(page, 'ig-lead-03-approved');
});

test('suspending an agreement with a reason stops it', async ({ pageAs }) => {
  const page = await pageAs('nhs-ig-lead');
  await page.goto(at('/console/agreements'));
  await page.getByRole('row').filter({ hasText: 'isa-browser-suspension' }).getByRole('link').click();
  await expect(page).toHaveURL(at('/console/agreements/isa-browser-suspension'));
  const facts = page.locator('main > dl.facts');
  await expect(facts).toContainText('active');
  await expect(page.getByText('Suspending stops all sharing under this agreement')).toBeVisible();
  await snap(page, 'ig-lead-04-before-suspension');

  const reason = `Data protection impact assessment under review (${uniqueTag()}).`;
  await page.getByLabel('Reason').fill(reason);
  await page.getByRole('button', { name: 'Suspend agreement' }).click();
  await expect(page).toHaveURL(at('/console/agreements/isa-browser-suspension'));
  await expect(facts.locator('dd strong')).toHaveText('suspended');
  await expect(facts).toContainText('no version');
  await expect(page.getByRole('listitem').filter({ hasText: reason })).toContainText(
    'suspended by nhs-ig-lead',
  );
  await expect(page.getByRole('button', { name: 'Suspend agreement' })).toHaveCount(0);
  await snap(page, 'ig-lead-05-suspended');

  await page.goto(at('/console/agreements'));
  await expect(page.getByRole('row').filter({ hasText: 'isa-browser-suspension' })).toContainText(
    'suspended',
  );
});
