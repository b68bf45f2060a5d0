// The programme coordinator's work in the console: the caseload, enrolling a person,
// finding them again, recording and withdrawing consent, discharge, the service-use report
// and who has seen a person's data. Each test enrols the people it changes.
import { test, expect, snap } from '../fixtures';
import {
  at,
  enrol,
  expectErrorBeside,
  fillEnrolment,
  findPerson,
  isoDate,
  londonZoneNow,
  newPerson,
  shownDay,
} from '../console';

test('the caseload lists everyone enrolled, those needing consent first, then the soonest review', async ({
  pageAs,
}) => {
  const page = await pageAs('programme-coordinator');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Caseload' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Caseload' })).toBeVisible();

  const table = page.getByRole('table');
  await expect(table.getByRole('columnheader', { name: 'Review by' })).toBeVisible();
  const alex = table.getByRole('row').filter({ hasText: 'Alex Fictional-Testperson' });
  await expect(alex).toContainText('9990000018');
  await expect(alex).toContainText('full');
  // No consent recorded, and consent withdrawn: nothing in force, so consent is to be sought.
  for (const name of ['Charlie Fictional-Placeholder', 'Riley Fictional-Dummy']) {
    await expect(table.getByRole('row').filter({ hasText: name })).toContainText('Seek consent');
  }

  const reviews = await table.locator('tbody tr td:last-child').allInnerTexts();
  expect(reviews.length).toBeGreaterThanOrEqual(5);
  // "25 Oct 2026", or "25 Oct 2026, overdue" once that day has come.
  const order = reviews.map((text) =>
    text.trim() === 'Seek consent'
      ? -Infinity
      : Date.parse(`${text.replace(', overdue', '').trim()} UTC`),
  );
  expect(order.every((t) => !Number.isNaN(t)), `review dates ${reviews}`).toBe(true);
  expect(order, 'soonest review first').toEqual([...order].sort((a, b) => a - b));
  await snap(page, 'coordinator-01-caseload');
});

test('a person enrolled is found again by NHS number and by PNC id', async ({ pageAs }) => {
  const page = await pageAs('programme-coordinator');
  const person = newPerson();
  await page.goto(at('/console/subjects/new'));
  await expect(page.getByRole('heading', { level: 1, name: 'Enrol a person' })).toBeVisible();
  await fillEnrolment(page, person);
  await snap(page, 'coordinator-02-enrol-form');
  await page.getByRole('button', { name: 'Enrol' }).click();

  await expect(page.getByRole('heading', { level: 1, name: 'Consent' })).toBeVisible();
  await expect(page.getByText('No consent has been recorded.')).toBeVisible();
  const enrolled = /\/console\/subjects\/(subj_[^/]+)\/consents$/.exec(page.url())?.[1];
  expect(enrolled).toBeTruthy();
  await snap(page, 'coordinator-03-enrolled-consent-page');

  expect(await findPerson(page, { nhs: person.nhs })).toBe(enrolled);
  await expect(page.getByRole('link', { name: 'Record consent' })).toBeVisible();
  await snap(page, 'coordinator-04-found-by-nhs-number');
  expect(await findPerson(page, { pnc: person.pnc })).toBe(enrolled);
  await snap(page, 'coordinator-05-found-by-pnc-id');

  await page.goto(at('/console/caseload'));
  await expect(
    page.getByRole('row').filter({ hasText: `${person.given} ${person.family}` }),
  ).toContainText('Seek consent');
});

test('consent recorded appears in the history, and a withdrawal after it', async ({ pageAs }) => {
  const page = await pageAs('programme-coordinator');
  const subject = await enrol(page, newPerson());
  await page.getByRole('link', { name: 'Record consent' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Record consent' })).toBeVisible();

  const expires = isoDate(180);
  await page.getByRole('radio', { name: 'coordination' }).check();
  await page.getByRole('checkbox', { name: /\(hampshire-police\)/ }).check();
  await page
    .getByRole('group', { name: 'Categories the person does not want shared' })
    .getByRole('checkbox', { name: 'clinical', exact: true })
    .check();
  await page.getByLabel('Expires on').fill(expires);
  await page.getByLabel('How consent was obtained').fill('Signed form, witnessed by the mentor.');
  await snap(page, 'coordinator-06-consent-form');
  await page.getByRole('button', { name: 'Record consent' }).click();

  await expect(page).toHaveURL(at(`/console/subjects/${subject}/consents`));
  const facts = page.locator('dl.facts');
  await expect(facts).toContainText('coordination (version 1)');
  await expect(facts).toContainText('hampshire-police');
  const given = page.getByRole('table').getByRole('row').filter({ hasText: 'Given: coordination' });
  await expect(given).toContainText('Agencies: hampshire-police');
  await expect(given).toContainText('Excluding: clinical');
  await expect(given).toContainText(`Given ${shownDay(isoDate())}`);
  await expect(given).toContainText(`Expires ${shownDay(expires)}`);
  await expect(given).toContainText('Signed form, witnessed by the mentor.');
  // When it was recorded: in UK time, with the zone in force.
  await expect(given).toContainText(new RegExp(`\\d{2}:\\d{2} ${londonZoneNow()}`));
  await expect(given).toContainText('by programme-coordinator');
  await snap(page, 'coordinator-07-consent-history');

  await page.getByLabel('How the person withdrew consent').fill('Told the mentor by phone.');
  await page.getByRole('button', { name: 'Withdraw consent' }).click();
  await expect(page).toHaveURL(at(`/console/subjects/${subject}/consents`));
  const withdrawn = page.getByRole('table').getByRole('row').filter({ hasText: 'Withdrawn' });
  await expect(withdrawn).toContainText(`Withdrawn ${shownDay(isoDate())}`);
  await expect(withdrawn).toContainText('Told the mentor by phone.');
  await expect(withdrawn.getByRole('cell').first()).toHaveText('2');
  await expect(facts.locator('dd').nth(1)).toHaveText(/^none/);
  await snap(page, 'coordinator-08-consent-withdrawn');
});

test('an invalid NHS number is shown beside its field, with the form kept', async ({
  pageAs,
  expectRefusal,
}) => {
  const page = await pageAs('programme-coordinator');
  const person = { ...newPerson(), nhs: '1234567890' };
  await page.goto(at('/console/subjects/new'));
  await fillEnrolment(page, person);
  expectRefusal('/console/subjects', 422);
  await page.getByRole('button', { name: 'Enrol' }).click();

  await expect(page.getByRole('heading', { level: 1, name: 'Enrol a person' })).toBeVisible();
  await expectErrorBeside(page, 'NHS number', /Error: is not a valid NHS number \(check digit\)/);
  await expect(page.getByLabel('Family name')).toHaveValue(person.family);
  await expect(page.getByLabel('Given name')).not.toHaveAttribute('aria-invalid');
  await snap(page, 'coordinator-09-enrol-error');
});

test('a person discharged leaves the caseload', async ({ pageAs }) => {
  const page = await pageAs('programme-coordinator');
  const person = newPerson();
  await enrol(page, person);
  await page.getByLabel('Reason').fill('Completed the programme.');
  await page.getByRole('button', { name: 'Discharge' }).click();

  await expect(page).toHaveURL(at('/console/caseload'));
  await expect(page.getByRole('heading', { level: 1, name: 'Caseload' })).toBeVisible();
  await expect(page.getByRole('row').filter({ hasText: 'Alex Fictional-Testperson' })).toHaveCount(1);
  await expect(page.getByRole('row').filter({ hasText: person.family })).toHaveCount(0);
  await snap(page, 'coordinator-10-after-discharge');
});

test('the service-use report shows its chart and tables', async ({ pageAs }) => {
  const page = await pageAs('programme-coordinator');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Service use' }).click();
  await expect(
    page.getByRole('heading', { level: 1, name: 'Service use before and after enrolment' }),
  ).toBeVisible();
  const chart = page.locator('figure.chart svg');
  await expect(chart).toHaveCount(1);
  await expect(page.getByRole('img', { name: /Emergency service use before and after enrolment/ })).toBeVisible();
  await expect(page.getByRole('heading', { level: 2, name: /months \(subjects: \d+\)/ }).first()).toBeVisible();
  await expect(page.getByText(/Counts below \d+ are suppressed/)).toBeVisible();
  await snap(page, 'coordinator-11-service-use');
});

test("a person's access report lists a practitioner's read of their records", async ({ pageAs }) => {
  // The police mentor reads first, so that the report has something of this test's own.
  const mentor = await pageAs('police-mentor');
  const subject = await findPerson(mentor, { nhs: '9990000018' });
  await mentor.goto(at(`/console/subjects/${subject}/records?purpose=care_coordination`));
  await expect(mentor.getByRole('heading', { level: 1, name: 'Records' })).toBeVisible();

  const page = await pageAs('programme-coordinator');
  expect(await findPerson(page, { nhs: '9990000018' })).toBe(subject);
  await page.getByRole('link', { name: "Who has seen this person's data" }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Who has seen your information' })).toBeVisible();
  const read = page
    .getByRole('row')
    .filter({ hasText: 'police-mentor' })
    .filter({ hasText: 'care coordination' });
  await expect(read.first()).toContainText('hampshire-police');
  await expect(read.first().getByRole('cell').first()).toHaveText(/\d{2}:\d{2} (GMT|BST)$/);
  await snap(page, 'coordinator-12-access-report');
});
