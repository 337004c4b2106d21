import type { Locator, Page } from '@playwright/test';
import { expect, jobsCanceledAfterEach, keepScreenshot, sinkTable, test, typeOver } from './fixtures';

const started = jobsCanceledAfterEach();

/** A window's row as the sink stores it with no value field: the window operator's whole output record. */
interface WindowRow {
  key: string;
  windowStart: number;
  windowEnd: number;
  count: number;
}

const SIZE_MS = 10_000;

/** The watermark (ms) an element shows in its `data-watermark`, or NaN while it shows none. */
const watermarkOf = async (element: Locator) => Number((await element.getAttribute('data-watermark')) ?? NaN);

/** Waits until the element's watermark is past `than` (ms): event time goes on. */
async function expectAdvancing(element: Locator, than: number) {
  await expect.poll(() => watermarkOf(element), { timeout: 30_000 }).toBeGreaterThan(than);
}

/** The window node's subtasks on the Watermarks tab. */
const windowRows = (page: Page) => page.locator('[data-testid="watermark-row"][data-vertex="perMinute"]');

test('clicks per user in 10 s windows from the template: rows per window, watermarks advancing, a live rescale of the window', async ({
  page,
}, testInfo) => {
  // The template's table: each run has a database of its own.
  const table = 'clicks_per_user_minute';
  const sink = await sinkTable<WindowRow>(table);
  try {
    // From the pipelines list: the template opens in the builder, unsaved, named after it.
    await page.goto('/pipelines');
    await page.getByTestId('template-menu').getByText('New from template').click();
    await page.getByTestId('template-clicks-per-user-minute').click();
    await expect(page).toHaveURL(/\/pipelines\/new\?template=clicks-per-user-minute$/);
    await expect(page.getByTestId('live-status')).toHaveText('Live');
    const name = page.getByLabel('Pipeline name');
    await expect(name).toHaveValue('Clicks per user per minute');
    await expect(page.getByTestId('save-state')).toHaveText('Unsaved changes');
    await expect(page.getByTestId('builder-canvas').locator('.react-flow__node')).toHaveCount(3);
    await expect(page.getByTestId('edge-label-clicks-perMinute')).toHaveText('hash(user)');
    // Pipeline names are unique: this run's own.
    await name.fill(`clicks-${Date.now().toString(36)}`);
    const deploy = page.getByRole('button', { name: 'Deploy' });
    await expect(deploy).toBeEnabled();

    // The window's size is a duration: a wrong one blocks Deploy with why, a right one says what it reads as.
    await page.getByTestId('node-perMinute').click();
    const size = page.getByLabel('Size', { exact: true });
    await expect(size).toHaveValue('1m');
    await expect(page.getByTestId('duration-readout-size')).toHaveText('1m = 60,000 ms');
    await typeOver(size, '10x');
    await expect(size).toHaveValue('10x');
    await expect(page.getByTestId('setting-size').locator('.field-error')).toHaveText('a duration such as 500ms, 10s, 1m or 1.5h');
    await expect(page.getByTestId('duration-readout-size')).toHaveCount(0);
    await expect(deploy).toBeDisabled();
    await typeOver(size, '10s');
    await expect(page.getByTestId('setting-size').locator('.field-error')).toHaveCount(0);
    await expect(page.getByTestId('duration-readout-size')).toHaveText('10s = 10,000 ms');
    await expect(deploy).toBeEnabled();

    // The clicks come faster (4 s of event time a second: a window every 2.5 s); a negative out-of-orderness is refused.
    await page.getByTestId('node-clicks').click();
    const outOfOrderness = page.getByLabel('Out of orderness');
    await expect(outOfOrderness).toHaveValue('2s');
    await typeOver(outOfOrderness, '-5s');
    await expect(page.getByTestId('setting-outOfOrderness').locator('.field-error')).toHaveText('may not be negative');
    await expect(deploy).toBeDisabled();
    await typeOver(outOfOrderness, '2s');
    await expect(page.getByTestId('duration-readout-outOfOrderness')).toHaveText('2s = 2,000 ms');
    await typeOver(page.getByLabel('Rate', { exact: true }), '4000');

    // Whole window records as the sink's values (no value field), so each row says its window.
    await page.getByTestId('node-results').click();
    await expect(page.getByTestId('setting-table').getByRole('textbox')).toHaveValue(table);
    await typeOver(page.getByLabel('Value field', { exact: true }), '');
    await expect(page.getByLabel('Key field', { exact: true })).toHaveValue('key, windowStart');

    // Deployed with a checkpoint a second: the exactly-once sink commits its windows with each.
    await typeOver(page.getByLabel('Checkpoint interval (s)'), '1');
    await expect(deploy).toBeEnabled();
    await deploy.click();
    await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    started.push(page.url().split('/').at(-1)!);
    await page.setViewportSize({ width: 1440, height: 1900 });
    const state = page.locator('.page-head h1 [data-testid="state-badge"]');
    await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });

    // Window rows reach the sink: one per user and 10-second window, with its count.
    await expect.poll(async () => (await sink.rows()).length, { timeout: 60_000, message: `rows in ${table}` }).toBeGreaterThan(0);
    for (const { value } of (await sink.rows()).slice(0, 20)) {
      expect(value.windowEnd - value.windowStart, JSON.stringify(value)).toBe(SIZE_MS);
      expect(value.windowStart % SIZE_MS).toBe(0);
      expect(value.key).toMatch(/^u\d+$/);
      expect(value.count).toBeGreaterThan(0);
    }

    // The window node shows its watermark (a time of day), and the watermark advances; nothing reads NaN. At 4,000
    // events a second of 1 ms each, the generator's event time runs four times as fast as the wall clock: a clock of
    // its own, so no lag behind the wall clock is shown, and the tooltip says why.
    const nodeWatermark = page.getByTestId('watermark-perMinute');
    await expect(nodeWatermark).toHaveAttribute('data-status', 'active', { timeout: 30_000 });
    await expect(nodeWatermark).toHaveText(/^wm \d\d:\d\d:\d\d\.\d{3}$/);
    await expect(nodeWatermark).toHaveAttribute('title', /a clock of their own/);
    await expectAdvancing(nodeWatermark, await watermarkOf(nodeWatermark));
    await expect(page.getByTestId('late-records-perMinute')).toHaveText(/^[\d,]+ late$/);
    await expect(page.getByTestId('job-graph')).not.toContainText('NaN');

    // The Watermarks tab: a row per subtask, the one furthest behind first; the window's watermark advances there too.
    await page.getByTestId('tab-watermarks').click();
    const rows = page.getByTestId('watermark-row');
    await expect(windowRows(page)).toHaveCount(2);
    await expect(page.locator('th[aria-sort="descending"]')).toHaveText(/Lag/);
    const first = windowRows(page).and(page.locator('[data-index="0"]'));
    await expect(first).toHaveAttribute('data-status', 'active');
    await expect(first.getByTestId('watermark-lag')).toHaveText('own clock');
    await expectAdvancing(first, await watermarkOf(first));
    await expect(page.getByTestId('watermarks')).not.toContainText('NaN');
    await page.getByTestId('sort-operator').click();
    await expect(page.locator('th[aria-sort="ascending"]')).toHaveText(/Operator/);
    await expect(rows.first()).toHaveAttribute('data-vertex', 'clicks');
    await page.getByTestId('sort-lag').click();
    await expect(page.locator('th[aria-sort="descending"]')).toHaveText(/Lag/);
    await expect(page.getByTestId('late-record-operator-perMinute')).toBeVisible();

    // The window's slider from 2 to 3 (mouse onto it, then the arrow key: 128 steps are too fine to drag to one, as for
    // a person): its sink is chained to it and goes along; the job never stops.
    const slider = page.getByTestId('slider-perMinute');
    await expect(slider).toHaveValue('2');
    await slider.hover();
    await slider.focus();
    await page.keyboard.press('ArrowRight');
    await expect(page.getByTestId('parallelism-input-perMinute')).toHaveValue('3');
    const rescale = page.getByTestId('scaling-event').first();
    await expect(rescale).toHaveAttribute('data-vertex', 'perMinute');
    await expect(rescale).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
    await expect(page.getByTestId('node-perMinute').locator('.op-par')).toHaveText('×3');
    await expect(page.getByTestId('node-results').locator('.op-par')).toHaveText('×3');
    await expect(state).toHaveAttribute('data-state', 'RUNNING');

    // New windows keep coming after the rescale, and every subtask of the window has a watermark that advances.
    const latest = async () => Math.max(...(await sink.rows()).map((r) => r.value.windowStart));
    const before = await latest();
    await expect.poll(latest, { timeout: 60_000, message: 'windows after the rescale' }).toBeGreaterThanOrEqual(before + 2 * SIZE_MS);
    await expect(windowRows(page)).toHaveCount(3);
    const third = windowRows(page).and(page.locator('[data-index="2"]'));
    await expect(third).toHaveAttribute('data-status', 'active', { timeout: 30_000 });
    await expectAdvancing(third, await watermarkOf(third));
    await expectAdvancing(nodeWatermark, await watermarkOf(nodeWatermark));
    await expect(state).toHaveAttribute('data-state', 'RUNNING');
    await keepScreenshot(page, testInfo, 'windows');
  } finally {
    await sink.close();
  }
});
