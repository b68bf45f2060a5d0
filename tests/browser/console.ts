// What the console's flow tests share: identifiers no other test uses, dates as the console
// writes them, finding and enrolling people through the pages, and the checks that a
// form's error sits beside its field and that every field has a label.
import type { Page } from '@playwright/test';
import { expect, CONCORDAT_URL } from './fixtures';

/** A path on the gateway as an absolute URL. */
export function at(path: string): string {
  return new URL(path, CONCORDAT_URL).href;
}

// Every test shares one gateway, so each enrols people of its own: identifiers and names
// start at a random point and count on from there.
let serial = 100_000 + Math.floor(Math.random() * 800_000);

/** A valid NHS number (modulus 11) from the 999 test range that no sample subject has. */
export function uniqueNhsNumber(): string {
  for (;;) {
    const first = `999${String(serial++).padStart(6, '0')}`;
    const sum = [...first].reduce((total, digit, i) => total + Number(digit) * (10 - i), 0);
    const check = (11 - (sum % 11)) % 11;
    if (check !== 10) return `${first}${check}`;
  }
}

/** A valid PNC id, `YY/NNNNNNNX` with its check letter. */
export function uniquePncId(): string {
  const serialPart = String(serial++ % 10_000_000).padStart(7, '0');
  const letter = 'ZABCDEFGHJKLMNPQRTUVWXY'[Number(`24${serialPart}`) % 23];
  return `24/${serialPart}${letter}`;
}

/** A family name of letters only, different for every call. */
export function uniqueName(prefix: string): string {
  let n = serial++;
  let letters = '';
  do {
    letters = String.fromCharCode(97 + (n % 26)) + letters;
    n = Math.floor(n / 26);
  } while (n > 0);
  return `${prefix}-${letters}`;
}

/** Something unique to put in free text and find again. */
export function uniqueTag(): string {
  return `${Date.now().toString(36)}${(serial++).toString(36)}`;
}

/** `YYYY-MM-DD`, `days` from today (UTC, as the gateway counts days). */
export function isoDate(days = 0): string {
  const date = new Date();
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A `YYYY-MM-DD` date as the console writes it: `5 Mar 2026`. */
export function shownDay(iso: string): string {
  const [year, month, day] = iso.split('-').map(Number);
  return `${day} ${MONTHS[month - 1]} ${year}`;
}

/** The zone in force in England now, as the console suffixes times: GMT or BST. */
export function londonZoneNow(): string {
  const part = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', timeZoneName: 'short' })
    .formatToParts(new Date())
    .find((p) => p.type === 'timeZoneName');
  return part?.value === 'BST' ? 'BST' : 'GMT';
}

/** A `datetime-local` value for an hour ago, in UK time, as a practitioner would type it. */
export function anHourAgoInLondon(): string {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/London',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(Date.now() - 3_600_000));
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')}T${part('hour')}:${part('minute')}`;
}

/** The subject id a page names in its facts ("Subject id"). */
export async function shownSubjectId(page: Page): Promise<string> {
  const id = await page.locator('dl.facts dd code').first().innerText();
  expect(id).toMatch(/^subj_/);
  return id;
}

/** Finds a person on the "Find a person" page by NHS number or PNC id, and returns the
 * subject id the "Person found" page shows. */
export async function findPerson(page: Page, by: { nhs?: string; pnc?: string }): Promise<string> {
  await page.goto(at('/console/find'));
  await expect(page.getByRole('heading', { level: 1, name: 'Find a person' })).toBeVisible();
  if (by.nhs) await page.getByLabel('NHS number').fill(by.nhs);
  if (by.pnc) await page.getByLabel('PNC id').fill(by.pnc);
  await page.getByRole('button', { name: 'Find' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Person found' })).toBeVisible();
  return shownSubjectId(page);
}

export type Person = {
  nhs: string;
  pnc: string;
  given: string;
  family: string;
};

/** A new person with identifiers and a name no one else has. */
export function newPerson(): Person {
  return {
    nhs: uniqueNhsNumber(),
    pnc: uniquePncId(),
    given: 'Marigold',
    family: uniqueName('Quillfeather'),
  };
}

/** Fills the enrolment form by its labels (the page must be open). */
export async function fillEnrolment(page: Page, person: Person): Promise<void> {
  await page.getByLabel('NHS number').fill(person.nhs);
  await page.getByLabel('PNC id').fill(person.pnc);
  await page.getByLabel('Given name').fill(person.given);
  await page.getByLabel('Family name').fill(person.family);
  await page.getByLabel('Date of birth').fill('1988-04-02');
  await page.getByLabel('Enrolled on').fill(isoDate());
}

/** Enrols `person` as the coordinator on `page`, and returns the subject id of the consent
 * page enrolment leads to. */
export async function enrol(page: Page, person: Person): Promise<string> {
  await page.goto(at('/console/subjects/new'));
  await fillEnrolment(page, person);
  await page.getByRole('button', { name: 'Enrol' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Consent' })).toBeVisible();
  const match = /\/console\/subjects\/(subj_[^/]+)\/consents$/.exec(page.url());
  expect(match, `enrolment leads to the consent page, not ${page.url()}`).not.toBeNull();
  return match![1];
}

/** The field labelled `label` shows `message` as its error: beside it (in its own field
 * group), marked invalid, and read out with it; the summary at the top says so too. */
export async function expectErrorBeside(
  page: Page,
  label: string,
  message: RegExp,
): Promise<void> {
  const field = page.getByLabel(label);
  await expect(field).toHaveAttribute('aria-invalid', 'true');
  await expect(field).toHaveAccessibleDescription(message);
  await expect(page.locator('.field.invalid', { has: field }).locator('.error')).toHaveText(message);
  await expect(page.getByRole('alert').filter({ hasText: 'There is a problem' })).toBeVisible();
}

/** Every visible input, select and text area in the page's main content has a label and
 * so an accessible name. */
export async function expectEveryFieldLabelled(page: Page): Promise<void> {
  const fields = page.locator('main').locator('input:not([type=hidden]), select, textarea');
  const count = await fields.count();
  expect(count, 'the form has fields').toBeGreaterThan(0);
  for (let i = 0; i < count; i++) {
    const field = fields.nth(i);
    if (!(await field.isVisible())) continue;
    const name = await field.getAttribute('name');
    const labels = await field.evaluate(
      (el) => (el as HTMLInputElement).labels?.length ?? 0,
    );
    expect(labels, `field ${name} has a label`).toBeGreaterThan(0);
    await expect(field, `field ${name} has an accessible name`).toHaveAccessibleName(/\S/);
  }
}

/** Whether the page scrolls sideways: it must not, on a phone or at 200 % zoom. */
export async function expectNoSidewaysScrolling(page: Page): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  expect(scrollWidth, 'page width within the window').toBeLessThanOrEqual(innerWidth);
}

/** The text `text` in the page's main content is on one line: not broken letter by letter
 * into a column too narrow for it. */
export async function expectOnOneLine(page: Page, text: string): Promise<void> {
  const lines = await page
    .getByRole('main')
    .getByText(text, { exact: true })
    .first()
    .evaluate((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
    });
  expect(lines, `"${text}" on one line`).toBe(1);
}
