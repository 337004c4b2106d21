import { expect, keepScreenshot, test } from './fixtures';

test('rescale count from 1 to 2 with its slider: the timeline shows the phases live, the key groups split in two', async ({ page, request }, testInfo) => {
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 400, keys: 500, skew: 'zipf' } },
      { id: 'count', type: 'count', parallelism: 1 },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'out', partitioning: 'forward' },
    ],
  };
  const pipeline = await request.post('/api/pipelines', { data: { name: `rescale-${Date.now().toString(36)}`, graph } });
  expect(pipeline.status()).toBe(201);
  const deployed = await request.post('/api/jobs', { data: { pipelineId: (await pipeline.json()).id, checkpointIntervalMs: 1000 } });
  expect(deployed.status()).toBe(201);
  const jobId: string = (await deployed.json()).id;

  await page.setViewportSize({ width: 1440, height: 1900 });
  await page.goto(`/jobs/${jobId}`);
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  await expect(page.getByTestId('scaling-timeline')).toContainText('No rescale yet');
  const countGroups = page.getByTestId('key-groups-count');
  await expect(countGroups.getByTestId('key-group-range')).toHaveText(['0–127']);

  // The slider: 1 … maxParallelism, its value beside it. Mouse onto it, then the arrow key, as a person does.
  const slider = page.getByTestId('slider-count');
  await expect(slider).toHaveAttribute('max', '128');
  await expect(page.getByTestId('slider-value-count')).toHaveText('1');
  await slider.hover();
  await slider.focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('slider-value-count')).toHaveText('2');

  // One scaling event, live over Socket.IO: every phase gets a time, then COMPLETED.
  const event = page.getByTestId('scaling-event').first();
  await expect(event).toHaveAttribute('data-vertex', 'count');
  await expect(event).toContainText('×1 → ×2');
  await expect(event).toContainText('with its chain: out');
  await expect(event).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
  await expect(event.locator('.scaling-phases li.done')).toHaveCount(6);
  await expect(event).toContainText(/pause \d/);
  await expect(page.getByTestId('node-count').locator('.op-par')).toHaveText('×2');
  await expect(page.getByTestId('node-out').locator('.op-par')).toHaveText('×2');
  await expect(page.getByTestId('slider-value-count')).toHaveText('2');
  await expect(state).toHaveAttribute('data-state', 'RUNNING');

  // The key groups are split between two subtasks, and both see records.
  await expect(countGroups.getByTestId('key-group-range')).toHaveText(['0–63', '64–127'], { timeout: 15_000 });
  await expect(countGroups).toHaveAttribute('data-parallelism', '2');
  // The rest of the page never stopped: rates still flow into count.
  await expect.poll(async () => (await page.getByTestId('live-count').textContent()) ?? '', { timeout: 30_000 }).not.toMatch(/in 0\/s/);
  await slider.blur();
  await keepScreenshot(page, testInfo, 'rescale');

  // A refusal (here one the control plane would send for a chain's limit) shows inline on the node; the slider goes back.
  const refusal = 'parallelism of count must be between 1 and 2 (its maxParallelism within its chain)';
  await page.route(`**/api/jobs/${jobId}`, (route) =>
    route.request().method() === 'PATCH'
      ? route.fulfill({ status: 422, contentType: 'application/json', body: JSON.stringify({ error: 'Unprocessable Entity', message: refusal }) })
      : route.continue(),
  );
  await slider.focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('scale-error-count')).toHaveText(refusal);
  await expect(page.getByTestId('slider-value-count')).toHaveText('2');
  await expect(page.getByTestId('scaling-event')).toHaveCount(1);
  await page.unroute(`**/api/jobs/${jobId}`);

  await request.post(`/api/jobs/${jobId}/cancel`);
});
