import type { Page } from '@playwright/test';
import { deployRunning, dragSlider, expect, expectRecordsFlowing, jobsCanceledAfterEach, keepScreenshot, test } from './fixtures';

const started = jobsCanceledAfterEach();

/** events → count (keyed) → out, count and out chained by a forward edge: they rescale together. */
function countGraph(count: { parallelism: number; maxParallelism?: number }) {
  return {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 400, keys: 500, skew: 'zipf' } },
      { id: 'count', type: 'count', ...count },
      { id: 'out', type: 'log', ...count },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'out', partitioning: 'forward' },
    ],
  };
}

/** Waits until count's chain runs at `p`, as asked: all `rescales` so far done, no target left on the node. */
async function expectSettledAt(page: Page, p: number, rescales: number) {
  const events = page.getByTestId('scaling-event');
  await expect(events).toHaveCount(rescales);
  await expect(events.and(page.locator(':not([data-status="COMPLETED"])'))).toHaveCount(0, { timeout: 60_000 });
  await expect(page.getByTestId('node-count').locator('.op-par')).toHaveText(`×${p}`);
  await expect(page.getByTestId('node-out').locator('.op-par')).toHaveText(`×${p}`);
  await expect(page.getByTestId('node-target-count')).toHaveCount(0);
  await expect(page.getByTestId('parallelism-input-count')).toHaveValue(String(p));
}

test('rescale count from 1 to 2 with its slider: the timeline shows the phases live, the key groups split in two', async ({
  page,
  request,
}, testInfo) => {
  const { jobId, state } = await deployRunning(page, request, started, countGraph({ parallelism: 1 }));
  await expect(page.getByTestId('scaling-timeline')).toContainText('No rescale yet');
  const countGroups = page.getByTestId('key-groups-count');
  await expect(countGroups.getByTestId('key-group-range')).toHaveText(['0–127']);

  // The slider: 1 … maxParallelism, its value in the box beside it. Mouse onto it, then the arrow key, as a person does.
  const slider = page.getByTestId('slider-count');
  const input = page.getByTestId('parallelism-input-count');
  await expect(slider).toHaveAttribute('max', '128');
  await expect(input).toHaveValue('1');
  await slider.hover();
  await slider.focus();
  await page.keyboard.press('ArrowRight');
  await expect(input).toHaveValue('2');

  // One scaling event, live over Socket.IO: every phase gets a time, in the order they happened, then COMPLETED.
  const event = page.getByTestId('scaling-event').first();
  await expect(event).toHaveAttribute('data-vertex', 'count');
  await expect(event).toContainText('×1 → ×2');
  await expect(event).toContainText('with its chain: out');
  await expect(event).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
  await expect(event.locator('.scaling-phases li.done')).toHaveCount(6);
  const times = await event.locator('.scaling-phases li.done .phase-time').allTextContents();
  const ms = times.slice(1).map((t) => (t.endsWith(' ms') ? Number(t.slice(1, -3)) : Number(t.slice(1, -2)) * 1000));
  expect(ms, `phase times ${times.join(', ')}`).toEqual([...ms].sort((a, b) => a - b));
  // The card's legend names the phases each rescale lists.
  const legend = await page.getByTestId('scaling-legend').textContent();
  for (const label of await event.locator('.scaling-phases .phase-label').allTextContents()) expect(legend).toContain(label);
  await expect(event).toContainText(/pause \d/);
  await expectSettledAt(page, 2, 1);
  await expect(state).toHaveAttribute('data-state', 'RUNNING');

  // The key groups are split between two subtasks, and both see records.
  await expect(countGroups.getByTestId('key-group-range')).toHaveText(['0–63', '64–127'], { timeout: 15_000 });
  await expect(countGroups).toHaveAttribute('data-parallelism', '2');
  // The rest of the page never stopped: rates still flow into count.
  await expectRecordsFlowing(page, ['events'], ['count', 'out']);
  await slider.blur();
  await keepScreenshot(page, testInfo, 'rescale');

  // The workers page shows each subtask's parallelism now, after the rescale.
  const workers = await page.context().newPage();
  await workers.goto('/workers');
  const subtask = (key: string) => workers.locator(`[data-job="${jobId}"] [data-testid="worker-subtask"][data-subtask="${key}"]`);
  await expect(subtask('count#1')).toHaveAttribute('data-parallelism', '2');
  await expect(subtask('count#0')).toContainText('×2');
  await workers.close();

  // A refusal (here one the control plane would send for a chain's limit) shows inline on the node; the slider goes back.
  const refusal = 'parallelism of count must be between 1 and 2 (its maxParallelism within its chain)';
  await page.route(`**/api/jobs/${jobId}`, (route) =>
    route.request().method() === 'PATCH'
      ? route.fulfill({ status: 422, contentType: 'application/json', body: JSON.stringify({ error: 'Unprocessable Entity', message: refusal }) })
      : route.continue(),
  );
  await slider.focus();
  await page.keyboard.press('ArrowRight');
  const refused = page.getByTestId('scale-error-count');
  await expect(refused).toContainText(refusal);
  await expect(input).toHaveValue('2');
  await expect(page.getByTestId('scaling-event')).toHaveCount(1);
  // It can be dismissed.
  await refused.getByRole('button', { name: 'Dismiss' }).click();
  await expect(refused).toHaveCount(0);
  await page.unroute(`**/api/jobs/${jobId}`);
});

test('the slider dragged down then up keeps the job running with records flowing, and never jumps back', async ({ page, request }) => {
  const { state } = await deployRunning(page, request, started, countGraph({ parallelism: 2, maxParallelism: 4 }));
  const slider = page.getByTestId('slider-count');
  await expect(slider).toHaveAttribute('max', '4');
  await expectRecordsFlowing(page, ['events'], ['count', 'out']);
  // Every height the count card's figures (rates, backpressure, busy) take from here on, frame by frame, unzoomed: they
  // change every second and jump through each rescale, and when their rows grew or shrank with them, the slider below
  // moved from under the pointer (a drag that grabbed nothing).
  await page.getByTestId('live-count').evaluate((el) => {
    const seen = new Set<number>();
    (window as { __figureHeights?: Set<number> }).__figureHeights = seen;
    const sample = () => {
      seen.add((el as HTMLElement).offsetHeight);
      requestAnimationFrame(sample);
    };
    sample();
  });

  // 2 → 1, then 1 → 2: each release is one rescale; the slider stays where it was released meanwhile.
  let shown = await dragSlider(page, slider, 1);
  await expectSettledAt(page, 1, 1);
  expect(await shown()).toEqual(['1']);
  shown = await dragSlider(page, slider, 2);
  await expectSettledAt(page, 2, 2);
  expect(await shown()).toEqual(['2']);
  await expect(state).toHaveAttribute('data-state', 'RUNNING');
  await expectRecordsFlowing(page, ['events'], ['count', 'out']);

  // 2 → 3, then 3 → 2 → 3 released one right after the other: the second queues behind the first, and the node
  // shows the target (×3) throughout instead of the value it runs at.
  shown = await dragSlider(page, slider, 3);
  await expectSettledAt(page, 3, 3);
  expect(await shown()).toEqual(['3']);
  await dragSlider(page, slider, 2);
  shown = await dragSlider(page, slider, 3);
  await expectSettledAt(page, 3, 5);
  expect(await shown()).toEqual(['3']);
  await expect(state).toHaveAttribute('data-state', 'RUNNING');
  await expectRecordsFlowing(page, ['events'], ['count', 'out']);
  await expect(page.getByTestId('key-groups-count').getByTestId('key-group-range')).toHaveCount(3, { timeout: 15_000 });
  expect(await page.evaluate(() => [...(window as { __figureHeights?: Set<number> }).__figureHeights!])).toHaveLength(1);
});

test('an exact parallelism is typed; one the pool cannot give is said so before it is sent, and its rollback can be dismissed', async ({
  page,
  request,
}) => {
  await deployRunning(page, request, started, countGraph({ parallelism: 1, maxParallelism: 16 }));
  const input = page.getByTestId('parallelism-input-count');
  const advice = page.getByTestId('scale-advice-count');
  const events = page.getByTestId('scaling-event');

  // Not a parallelism: said in plain words, and Enter sends nothing.
  for (const wrong of ['0', '17', '2.5', 'two', '']) {
    await input.fill(wrong);
    await expect(advice).toHaveText('parallelism must be a whole number from 1 to 16 (its maxParallelism)');
    await expect(input).toHaveAttribute('aria-invalid', 'true');
    await input.press('Enter');
  }
  await input.press('Escape');
  await expect(input).toHaveValue('1');
  await expect(advice).toHaveCount(0);
  await expect(page.getByTestId('scaling-timeline')).toContainText('No rescale yet');

  // A whole number: how many slots it needs and how many are free, then Enter rescales to it.
  await input.fill('3');
  await expect(advice).toHaveText(/^×3 needs 2 more slots, \d+ free · Enter to rescale$/);
  await input.press('Enter');
  await expectSettledAt(page, 3, 1);

  // Two workers of four slots, four used by this job: a value the pool cannot give is said so before it is sent.
  await input.fill('16');
  await expect(advice).toHaveAttribute('data-kind', 'short');
  await expect(advice).toHaveText(
    /^×16 needs 13 more slots, only \d free: it would wait for slots and roll back if none free up · Enter to queue it anyway$/,
  );
  await input.press('Escape');
  await expect(input).toHaveValue('3');
  const slider = page.getByTestId('slider-count');
  const node = page.getByTestId('node-count');
  const settledHeight = (await node.boundingBox())!.height;
  await dragSlider(page, slider, 16, { release: false });
  await expect(advice).toHaveText(
    /^×16 needs 13 more slots, only \d free: it would wait for slots and roll back if none free up · release to queue it anyway$/,
  );
  await expect(events).toHaveCount(1);

  // Released anyway, it is queued: the node shows the target until the rescale gives up waiting for slots and rolls back.
  await page.mouse.up();
  await expect(page.getByTestId('node-target-count')).toHaveText('→ ×16');
  await expect(page.getByTestId('target-count')).toContainText('×3 → ×16 target');
  await expect(input).toHaveValue('16');
  await expect(events.first()).toHaveAttribute('data-status', 'WAITING_FOR_SLOTS');
  const failed = page.getByTestId('scale-failed-count');
  await expect(failed).toContainText('×3 → ×16 rolled back', { timeout: 60_000 });
  await expect(events.first()).toHaveAttribute('data-status', 'ROLLED_BACK');
  // The job goes on at ×3: the slider says so, and the note keeps the node about its size (two lines at most).
  await expect(input).toHaveValue('3');
  await expect(page.getByTestId('node-target-count')).toHaveCount(0);
  expect((await node.boundingBox())!.height).toBeLessThanOrEqual(settledHeight + 40);
  await failed.getByRole('button', { name: 'Dismiss' }).click();
  await expect(failed).toHaveCount(0);
  expect((await node.boundingBox())!.height).toBeCloseTo(settledHeight, 0);
});
