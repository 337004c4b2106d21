import { dragConnection, expect, expectRescaleCheckpointListed, inputHandle, keepScreenshot, outputHandle, test } from './fixtures';

test('draw generator → count → postgres, deploy it, watch it checkpoint live, stop it, resume it from its savepoint', async ({ page }, testInfo) => {
  const suffix = Date.now().toString(36);
  await page.goto('/pipelines/new');
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  await page.getByLabel('Pipeline name').fill(`keyed-count-${suffix}`);

  // Drag three operators from the palette onto the empty canvas.
  const canvas = page.getByTestId('builder-canvas');
  await expect(canvas.locator('.react-flow__node')).toHaveCount(0);
  await page.getByTestId('palette-generator').dragTo(canvas, { targetPosition: { x: 140, y: 220 } });
  await page.getByPlaceholder('Search operators').fill('count');
  await expect(page.getByTestId('palette-postgres')).toBeHidden();
  await page.getByTestId('palette-count').dragTo(canvas, { targetPosition: { x: 440, y: 220 } });
  await page.getByPlaceholder('Search operators').fill('');
  await page.getByTestId('palette-postgres').dragTo(canvas, { targetPosition: { x: 740, y: 220 } });
  await expect(canvas.locator('.react-flow__node')).toHaveCount(3);

  // Connect the handles: the edge into the keyed count is partitioned by key.
  await dragConnection(page, outputHandle(page, 'generator'), inputHandle(page, 'count'));
  await expect(canvas.locator('.react-flow__edge')).toHaveCount(1);
  await expect(page.getByTestId('edge-label-generator-count')).toHaveText('hash(user)');

  // Parallelism 2 on count, from the side panel.
  await page.getByTestId('node-count').click();
  await page.getByTestId('parallelism').fill('2');
  await expect(page.getByTestId('node-count')).toContainText('×2');
  await dragConnection(page, outputHandle(page, 'count'), inputHandle(page, 'postgres'));
  await expect(canvas.locator('.react-flow__edge')).toHaveCount(2);

  // An invalid connection is refused while dragging, with core's reason, and no edge appears.
  await dragConnection(page, outputHandle(page, 'count'), inputHandle(page, 'count'));
  await expect(page.getByTestId('connection-refused')).toContainText('an operator cannot feed itself');
  await dragConnection(page, outputHandle(page, 'generator'), inputHandle(page, 'count'));
  await expect(page.getByTestId('connection-refused')).toContainText('generator and count are already connected');
  await expect(canvas.locator('.react-flow__edge')).toHaveCount(2);

  // The postgres sink needs a table: its node is marked, its field shows the error inline until it is set.
  await expect(page.getByTestId('node-postgres')).toHaveAttribute('data-issues', '1');
  await page.getByTestId('node-postgres').click();
  const table = page.getByLabel('Table *');
  await expect(page.getByTestId('setting-table')).toContainText('required');
  await table.fill(`e2e_counts_${suffix}`);
  await expect(page.getByTestId('setting-table').locator('.field-error')).toHaveCount(0);
  await expect(page.getByTestId('node-postgres')).toHaveAttribute('data-issues', '0');
  await keepScreenshot(page, testInfo, 'builder');

  await canvas.locator('.react-flow__pane').click({ position: { x: 20, y: 20 } });
  await expect(page.getByTestId('side-panel')).toContainText('The pipeline is valid');

  await page.getByRole('button', { name: 'Save pipeline' }).click();
  await expect(page.getByTestId('save-state')).toHaveText('Saved as version 1');
  await expect(page).toHaveURL(/\/pipelines\/[0-9a-f-]{36}\?version=1$/);

  await page.getByLabel('Checkpoint interval (s)').fill('1');
  await page.getByRole('button', { name: 'Deploy' }).click();
  await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/);
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });

  // Checkpoints arrive over Socket.IO: the timeline and the table fill without a reload.
  const completedRows = page.locator('[data-testid="checkpoint-row"][data-status="COMPLETED"]');
  await expect.poll(() => completedRows.count(), { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
  const completedBars = page.locator('[data-testid="checkpoint-bar"][data-status="COMPLETED"]');
  await expect.poll(() => completedBars.count()).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId('node-count')).toBeVisible();
  await expect(page.getByTestId('node-count')).toContainText('×2');
  await expect(page.getByTestId('edge-label-generator-count')).toContainText(/hash\(user\) · \d/);
  await expect.poll(async () => (await page.getByTestId('live-count').textContent()) ?? '', { timeout: 30_000 }).not.toMatch(/in 0\/s/);
  // Beside backpressure, how busy its busiest subtask is (Flink's busy time): the operator that limits the job.
  await expect(page.getByTestId('busy-count')).toHaveText(/^\d{1,3}% busy$/);

  // A row opens its per-subtask acknowledgements: generator, count#0, count#1, postgres#0.
  await completedRows.first().click();
  await expect(page.getByTestId('checkpoint-acks').locator('tbody tr')).toHaveCount(4);
  // A few more checkpoints make the screenshot's timeline say more.
  await expect.poll(() => completedBars.count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(4);
  await page.setViewportSize({ width: 1440, height: 1300 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await keepScreenshot(page, testInfo, 'job');

  // Scaled down from ×2 with its slider before the stop: resuming does not undo it.
  const slider = page.getByTestId('slider-count');
  await slider.focus();
  await page.keyboard.press('ArrowLeft');
  await expect(page.getByTestId('scaling-event').first()).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
  await expect(page.getByTestId('node-count')).toContainText('×1');
  // The rescale names its checkpoint by the number the Checkpoints table lists it under.
  await expectRescaleCheckpointListed(page);

  await page.getByRole('button', { name: 'Stop with savepoint' }).click();
  await expect(state).toHaveAttribute('data-state', 'STOPPED', { timeout: 60_000 });
  await expect(page.getByTestId('lifecycle-events')).toContainText('STOPPING');
  await expect(page.getByRole('button', { name: 'Stop with savepoint' })).toBeDisabled();

  // The savepoint the stop took resumes the pipeline as a new job; cancelling asks first.
  const stoppedUrl = page.url();
  const resume = page.getByRole('button', { name: /^Resume from savepoint #\d+$/ });
  const savepoint = (await resume.textContent())!.match(/#(\d+)$/)![1];
  await resume.click();
  await expect(page).not.toHaveURL(stoppedUrl);
  // The new job says where it started, as the stopped job's page named it, and links back to that job.
  const stoppedJob = stoppedUrl.split('/').pop()!;
  await expect(page.getByTestId('restored-from')).toHaveText(`· restored from checkpoint #${savepoint} of job ${stoppedJob.slice(0, 8)}`);
  await expect(page.getByTestId('restored-from').getByRole('link')).toHaveAttribute('href', `/jobs/${stoppedJob}`);
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  await expect(page.getByTestId('node-count')).toContainText('×1');
  await expect(page.getByTestId('parallelism-input-count')).toHaveValue('1');
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
  await expect(state).toHaveAttribute('data-state', 'CANCELED', { timeout: 30_000 });
});

test('the pipeline list renames, shows versions and deletes with confirmation', async ({ page, request }) => {
  const name = `to-rename-${Date.now().toString(36)}`;
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1 },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [{ from: 'events', to: 'out', partitioning: 'forward' }],
  };
  expect((await request.post('/api/pipelines', { data: { name, graph } })).status()).toBe(201);
  await page.goto('/pipelines');
  const row = page.getByTestId(`pipeline-${name}`);
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: /versions/ }).click();
  await expect(page.getByTestId('versions').locator('tbody tr')).toHaveCount(1);

  await row.getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('New name').fill('renamed-by-e2e');
  await page.getByLabel('New name').press('Enter');
  const renamed = page.getByTestId('pipeline-renamed-by-e2e');
  await expect(renamed).toBeVisible();

  await renamed.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('Delete pipeline “renamed-by-e2e”?');
  await dialog.getByRole('button', { name: 'Delete pipeline' }).click();
  await expect(renamed).toHaveCount(0);
});

test('the workers page lists the pool with its slots, the cores each uses and the user operators each can run', async ({ page }, testInfo) => {
  await page.goto('/workers');
  await expect(page.getByTestId('worker-row')).toHaveCount(2);
  await expect(page.getByTestId('worker-row').first()).toContainText('free');
  // Measured by each worker's heartbeat: a figure, never a blank, for workers of this version.
  await expect(page.getByTestId('worker-cpu')).toHaveCount(2);
  for (const cell of await page.getByTestId('worker-cpu').all()) await expect(cell).toHaveText(/^\d+\.\d\d cpu$/);
  await keepScreenshot(page, testInfo, 'workers');
  await expect(page.getByTestId('worker-operators').first()).toContainText(/sdkCounter@[0-9a-f]{12}, dedupe@[0-9a-f]{12}, failedLogins@[0-9a-f]{12}/);
});

test('an unreachable API shows a clear banner, not a blank page', async ({ page }) => {
  await page.route('**/api/**', (route) => route.fulfill({ status: 502, contentType: 'text/plain', body: 'Bad Gateway' }));
  await page.goto('/');
  await expect(page.getByTestId('api-down')).toContainText('The Keyflow control plane is unreachable');
  await expect(page.getByRole('heading', { name: 'Jobs' })).toBeVisible();
  await page.unroute('**/api/**');
  await expect(page.getByTestId('api-down')).toBeHidden({ timeout: 15_000 });
});
