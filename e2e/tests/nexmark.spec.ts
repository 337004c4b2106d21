import { expect, expectRecordsFlowing, jobsCanceledAfterEach, keepScreenshot, sinkTable, test, typeOver } from './fixtures';

const started = jobsCanceledAfterEach();

/** q5's row: per sliding window (by its end), the auction with the most bids. */
interface HotRow {
  key: number;
  hottest: { key: number; windowStart: number; windowEnd: number; count: number };
}

test('Nexmark q5 from the template menu: the source typed, a wrong setting refused, hot items flowing into Postgres', async ({ page }, testInfo) => {
  const sink = await sinkTable<HotRow>('nexmark_q5');
  try {
    // The menu lists the Nexmark queries under their own heading.
    await page.goto('/pipelines');
    await page.getByTestId('template-menu').getByText('New from template').click();
    await expect(page.getByTestId('template-menu').getByText('Nexmark benchmark')).toBeVisible();
    for (const q of ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q7', 'q8', 'q11', 'q12'])
      await expect(page.getByTestId(`template-nexmark-${q}`)).toBeVisible();
    await page.getByTestId('template-nexmark-q5').click();
    await expect(page).toHaveURL(/\/pipelines\/new\?template=nexmark-q5$/);
    await expect(page.getByTestId('live-status')).toHaveText('Live');
    const name = page.getByLabel('Pipeline name');
    await expect(name).toHaveValue('Nexmark q5: hot items');
    await expect(page.getByTestId('builder-canvas').locator('.react-flow__node')).toHaveCount(5);
    // Only the auction crosses the shuffle: the bids are narrowed first, in the source's chain.
    await expect(page.getByTestId('edge-label-bids-auctions')).toHaveText('forward');
    await expect(page.getByTestId('edge-label-auctions-perAuction')).toHaveText('hash(auction)');
    await expect(page.getByTestId('edge-label-perAuction-hottest')).toHaveText('hash(windowEnd)');
    await name.fill(`nexmark-q5-${Date.now().toString(36)}`);
    const deploy = page.getByRole('button', { name: 'Deploy' });
    await expect(deploy).toBeEnabled();

    // The second window's aggregate is typed: a wrong one says what it takes, the template's is fine again.
    await page.getByTestId('node-hottest').click();
    const aggregates = page.getByLabel('Aggregates', { exact: true });
    await expect(aggregates).toHaveValue('maxBy(count) as hottest');
    await typeOver(aggregates, 'top(count)');
    await expect(page.getByTestId('setting-aggregates').locator('.field-error')).toContainText("'top(count)' is not an aggregate");
    await expect(deploy).toBeDisabled();
    await typeOver(aggregates, 'maxBy(count) as hottest');
    await expect(page.getByTestId('setting-aggregates').locator('.field-error')).toHaveCount(0);

    // The source's settings come from its schema; a rate below zero is refused.
    await page.getByTestId('node-bids').click();
    const rate = page.getByLabel('Rate', { exact: true });
    await typeOver(rate, '-5');
    await expect(page.getByTestId('setting-rate').locator('.field-error')).toBeVisible();
    await expect(deploy).toBeDisabled();
    await typeOver(rate, '5000');
    await expect(deploy).toBeEnabled();
    await keepScreenshot(page, testInfo, 'nexmark-q5-builder');

    await typeOver(page.getByLabel('Checkpoint interval (s)'), '1');
    await deploy.click();
    await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    started.push(page.url().split('/').at(-1)!);
    await expectRecordsFlowing(page, ['bids'], ['perAuction']);
    // Windows of 10 s every 2 s fire as event time (at the wall clock's pace) passes them: hot items reach Postgres.
    await expect.poll(async () => (await sink.rows()).filter((r) => r.value.hottest.count > 0).length, { timeout: 60_000 }).toBeGreaterThan(0);
    const [row] = await sink.rows();
    expect(row!.value.hottest.windowEnd - row!.value.hottest.windowStart).toBe(10_000);
    await keepScreenshot(page, testInfo, 'nexmark-q5-job');
  } finally {
    await sink.close();
  }
});
