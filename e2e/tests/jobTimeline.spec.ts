import { deployRunning, expect, jobsCanceledAfterEach, keepScreenshot, test, users } from './fixtures';

const started = jobsCanceledAfterEach();

test("the job's lifecycle says who deployed it, rescaled it, took a savepoint and stopped it", async ({ page, request }, testInfo) => {
  const who = users().operator.email;
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 200, keys: 100 } },
      { id: 'count', type: 'count', parallelism: 1, maxParallelism: 8 },
      { id: 'out', type: 'log', parallelism: 1, maxParallelism: 8 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'out', partitioning: 'forward' },
    ],
  };
  const { state } = await deployRunning(page, request, started, graph);
  const timeline = page.getByTestId('lifecycle-events');
  await expect(timeline.locator('[data-action="job.deploy"]')).toContainText(`Deployed by ${who}`);

  // A rescale with the slider's keyboard: the entry names the operator, the vertex and both parallelisms.
  await page.getByTestId('slider-count').focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('scaling-event').first()).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
  await expect(timeline.locator('[data-action="job.rescale"]')).toHaveText(new RegExp(`Rescaled count 1 → 2 by ${who}$`));

  // A savepoint, then the stop: each in its place, newest first, above the deploy.
  await page.getByRole('button', { name: 'Savepoint now' }).click();
  await expect(timeline.locator('[data-action="savepoint.trigger"]')).toContainText(new RegExp(`Savepoint #\\d+ taken by ${who}`));
  await page.getByRole('button', { name: 'Stop with savepoint' }).click();
  await expect(state).toHaveAttribute('data-state', 'STOPPED', { timeout: 60_000 });
  await expect(timeline.locator('[data-action="job.stop"]')).toContainText(`Stopped by ${who}`);
  const order = await timeline.getByTestId('audit-entry').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
  expect(order).toEqual(['job.stop', 'savepoint.trigger', 'job.rescale', 'job.deploy']);
  // The transitions are still there, between them.
  await expect(timeline).toContainText('STOPPING');
  await timeline.scrollIntoViewIfNeeded();
  await keepScreenshot(page, testInfo, 'job-timeline');
});
