// The IG auditor's work in the console: searching the audit trail (and paging through it),
// an entry verified against the signed checkpoint and its decision replayed, the break-glass queue and its review,
// a subject access report fit to print, agreements, checkpoint status and activity.
import type { Page } from '@playwright/test';
import { test, expect, snap } from '../fixtures';
import { at, expectOnOneLine, findPerson, londonZoneNow, uniqueTag } from '../console';

/** The police mentor's emergency access to the person with `nhs`, with `reason`; returns
 * the subject id. */
async function breakGlass(mentor: Page, nhs: string, reason: string): Promise<string> {
  const subject = await findPerson(mentor, { nhs });
  await mentor.goto(at(`/console/subjects/${subject}/break-glass`));
  await mentor.getByLabel('Why is there an immediate risk to life?').fill(reason);
  await mentor.getByRole('button', { name: 'Access in an emergency' }).click();
  await expect(mentor.getByRole('alert')).toContainText('Emergency access.');
  return subject;
}

/** The entry links ("#123") in the audit table on the page. */
async function entryLinks(page: Page): Promise<string[]> {
  return page.getByRole('table').getByRole('link', { name: /^#\d+$/ }).allInnerTexts();
}

test('the audit trail filtered by action shows only those entries, each verified against the checkpoint', async ({
  pageAs,
}) => {
  // A read of the police mentor's own, so that there is one to find.
  const mentor = await pageAs('police-mentor');
  const subject = await findPerson(mentor, { nhs: '9990000034' });
  await mentor.goto(at(`/console/subjects/${subject}/records?purpose=care_coordination`));
  await expect(mentor.getByRole('heading', { level: 1, name: 'Records' })).toBeVisible();

  const page = await pageAs('ig-auditor');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Audit trail' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Audit trail' })).toBeVisible();
  await page.getByLabel('Action').selectOption('records.read');
  await page.getByLabel('Principal').fill('police-mentor');
  await page.getByLabel('Subject id').fill(subject);
  await page.getByRole('button', { name: 'Search' }).click();

  await expect(page).toHaveURL(/action=records.read/);
  await expect(page.getByLabel('Action')).toHaveValue('records.read');
  const rows = page.getByRole('table').locator('tbody tr');
  await expect(rows.first()).toBeVisible();
  for (const action of await rows.locator('td:nth-child(4)').allInnerTexts()) {
    expect(action).toMatch(/^records\.read/);
  }
  const read = rows.filter({ hasText: 'care_coordination' }).first();
  await expect(read).toContainText('police-mentor');
  await expect(read).toContainText(subject);
  await expect(read.getByRole('cell').nth(1)).toHaveText(new RegExp(`\\d{2}:\\d{2} ${londonZoneNow()}$`));
  await snap(page, 'auditor-01-audit-search-records-read');

  const link = read.getByRole('link', { name: /^#\d+$/ });
  const index = (await link.innerText()).slice(1);
  await link.click();
  await expect(page.getByRole('heading', { level: 1, name: `Audit entry #${index}` })).toBeVisible();
  await expect(page.locator('dl.facts')).toContainText('records.read');
  // A checkpoint is signed every second: reload until one covers this entry.
  await expect(async () => {
    await page.reload();
    await expect(page.getByRole('status')).toContainText('Verified: this entry is in the log', {
      timeout: 500,
    });
  }).toPass({ timeout: 15_000 });
  await expect(page.locator('.verified')).toBeVisible();
  await snap(page, 'auditor-02-audit-entry-verified');

  // The read's decision, made again with what the entry names, field by field.
  await page.getByRole('link', { name: 'Replay this decision: why each field was released or withheld' }).click();
  await expect(
    page.getByRole('heading', { level: 1, name: `Why each field was released or withheld: entry #${index}` }),
  ).toBeVisible();
  await expect(page.locator('main')).toContainText('Replayed: the rules, applied again');
  await expect(page.locator('dl.facts')).toContainText('care_coordination');
  const fields = page.getByRole('table').first().locator('tbody tr');
  await expect(fields.first()).toBeVisible();
  for (const outcome of await fields.locator('td:nth-child(3)').allInnerTexts()) {
    expect(outcome).toMatch(/^(released|withheld)$/);
  }
  await snap(page, 'auditor-02b-audit-entry-replayed');
});

test('a long search pages on with "Next page"', async ({ pageAs }) => {
  const page = await pageAs('ig-auditor');
  // Fifty-five views of the checkpoint page: fifty-five entries, more than one page holds.
  // Fetched in the page's context, with its certificate, rather than shown: the browser
  // fetches each page's icon after it has loaded, and the next page would cut that short.
  for (let i = 0; i < 55; i++) {
    const response = await page.request.get(at('/console/audit/checkpoint'));
    expect(response.status()).toBe(200);
    expect(await response.text()).toContain('<h1>Checkpoint</h1>');
  }
  await page.goto(at('/console/audit'));
  await page.getByLabel('Action').selectOption('audit.checkpoint');
  await page.getByLabel('Principal').fill('ig-auditor');
  await page.getByRole('button', { name: 'Search' }).click();

  const first = await entryLinks(page);
  expect(first).toHaveLength(50);
  await snap(page, 'auditor-03-audit-search-page-1');
  await page.getByRole('link', { name: 'Next page' }).click();
  await expect(page).toHaveURL(/cursor=/);
  await expect(page.getByLabel('Action')).toHaveValue('audit.checkpoint');
  const second = await entryLinks(page);
  expect(second.length).toBeGreaterThanOrEqual(5);
  expect(second.filter((entry) => first.includes(entry))).toEqual([]);
  for (const action of await page.getByRole('table').locator('tbody td:nth-child(4)').allInnerTexts()) {
    expect(action).toBe('audit.checkpoint');
  }
  await snap(page, 'auditor-04-audit-search-page-2');
});

test('a break-glass access waits in the queue until reviewed as justified', async ({ pageAs }) => {
  const reason = `Threatening to jump from the pier; crew on scene (${uniqueTag()}).`;
  await breakGlass(await pageAs('police-mentor'), '9990000034', reason);

  const page = await pageAs('ig-auditor');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Break-glass alerts' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Break-glass alerts' })).toBeVisible();
  const alert = page.getByRole('region').filter({ hasText: reason });
  await expect(alert).toHaveCount(1);
  await expect(alert).toContainText('police-mentor (hampshire-police)');
  await expect(alert.locator('dl.facts')).toContainText(new RegExp(`\\d{2}:\\d{2} ${londonZoneNow()}`));
  await snap(page, 'auditor-05-break-glass-queue');

  await alert.getByRole('radio', { name: 'Justified', exact: true }).check();
  await alert.getByLabel('Review note').fill('Spoke to the officer; risk to life was real.');
  await alert.getByRole('button', { name: 'Record review' }).click();
  await expect(page).toHaveURL(at('/console/audit/alerts'));
  await expect(page.getByRole('heading', { level: 1, name: 'Break-glass alerts' })).toBeVisible();
  await expect(page.getByRole('region').filter({ hasText: reason })).toHaveCount(0);
  await snap(page, 'auditor-06-break-glass-reviewed');
});

test('a subject access report lists an emergency access, and prints without the console around it', async ({
  pageAs,
}) => {
  const reason = `Collapsed in the street, not breathing well (${uniqueTag()}).`;
  const subject = await breakGlass(await pageAs('police-mentor'), '9990000050', reason);

  const page = await pageAs('ig-auditor');
  await page.goto(at(`/console/subjects/${subject}/access-report`));
  await expect(page.getByRole('heading', { level: 1, name: 'Who has seen your information' })).toBeVisible();
  const access = page.getByRole('row').filter({ hasText: 'Emergency access' }).first();
  await expect(access).toContainText('hampshire-police');
  await expect(access).toContainText('police-mentor');
  await expect(access).toContainText('crisis response');
  await expect(page.getByRole('navigation', { name: 'Console' })).toBeVisible();
  await snap(page, 'auditor-07-access-report');

  await page.emulateMedia({ media: 'print' });
  await expect(page.getByRole('navigation', { name: 'Console' })).toBeHidden();
  await expect(page.getByRole('banner')).toBeHidden();
  await expect(page.getByRole('contentinfo')).toBeHidden();
  await expect(page.getByText("Use your browser's Print command")).toBeHidden();
  await expect(page.getByRole('heading', { level: 1, name: 'Who has seen your information' })).toBeVisible();
  await expect(access).toBeVisible();
  await expect(access.getByRole('cell').nth(1)).toHaveText('hampshire-police');
  // Each column wide enough for its words: "Organisation" is not broken letter by letter.
  await expectOnOneLine(page, 'Organisation');
  await snap(page, 'auditor-08-access-report-print');
});

test('agreements are listed with their parties, and one opens with its versions', async ({ pageAs }) => {
  const page = await pageAs('ig-auditor');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Agreements' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Agreements' })).toBeVisible();
  const row = page.getByRole('row').filter({ hasText: 'isa-iow-recovery' });
  await expect(row).toContainText('hampshire-police, iow-nhs, scas, iow-recovery');
  await expect(row).toContainText('version 1');
  await expect(row).toContainText('30 Jun 2027');
  await snap(page, 'auditor-09-agreements');

  const title = 'Integrated Recovery Programme: police, NHS, ambulance and programme team';
  await row.getByRole('link', { name: title }).click();
  await expect(page.getByRole('heading', { level: 1, name: title })).toBeVisible();
  const version1 = page.getByRole('region', { name: 'Version 1', exact: true });
  await expect(version1).toContainText('UK GDPR Art 6(1)(e) public task');
  await expect(version1).toContainText('1 Jan 2026 to 31 Dec 2027');
  await expect(version1.getByRole('listitem').first()).toContainText('iow-nhs shares health.crisis_plan');
  // An auditor reads; only an IG lead approves or suspends.
  await expect(page.getByRole('button')).toHaveCount(0);
  await snap(page, 'auditor-10-agreement-detail');
});

test('the checkpoint page says the signature verifies, and activity has its two charts', async ({
  pageAs,
}) => {
  const page = await pageAs('ig-auditor');
  // The first checkpoint is signed within a second of the gateway's start.
  await expect(async () => {
    await page.goto(at('/console/audit/checkpoint'));
    await expect(page.getByRole('status')).toHaveText(
      "Signature verified with the gateway's checkpoint key.",
      { timeout: 500 },
    );
  }).toPass({ timeout: 15_000 });
  await expect(page.getByRole('heading', { level: 1, name: 'Checkpoint' })).toBeVisible();
  const facts = page.locator('dl.facts');
  await expect(facts).toContainText(/Entries covered\s*\d+/);
  await expect(facts).toContainText(new RegExp(`Signed\\s*\\d+ \\w{3} \\d{4}, \\d{2}:\\d{2} ${londonZoneNow()}`));
  await snap(page, 'auditor-11-checkpoint');

  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Activity' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Activity' })).toBeVisible();
  await expect(page.locator('figure.chart svg')).toHaveCount(2);
  await expect(page.getByRole('img', { name: 'Disclosures granted per day, by agency' })).toBeVisible();
  await expect(page.getByRole('img', { name: 'Requests denied per day' })).toBeVisible();
  await snap(page, 'auditor-12-activity');
});
