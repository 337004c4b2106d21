import { expect, keepScreenshot, newPerson, signInWithForm, test, users } from './fixtures';

test.use({ signedInAs: 'admin' });

test('an admin creates a user, changes their role and password, cannot demote or delete themselves, and deletes the user', async ({
  page,
  browser,
  baseURL,
}, testInfo) => {
  const admin = users().admin;
  const email = `dana-${Date.now().toString(36)}@example.com`;
  await page.goto('/');
  await expect(page.getByRole('navigation').getByRole('link')).toHaveText([
    'Jobs',
    'Pipelines',
    'Workers',
    'Connections',
    'Users',
    'API keys',
    'Audit',
  ]);
  await page.getByRole('navigation').getByRole('link', { name: 'Users' }).click();
  await expect(page.getByRole('heading', { name: 'Users' })).toBeVisible();
  await expect(page.locator(`[data-testid="user-row"][data-email="${admin.email}"]`)).toContainText('you');

  // Wrong values are said before anything is sent: the API's own rules (a password has at least 12 characters).
  const form = page.getByRole('form', { name: 'New user' });
  await expect(form).toContainText('at least 12 characters');
  const sent: string[] = [];
  page.on('request', (r) => r.method() === 'POST' && r.url().endsWith('/api/users') && sent.push(r.url()));
  await form.getByLabel('Email').fill('dana');
  await form.getByLabel('Password').fill('short');
  await form.getByRole('button', { name: 'Create user' }).click();
  await expect(page.locator('#new-user-email-error')).toHaveText('an email address, like alice@example.com');
  await expect(page.locator('#new-user-password-error')).toHaveText('a password has at least 12 characters');
  expect(sent).toEqual([]);

  // Created as a viewer, then made an operator.
  const first = 'correct horse battery';
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Name').fill('Dana');
  await form.getByLabel('Password').fill(first);
  await form.getByLabel('Role').selectOption('viewer');
  await form.getByRole('button', { name: 'Create user' }).click();
  const row = page.locator(`[data-testid="user-row"][data-email="${email}"]`);
  await expect(row).toContainText('Dana');
  await expect(row.getByLabel(`Role of ${email}`)).toHaveValue('viewer');
  // Made twice: the server's refusal is shown as it comes.
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password').fill(first);
  await form.getByRole('button', { name: 'Create user' }).click();
  await expect(form.getByRole('alert')).toContainText(`a user ${email} exists already`);
  // Saved before the page reloads (a reload right away could cut the request off).
  const saved = page.waitForResponse((r) => r.request().method() === 'PATCH' && /\/api\/users\/[^/]+$/.test(r.url()));
  await row.getByLabel(`Role of ${email}`).selectOption('operator');
  expect((await saved).ok()).toBe(true);
  await page.reload();
  await expect(row.getByLabel(`Role of ${email}`)).toHaveValue('operator');

  // The user signs in elsewhere, and is an operator there.
  const dana = await newPerson(browser, baseURL!);
  // The pipelines page polls nothing: only its live connection can notice the session ending.
  await dana.goto('/pipelines');
  await signInWithForm(dana, email, first);
  await expect(dana).toHaveURL(/\/pipelines$/);
  await expect(dana.getByTestId('account-role')).toHaveText('operator');
  await expect(dana.getByTestId('live-status')).toHaveText('Live');

  // A new password, checked by the same rule first; setting it ends the user's sessions, and their open page goes
  // to sign in by itself (its live connection is closed, and refused when it comes back).
  await row.getByRole('button', { name: 'Reset password' }).click();
  await row.getByLabel('New password').fill('too short');
  await row.getByRole('button', { name: 'Set password' }).click();
  await expect(row.locator('.field-error')).toHaveText('a password has at least 12 characters');
  const second = 'another long passphrase';
  await row.getByLabel('New password').fill(second);
  await row.getByRole('button', { name: 'Set password' }).click();
  await expect(row).toContainText('password set');
  await keepScreenshot(page, testInfo, 'users');
  await expect(dana).toHaveURL(/\/sign-in\?next=%2Fpipelines$/);
  await signInWithForm(dana, email, first);
  await expect(dana.getByTestId('sign-in-error')).toHaveText('Wrong email or password.');
  await signInWithForm(dana, email, second);
  await expect(dana).toHaveURL(/\/pipelines$/);
  await expect(dana.getByTestId('account-email')).toHaveText(email);
  await dana.context().close();

  // The admin's own row: the server refuses to take their admin role or delete them, and says why.
  const self = page.locator(`[data-testid="user-row"][data-email="${admin.email}"]`);
  await self.getByLabel(`Role of ${admin.email}`).selectOption('viewer');
  await expect(self.getByRole('alert')).toContainText('you cannot take the admin role from yourself');
  await expect(self.getByLabel(`Role of ${admin.email}`)).toHaveValue('admin');
  await self.getByRole('button', { name: 'Delete' }).click();
  let dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Delete user' }).click();
  await expect(dialog.getByRole('alert')).toContainText('you cannot delete yourself');
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // Deleting asks first.
  await row.getByRole('button', { name: 'Delete' }).click();
  dialog = page.getByRole('dialog');
  await expect(dialog).toContainText(`Delete user ${email}?`);
  await dialog.getByRole('button', { name: 'Delete user' }).click();
  await expect(row).toHaveCount(0);
  await page.reload();
  await expect(page.locator(`[data-testid="user-row"][data-email="${admin.email}"]`)).toBeVisible();
  await expect(row).toHaveCount(0);
});

test('an admin makes an API key: shown once with a copy button, then listed by its prefix; it works until revoked; the audit trail has both', async ({
  page,
  context,
  playwright,
  baseURL,
}, testInfo) => {
  const name = `ci-${Date.now().toString(36)}`;
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  await page.goto('/api-keys');
  const form = page.getByRole('form', { name: 'New API key' });

  // Checked before sending: a name, and a whole number of days from 1 to 365.
  await form.getByLabel('Expires in (days)').fill('0');
  await form.getByRole('button', { name: 'Create key' }).click();
  await expect(page.locator('#new-key-name-error')).toHaveText('required, to tell keys apart');
  await expect(page.locator('#new-key-days-error')).toHaveText('a whole number of days from 1 to 365');
  await form.getByLabel('Expires in (days)').fill('366');
  await expect(page.locator('#new-key-days-error')).toHaveText('a whole number of days from 1 to 365');
  await form.getByLabel('Expires in (days)').fill('2.5');
  await expect(page.locator('#new-key-days-error')).toHaveText('a whole number of days from 1 to 365');
  await expect(page.getByTestId('new-api-key')).toHaveCount(0);

  await form.getByLabel('Name').fill(name);
  await form.getByLabel('Role').selectOption('operator');
  await form.getByLabel('Expires in (days)').fill('30');
  await form.getByRole('button', { name: 'Create key' }).click();
  const shown = page.getByTestId('new-api-key');
  await expect(shown).toContainText('you won’t see it again');
  const key = await page.getByTestId('api-key-value').inputValue();
  expect(key).toMatch(/^kf_\S{20,}$/);
  await shown.getByRole('button', { name: 'Copy' }).click();
  await expect(shown.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  await keepScreenshot(page, testInfo, 'api-key-created');

  // Listed by its first characters only, and never shown again.
  const row = page.locator(`[data-testid="api-key-row"][data-name="${name}"]`);
  await expect(row).toContainText('operator');
  await expect(row).toContainText(users().admin.email);
  await expect(row).toContainText('never');
  await shown.getByRole('button', { name: 'Done' }).click();
  await expect(shown).toHaveCount(0);
  await page.reload();
  const start = (await row.getByTestId('api-key-start').textContent())!.replace(/…$/, '');
  expect(start.startsWith('kf_')).toBe(true);
  expect(key.startsWith(start)).toBe(true);
  expect(start.length).toBeLessThan(key.length / 2);
  expect(await page.content()).not.toContain(key);

  // The key works as an operator, without any cookie.
  const script = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { authorization: `Bearer ${key}` } });
  const me = await script.get('/api/me');
  expect(me.status()).toBe(200);
  expect(await me.json()).toMatchObject({ role: 'operator', via: 'api-key', apiKey: { name } });
  await page.reload();
  await expect(row).not.toContainText('never');

  // Revoking asks first; the key is refused from then on.
  await row.getByRole('button', { name: 'Revoke' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText(`Revoke API key “${name}”?`);
  await dialog.getByRole('button', { name: 'Revoke key' }).click();
  await expect(row).toHaveCount(0);
  expect((await script.get('/api/me')).status()).toBe(401);
  await script.dispose();

  // The audit trail, newest first: the revoke above the creation, both by the admin; filtered by action.
  await page.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
  const entries = page.getByTestId('audit-row');
  await expect(entries.first()).toHaveAttribute('data-action', 'apikey.revoke');
  await expect(entries.first()).toContainText(`API key revoked: ${name}`);
  await expect(entries.nth(1)).toHaveAttribute('data-action', 'apikey.create');
  await expect(entries.nth(1)).toContainText(`API key created: ${name}`);
  await expect(entries.nth(1)).toContainText(users().admin.email);
  await expect(entries.nth(1)).toContainText(`start: ${start}`);
  await keepScreenshot(page, testInfo, 'audit');
  await page.getByLabel('Action').selectOption('apikey.create');
  await expect(entries.filter({ hasText: name })).toHaveCount(1);
  await expect(page.locator('[data-testid="audit-row"]:not([data-action="apikey.create"])')).toHaveCount(0);
  // A job filter that is no job id is said so, and not sent.
  await page.getByLabel('Job', { exact: true }).fill('not-a-job');
  await expect(page.locator('#audit-job-error')).toContainText('a job id');
  await expect(page.getByRole('button', { name: 'Filter', exact: true })).toBeDisabled();
});
