// The police mentor's work in the console: reading what is shared for a purpose (with
// each withheld field and why), emergency (break-glass) access, and submitting a record.
import { test, expect, snap } from '../fixtures';
import { anHourAgoInLondon, at, expectErrorBeside, findPerson, uniqueTag } from '../console';

test('reading for crisis response shows what crisis consent releases and withholds the rest', async ({
  pageAs,
}) => {
  const page = await pageAs('police-mentor');
  await page.goto(at('/console'));
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Find a person' }).click();
  // Let that navigation finish: findPerson navigates again, which would abort it.
  await expect(page.getByRole('heading', { level: 1, name: 'Find a person' })).toBeVisible();
  const subject = await findPerson(page, { nhs: '9990000026' });
  await page.getByLabel('Why are you reading?').selectOption('crisis_response');
  await snap(page, 'practitioner-01-person-found');
  await page.getByRole('button', { name: 'Read records' }).click();

  await expect(page).toHaveURL(at(`/console/subjects/${subject}/records?purpose=crisis_response`));
  await expect(page.getByRole('heading', { level: 1, name: 'Records' })).toBeVisible();
  const facts = page.locator('main > dl.facts');
  await expect(facts).toContainText('crisis response');
  await expect(facts).toContainText('crisis (version 1)');

  const plan = page.getByRole('region', { name: 'health.crisis_plan' });
  // Held by the NHS, shared under the agreement; the time in UK time (February: GMT).
  await expect(plan.locator('.hint')).toHaveText(
    'Held by iow-nhs, 1 Feb 2026, 10:00 GMT, shared under isa-iow-recovery version 1',
  );
  await expect(plan.getByText('A quiet room and a named mentor')).toBeVisible();
  await expect(plan.getByText('Self-harm when alone')).toBeVisible();
  await expect(plan.getByText('Withheld (clinical): the person\'s consent level does not cover it')).toBeVisible();
  await expect(plan.getByText('Withheld (medication): the person\'s consent level does not cover it')).toBeVisible();
  await expect(plan).not.toContainText('Synthetic diagnosis text');
  await expect(plan).not.toContainText('Synthetic medication');

  // The police's own records, in full.
  const incident = page
    .getByRole('region', { name: 'police.incident' })
    .filter({ hasText: 'welfare check' })
    .filter({ hasText: 'Synthetic summary' });
  await expect(incident).toContainText("your agency's own record");
  await expect(incident).toContainText('self_harm');
  await expect(page.locator('.withheld').first()).toBeVisible();
  await snap(page, 'practitioner-02-records-crisis-response');
});

test('emergency access warns first, wants a real reason, then shows records under a banner', async ({
  pageAs,
  expectRefusal,
}) => {
  const page = await pageAs('police-mentor');
  // No consent recorded: only emergency access releases anything the NHS holds.
  const subject = await findPerson(page, { nhs: '9990000042' });
  await page.getByRole('link', { name: 'Emergency access (break-glass)' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Emergency access' })).toBeVisible();
  await expect(page.locator('.warning')).toContainText(
    "Only when there is an immediate risk to someone's life.",
  );
  await expect(page.locator('.warning')).toContainText('an IG auditor will review this access');
  await expect(page.getByLabel('Purpose')).toHaveValue('crisis_response');
  await snap(page, 'practitioner-03-break-glass-form');

  const reason = page.getByLabel('Why is there an immediate risk to life?');
  await reason.fill('Too short');
  expectRefusal(`/console/subjects/${subject}/break-glass`, 422);
  await page.getByRole('button', { name: 'Access in an emergency' }).click();
  await expectErrorBeside(
    page,
    'Why is there an immediate risk to life?',
    /Error: a justification of 20 to \d+ characters is required/,
  );
  await expect(reason).toHaveValue('Too short');
  await snap(page, 'practitioner-04-break-glass-reason-too-short');

  await reason.fill(`Person on a bridge parapet, threatening to jump (${uniqueTag()}).`);
  await page.getByRole('button', { name: 'Access in an emergency' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Records' })).toBeVisible();
  await expect(page.getByRole('alert')).toHaveText(
    'Emergency access. This access and your reason are recorded and will be reviewed by an IG auditor.',
  );
  const plan = page.getByRole('region', { name: 'health.crisis_plan' });
  await expect(plan.getByText('Self-harm when alone')).toBeVisible();
  await expect(plan.locator('.withheld').first()).toBeVisible();
  await snap(page, 'practitioner-05-break-glass-records');
});

test('a record submitted without a required field says so beside it, then goes in', async ({
  pageAs,
  expectRefusal,
}) => {
  const page = await pageAs('police-mentor');
  const subject = await findPerson(page, { nhs: '9990000018' });
  await page.getByRole('link', { name: 'Submit a record' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Submit a record' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'police.incident' })).toBeVisible();
  await snap(page, 'practitioner-06-record-types');
  await page.getByRole('link', { name: 'police.incident' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Submit a police.incident record' })).toBeVisible();
  await expect(page.getByLabel('When it happened')).toHaveAttribute('type', 'datetime-local');
  await expect(page.getByLabel('reported at')).toHaveAttribute('type', 'datetime-local');

  const when = anHourAgoInLondon();
  const summary = `Found sitting by the harbour wall (${uniqueTag()}).`;
  await page.getByLabel('When it happened').fill(when);
  await page.getByLabel('reported at').fill(when);
  // Blank but for spaces: the browser's own "required" check lets it through, the
  // gateway does not.
  await page.getByLabel('incident type').fill('   ');
  await page.getByLabel('summary').fill(summary);
  await page.getByLabel('risk markers').fill('self_harm\nwater');
  await snap(page, 'practitioner-07-record-form');
  expectRefusal(`/console/subjects/${subject}/records`, 422);
  await page.getByRole('button', { name: 'Submit record' }).click();

  await expectErrorBeside(page, 'incident type', /Error: is required/);
  await expect(page.getByLabel('summary')).toHaveValue(summary);
  await expect(page.getByLabel('reported at')).toHaveValue(when);
  await snap(page, 'practitioner-08-record-form-error');

  await page.getByLabel('incident type').fill('welfare check');
  await page.getByRole('button', { name: 'Submit record' }).click();
  await expect(page).toHaveURL(new RegExp(`/console/subjects/${subject}/records/new\\?submitted=rec_`));
  await expect(page.getByRole('status')).toHaveText(/^Record rec_\S+ submitted\.$/);
  await snap(page, 'practitioner-09-record-submitted');

  // It is there to read: the police's own record, in full.
  await page.goto(at(`/console/subjects/${subject}/records?purpose=crisis_response`));
  const mine = page.getByRole('region', { name: 'police.incident' }).filter({ hasText: summary });
  await expect(mine).toContainText('welfare check');
  await expect(mine).toContainText('self_harm, water');
});
