// The web console under /console.
import { test, expect, snap, CONCORDAT_URL } from '../fixtures';

test('the console opens for the police mentor', async ({ pageAs }) => {
  const page = await pageAs('police-mentor');
  const response = await page.goto(`${CONCORDAT_URL}/console`);
  expect(response?.status()).toBe(200);
  await expect(page.locator('h1')).toBeVisible();
  await snap(page, 'console-police-mentor');
});
