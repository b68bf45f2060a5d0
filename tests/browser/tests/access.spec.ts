// Who is refused, and whether everyone else can use the console: a plain refusal page for
// an unknown certificate and for a page outside one's role; a phone's width and 200 %
// zoom without sideways scrolling; the keyboard's first stop; a label on every field.
import { test, expect, snap } from '../fixtures';
import {
  at,
  enrol,
  expectEveryFieldLabelled,
  expectNoSidewaysScrolling,
  expectOnOneLine,
  findPerson,
  newPerson,
} from '../console';

test('an unregistered certificate gets the plain "Not allowed" page', async ({
  pageAs,
  expectRefusal,
}) => {
  const page = await pageAs('stranger');
  expectRefusal('/console', 403);
  const response = await page.goto(at('/console'));
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { level: 1, name: 'Not allowed' })).toBeVisible();
  await expect(page.locator('dl.facts')).toContainText('Request id');
  // Unstyled: the gateway serves nothing, not even its stylesheet, to a certificate it does
  // not know, and the page does not ask for it. Nobody is signed in; the way on is home.
  await expect(page.locator('link[rel=stylesheet]')).toHaveCount(0);
  await expect(page.getByRole('banner')).not.toContainText('Signed in as');
  await expect(page.getByRole('navigation', { name: 'Console' }).getByRole('link')).toHaveText(['Home']);
  await snap(page, 'access-01-stranger-not-allowed');
});

test('a practitioner opening the audit trail gets "Not allowed"', async ({ pageAs, expectRefusal }) => {
  const page = await pageAs('police-mentor');
  await page.goto(at('/console'));
  await expect(page.getByRole('navigation', { name: 'Console' })).not.toContainText('Audit trail');
  expectRefusal('/console/audit', 403);
  const response = await page.goto(at('/console/audit'));
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { level: 1, name: 'Not allowed' })).toBeVisible();
  await expect(page.locator('dl.facts')).toContainText('role');
  await expect(page.getByRole('table')).toHaveCount(0);
  await snap(page, 'access-02-practitioner-audit-not-allowed');
});

test('on a phone the caseload and a records page fit the screen', async ({ pageAs }) => {
  const phone = { viewport: { width: 375, height: 800 }, isMobile: true, hasTouch: true };
  const coordinator = await pageAs('programme-coordinator', phone);
  await coordinator.goto(at('/console/caseload'));
  await expect(coordinator.getByRole('heading', { level: 1, name: 'Caseload' })).toBeVisible();
  await expectNoSidewaysScrolling(coordinator);
  // The table scrolls inside its own box rather than squeezing each column to a few
  // letters: an NHS number and a one-word heading stay whole.
  await expectOnOneLine(coordinator, '9990000042');
  await expectOnOneLine(coordinator, 'Consent');
  await snap(coordinator, 'access-03-phone-caseload');

  const mentor = await pageAs('police-mentor', phone);
  const subject = await findPerson(mentor, { nhs: '9990000018' });
  await mentor.goto(at(`/console/subjects/${subject}/records?purpose=crisis_response`));
  await expect(mentor.getByRole('heading', { level: 1, name: 'Records' })).toBeVisible();
  await expectNoSidewaysScrolling(mentor);
  await snap(mentor, 'access-04-phone-records');
});

test('at 200 % zoom the caseload and the service-use report fit the window', async ({ pageAs }) => {
  // A 1280-pixel-wide screen at 200 %: 640 CSS pixels, each two device pixels.
  const page = await pageAs('programme-coordinator', {
    viewport: { width: 640, height: 720 },
    deviceScaleFactor: 2,
  });
  await page.goto(at('/console/caseload'));
  await expect(page.getByRole('heading', { level: 1, name: 'Caseload' })).toBeVisible();
  await expectNoSidewaysScrolling(page);
  await snap(page, 'access-05-zoom-200-caseload');

  await page.goto(at('/console/reports/service-usage'));
  await expect(page.getByRole('img', { name: /Emergency service use/ })).toBeVisible();
  await expectNoSidewaysScrolling(page);
  await snap(page, 'access-06-zoom-200-service-use');
});

test('the first Tab reaches "Skip to content", which leads to the page\'s content', async ({
  pageAs,
}) => {
  const page = await pageAs('programme-coordinator');
  await page.goto(at('/console/caseload'));
  const skip = page.getByRole('link', { name: 'Skip to content' });
  await expect(skip).not.toBeInViewport();
  await page.keyboard.press('Tab');
  await expect(skip).toBeFocused();
  await expect(skip).toBeInViewport();
  await snap(page, 'access-07-skip-link-focused');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(at('/console/caseload#main'));
  // The next Tab goes on from the content, not back through the navigation.
  await page.keyboard.press('Tab');
  await expect(page.getByRole('main').getByRole('link').first()).toBeFocused();
});

test('every field of the enrolment, consent, break-glass and record forms has a label', async ({
  pageAs,
}) => {
  const coordinator = await pageAs('programme-coordinator');
  await coordinator.goto(at('/console/subjects/new'));
  await expectEveryFieldLabelled(coordinator);

  const subject = await enrol(coordinator, newPerson());
  // The consent page's own forms: withdrawal and discharge.
  await expectEveryFieldLabelled(coordinator);
  await coordinator.goto(at(`/console/subjects/${subject}/consents/new`));
  await expect(coordinator.getByRole('heading', { level: 1, name: 'Record consent' })).toBeVisible();
  await expectEveryFieldLabelled(coordinator);

  const mentor = await pageAs('police-mentor');
  const known = await findPerson(mentor, { nhs: '9990000018' });
  await expectEveryFieldLabelled(mentor);
  await mentor.goto(at(`/console/subjects/${known}/break-glass`));
  await expect(mentor.getByRole('heading', { level: 1, name: 'Emergency access' })).toBeVisible();
  await expectEveryFieldLabelled(mentor);
  for (const type of ['police.incident', 'police.s136_detention', 'emergency.call_999', 'programme.mentoring_session']) {
    await mentor.goto(at(`/console/subjects/${known}/records/new?type=${type}`));
    await expect(mentor.getByRole('heading', { level: 1, name: `Submit a ${type} record` })).toBeVisible();
    await expectEveryFieldLabelled(mentor);
  }
});
