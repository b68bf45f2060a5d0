// The client-certificate plumbing: what the browser presents is who the gateway sees, and
// without a certificate there is no connection at all.
import { test, expect, snap, CONCORDAT_URL } from '../fixtures';

test('the police mentor certificate makes the browser police-mentor', async ({ pageAs }) => {
  const page = await pageAs('police-mentor');
  const response = await page.goto(`${CONCORDAT_URL}/v1/whoami`);
  expect(response?.status()).toBe(200);
  const whoami = JSON.parse(await page.locator('body').innerText());
  expect(whoami.principal_id).toBe('police-mentor');
  expect(whoami.agency_id).toBe('hampshire-police');
  await snap(page, 'whoami-police-mentor');
});

test('a browser without a client certificate cannot open the gateway', async ({
  pageWithoutCertificate,
  expectRefusal,
}) => {
  const page = await pageWithoutCertificate();
  expectRefusal('/v1/whoami', 'no-connection');
  // The context accepts the server's certificate, so the refusal is the handshake's
  // demand for a client certificate, not the browser distrusting the dev CA. In TLS 1.3 the
  // browser finishes its side of the handshake before the gateway judges its (empty)
  // certificate; the gateway answers with a certificate_required alert and closes.
  // Chromium names that ERR_BAD_SSL_CLIENT_AUTH_CERT when it reads the alert, and
  // ERR_SOCKET_NOT_CONNECTED when the close overtakes its request (about one time in three).
  await expect(page.goto(`${CONCORDAT_URL}/v1/whoami`)).rejects.toThrow(
    /net::(ERR_BAD_SSL_CLIENT_AUTH_CERT|ERR_SOCKET_NOT_CONNECTED) /,
  );
});

test('a certificate from the right CA for an unknown principal is refused', async ({
  pageAs,
  expectRefusal,
}) => {
  const page = await pageAs('stranger');
  expectRefusal('/v1/whoami', 403);
  const response = await page.goto(`${CONCORDAT_URL}/v1/whoami`);
  expect(response?.status()).toBe(403);
});
