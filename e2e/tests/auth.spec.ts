import { expect, keepScreenshot, signInWithForm, test, users } from './fixtures';

test.use({ signedInAs: null });

test('sign in: a page asks for it and comes back after; wrong values are said before sending, a wrong password and a rate limit after', async ({
  page,
}, testInfo) => {
  const operator = users().operator;
  const attempts: string[] = [];
  page.on('request', (r) => r.url().includes('/api/auth/sign-in') && attempts.push(r.method()));

  // Any page goes to sign in first, keeping where it was.
  await page.goto('/pipelines?from=e2e');
  await expect(page).toHaveURL(/\/sign-in\?next=%2Fpipelines%3Ffrom%3De2e$/);
  await expect(page.getByRole('heading', { name: 'Sign in to Keyflow' })).toBeVisible();
  // Nobody signed in: no way into the dashboard from the nav.
  await expect(page.getByRole('navigation').getByRole('link')).toHaveCount(0);
  await expect(page.getByTestId('account')).toHaveCount(0);

  // Empty, then not an email: said in words, and nothing is sent.
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#sign-in-email-error')).toHaveText('enter your email');
  await expect(page.locator('#sign-in-password-error')).toHaveText('enter your password');
  await signInWithForm(page, 'operator', 'whatever it is');
  await expect(page.locator('#sign-in-email-error')).toHaveText('an email address, like alice@example.com');
  await expect(page.getByLabel('Email')).toHaveAttribute('aria-invalid', 'true');
  expect(attempts).toEqual([]);

  // A wrong password.
  await signInWithForm(page, operator.email, `${operator.password}-not`);
  await expect(page.getByTestId('sign-in-error')).toHaveText('Wrong email or password.');
  await expect(page).toHaveURL(/\/sign-in\?next=/);
  await keepScreenshot(page, testInfo, 'sign-in');

  // Too many attempts: the wait the control plane gives is said (its answer played here, not provoked).
  await page.route('**/api/auth/sign-in/email', (route) =>
    route.fulfill({
      status: 429,
      contentType: 'application/json',
      headers: { 'x-retry-after': '42' },
      body: JSON.stringify({ message: 'Too many requests. Please try again later.' }),
    }),
  );
  await signInWithForm(page, operator.email, operator.password);
  await expect(page.getByTestId('sign-in-error')).toHaveText('Too many attempts: try again in 42 s.');
  await page.unroute('**/api/auth/sign-in/email');

  // The right password: back where the page was, signed in as the operator, live.
  await signInWithForm(page, operator.email, operator.password);
  await expect(page).toHaveURL(/\/pipelines\?from=e2e$/);
  await expect(page.getByRole('heading', { name: 'Pipelines' })).toBeVisible();
  await expect(page.getByTestId('account-email')).toHaveText(operator.email);
  await expect(page.getByTestId('account-role')).toHaveText('operator');
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  // An operator has no admin entries.
  await expect(page.getByRole('navigation').getByRole('link')).toHaveText(['Jobs', 'Pipelines', 'Workers', 'Connections']);
});

test('sign out: back to the sign-in page, the session is gone and every page asks again', async ({ page }) => {
  const operator = users().operator;
  await page.goto('/sign-in');
  await signInWithForm(page, operator.email, operator.password);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  expect((await page.request.get('/api/me')).status()).toBe(200);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await expect(page.getByTestId('account')).toHaveCount(0);
  expect((await page.request.get('/api/me')).status()).toBe(401);

  await page.goto('/');
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.goto('/workers');
  await expect(page).toHaveURL(/\/sign-in\?next=%2Fworkers$/);
});

test('signing in never leads off the dashboard, whatever `next` says', async ({ page, baseURL }) => {
  const viewer = users().viewer;
  await page.goto('/sign-in?next=//evil.example/steal');
  await signInWithForm(page, viewer.email, viewer.password);
  await expect(page.getByTestId('account-role')).toHaveText('viewer');
  await expect(page).toHaveURL(`${baseURL}/`);
});
