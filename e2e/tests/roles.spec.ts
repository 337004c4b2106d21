import type { APIRequestContext } from '@playwright/test';
import { expect, jobsCanceledAfterEach, keepScreenshot, test } from './fixtures';

test.use({ signedInAs: 'viewer' });

const started = jobsCanceledAfterEach();

async function deployAsOperator(operator: APIRequestContext): Promise<{ pipelineId: string; jobId: string }> {
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 100, keys: 50 } },
      { id: 'count', type: 'count', parallelism: 1 },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'out', partitioning: 'forward' },
    ],
  };
  const pipeline = await operator.post('/api/pipelines', { data: { name: `viewed-${Date.now().toString(36)}`, graph } });
  expect(pipeline.status()).toBe(201);
  const pipelineId: string = (await pipeline.json()).id;
  const job = await operator.post('/api/jobs', { data: { pipelineId, checkpointIntervalMs: 1000 } });
  expect(job.status()).toBe(201);
  const jobId: string = (await job.json()).id;
  started.push(jobId);
  return { pipelineId, jobId };
}

test('a viewer reads a running job and its pipeline but is offered no action; the control plane refuses them too', async ({
  page,
  request,
  requestAs,
}, testInfo) => {
  const { pipelineId, jobId } = await deployAsOperator(await requestAs('operator'));

  // The job page: state, graph, live figures and the parallelism, read-only; no button that changes anything.
  await page.goto(`/jobs/${jobId}`);
  await expect(page.getByTestId('account-role')).toHaveText('viewer');
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  await expect(page.getByTestId('read-only-note')).toContainText('You are a viewer');
  for (const name of ['Checkpoint now', 'Savepoint now', 'Stop with savepoint', 'Cancel', 'Deploy'])
    await expect(page.getByRole('button', { name, exact: true })).toHaveCount(0);
  await expect(page.getByTestId('slider-count')).toHaveCount(0);
  await expect(page.getByTestId('parallelism-input-count')).toHaveCount(0);
  await expect(page.getByTestId('parallelism-readonly-count')).toContainText('parallelism 1');
  await expect(page.getByTestId('node-count').locator('.op-par')).toHaveText('×1');
  // Checkpoints are there to read; starting a job from one or deleting a savepoint is not offered.
  await expect(page.locator('[data-testid="checkpoint-row"][data-status="COMPLETED"]').first()).toBeVisible({ timeout: 30_000 });
  await page.getByRole('tab', { name: 'Savepoints' }).click();
  await expect(page.getByTestId('retained-row').first()).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('button', { name: 'Start new job' })).toHaveCount(0);
  await expect(page.getByTestId('savepoints').getByRole('button', { name: 'Delete' })).toHaveCount(0);
  await keepScreenshot(page, testInfo, 'job-as-viewer');

  // The pipeline opens read-only: its graph and settings to look at, no palette, nothing to save or deploy.
  await page.goto(`/pipelines/${pipelineId}`);
  await expect(page.getByTestId('read-only-note')).toHaveText('Read only: saving, renaming and deploying need the operator role.');
  await expect(page.getByTestId('builder-canvas').locator('.react-flow__node')).toHaveCount(3);
  for (const name of ['Save as new version', 'Save pipeline', 'Deploy', 'Auto layout'])
    await expect(page.getByRole('button', { name, exact: true })).toHaveCount(0);
  await expect(page.getByPlaceholder('Search operators')).toHaveCount(0);
  await page.getByTestId('node-count').click();
  await expect(page.getByTestId('parallelism')).toHaveValue('1');
  await expect(page.getByTestId('parallelism')).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Delete operator' })).toHaveCount(0);
  await keepScreenshot(page, testInfo, 'pipeline-read-only');
  await page.keyboard.press('Delete');
  await expect(page.getByTestId('builder-canvas').locator('.react-flow__node')).toHaveCount(3);

  // The list offers to open a pipeline, not to rename, delete or draw one; the blank builder says why.
  await page.getByRole('navigation').getByRole('link', { name: 'Pipelines' }).click();
  const row = page.locator('[data-testid^="pipeline-viewed-"]').first();
  await expect(row.getByRole('link', { name: 'Open' })).toBeVisible();
  await expect(row.getByRole('button', { name: 'Rename' })).toHaveCount(0);
  await expect(row.getByRole('button', { name: 'Delete' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'New pipeline' })).toHaveCount(0);
  await page.goto('/pipelines/new');
  await expect(page.getByText('Drawing a pipeline needs the operator role.')).toBeVisible();

  // No admin entries, and an admin page says which role it needs.
  await expect(page.getByRole('navigation').getByRole('link')).toHaveText(['Jobs', 'Pipelines', 'Workers', 'Connections']);
  await page.goto('/users');
  await expect(page.getByText('This page needs the admin role.')).toBeVisible();

  // What the page does not offer, the control plane refuses: a viewer's session changes nothing.
  const stop = await request.post(`/api/jobs/${jobId}/stop`);
  expect(stop.status()).toBe(403);
  expect((await stop.json()).message).toContain('needs the operator role; you are a viewer');
  const rescale = await request.patch(`/api/jobs/${jobId}`, { data: { parallelism: { count: 2 } } });
  expect(rescale.status()).toBe(403);
  expect((await request.get('/api/users')).status()).toBe(403);
  const job = await (await request.get(`/api/jobs/${jobId}`)).json();
  expect(job.state).toBe('RUNNING');
  expect(job.plan.vertices.count.parallelism).toBe(1);
});
