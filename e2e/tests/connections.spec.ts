import { expect, keepScreenshot, test } from './fixtures';

test.use({ signedInAs: 'admin' });

test('an admin makes a NATS connection, tests it, edits it (the password stays unseen), and picks it in the builder', async ({
  page,
  request,
}, testInfo) => {
  const name = `e2e-nats-${Date.now().toString(36)}`;
  const password = `e2e-secret-${Date.now().toString(36)}`;
  await page.goto('/');
  await page.getByRole('navigation').getByRole('link', { name: 'Connections' }).click();
  await expect(page.getByRole('heading', { name: 'Connections' })).toBeVisible();

  // Made with the form; a URL with the password in it is refused before anything is sent.
  await page.getByRole('button', { name: 'New connection' }).click();
  const form = page.getByRole('form', { name: 'New connection' });
  await form.getByLabel('Name', { exact: true }).fill(name);
  await expect(form.getByLabel('Kind', { exact: true })).toHaveValue('nats');
  await form.getByLabel('URL', { exact: true }).fill('nats://app:pw@127.0.0.1:4222');
  await form.getByRole('button', { name: 'Create connection' }).click();
  await expect(page.locator('#connection-url-error')).toHaveText('put the user name and password in their own fields, not in the URL');
  await form.getByLabel('URL', { exact: true }).fill('nats://127.0.0.1:4222');
  await form.getByRole('button', { name: 'Create connection' }).click();
  await expect(form).toBeHidden();
  const row = page.locator(`[data-testid="connection-row"][data-name="${name}"]`);
  await expect(row).toContainText('nats://127.0.0.1:4222');
  await expect(row.getByTestId('connection-secrets')).toHaveText('none');

  // Test connection: reached, with the server's version; a stream that is not there is named.
  await row.getByRole('button', { name: 'Test' }).click();
  const tester = page.getByRole('form', { name: `Test connection ${name}` });
  await tester.getByRole('button', { name: 'Test connection' }).click();
  const result = tester.getByTestId('connection-test-result');
  await expect(result).toHaveAttribute('data-ok', 'true');
  await expect(result).toContainText('connected to 127.0.0.1:4222 (NATS');
  await tester.getByLabel('Stream (optional)', { exact: true }).fill('E2E_NO_SUCH_STREAM');
  await tester.getByRole('button', { name: 'Test connection' }).click();
  await expect(result).toHaveAttribute('data-ok', 'false');
  await expect(result).toContainText("reached 127.0.0.1:4222 and signed in, but JetStream has no stream 'E2E_NO_SUCH_STREAM'");

  // Edited: a user and a password. The password is never shown again: the field says "unchanged".
  await row.getByRole('button', { name: 'Edit' }).click();
  const edit = page.getByRole('form', { name: `Edit connection ${name}` });
  await edit.getByLabel('User name', { exact: true }).fill('app');
  await edit.getByLabel('Password', { exact: true }).fill(password);
  await edit.getByRole('button', { name: 'Save connection' }).click();
  await expect(edit).toBeHidden();
  await expect(row.getByTestId('connection-secrets')).toHaveText('password');
  await expect(row).toContainText('app');
  await row.getByRole('button', { name: 'Edit' }).click();
  await expect(edit.getByLabel('Password', { exact: true })).toHaveValue('');
  await expect(edit.getByLabel('Password', { exact: true })).toHaveAttribute('placeholder', 'unchanged');
  await edit.getByRole('button', { name: 'Cancel' }).click();
  const listed = await request.get('/api/connections');
  expect(await listed.text()).not.toContain(password);
  // The local NATS asks for no credentials: the test still passes with them.
  await tester.getByLabel('Stream (optional)', { exact: true }).fill('');
  await tester.getByRole('button', { name: 'Test connection' }).click();
  await expect(result).toHaveAttribute('data-ok', 'true');
  await keepScreenshot(page, testInfo, 'connections');

  // In the builder, a NATS JetStream source's connection is a select of the NATS connections.
  await page.goto('/pipelines/new');
  await page.getByTestId('palette-nats').dragTo(page.getByTestId('builder-canvas'), { targetPosition: { x: 200, y: 220 } });
  await page.getByTestId('node-nats').click();
  const select = page.getByTestId('connection-select-connection');
  await expect(select.locator('option', { hasText: name })).toHaveCount(1);
  await select.selectOption(name);
  await expect(select).toHaveValue(name);
  // A Redis Streams sink offers none of them, and says where to make one.
  await page.getByTestId('palette-redisStreamSink').dragTo(page.getByTestId('builder-canvas'), { targetPosition: { x: 600, y: 220 } });
  await page.getByTestId('node-redisStreamSink').click();
  await expect(page.getByTestId('connection-select-connection').locator('option', { hasText: name })).toHaveCount(0);
  await keepScreenshot(page, testInfo, 'builder-connection');
});

test('a wrong URL says the host cannot be reached; a connection a pipeline names is not deleted, and the dialog says why', async ({
  page,
  request,
}) => {
  const name = `e2e-closed-${Date.now().toString(36)}`;
  await page.goto('/connections');
  await page.getByRole('button', { name: 'New connection' }).click();
  const form = page.getByRole('form', { name: 'New connection' });
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByLabel('URL', { exact: true }).fill('nats://127.0.0.1:1');
  await form.getByRole('button', { name: 'Create connection' }).click();
  const row = page.locator(`[data-testid="connection-row"][data-name="${name}"]`);
  await row.getByRole('button', { name: 'Test' }).click();
  const tester = page.getByRole('form', { name: `Test connection ${name}` });
  await tester.getByRole('button', { name: 'Test connection' }).click();
  const result = tester.getByTestId('connection-test-result');
  await expect(result).toHaveAttribute('data-ok', 'false');
  await expect(result).toContainText('cannot reach 127.0.0.1:1: connection refused (ECONNREFUSED)');

  const pipeline = `e2e-uses-${name}`;
  const saved = await request.post('/api/pipelines', {
    data: {
      name: pipeline,
      graph: {
        vertices: [
          { id: 'orders', type: 'nats', parallelism: 1, settings: { connection: name, stream: 'ORDERS' } },
          { id: 'log', type: 'log', parallelism: 1 },
        ],
        edges: [{ from: 'orders', to: 'log', partitioning: 'forward' }],
      },
    },
  });
  expect(saved.status()).toBe(201);
  await page.reload();
  await expect(row).toContainText(pipeline);
  await row.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog', { name: `Delete connection “${name}”?` });
  await dialog.getByRole('button', { name: 'Delete connection' }).click();
  await expect(dialog.getByTestId('delete-connection-error')).toHaveText(
    `connection '${name}' is used by pipeline '${pipeline}': change them to another connection first`,
  );
  await dialog.getByRole('button', { name: 'Cancel' }).click();

  // Once no pipeline names it, it goes.
  expect((await request.delete(`/api/pipelines/${(await saved.json()).id}`)).status()).toBe(200);
  await row.getByRole('button', { name: 'Delete' }).click();
  await dialog.getByRole('button', { name: 'Delete connection' }).click();
  await expect(row).toHaveCount(0);
});
