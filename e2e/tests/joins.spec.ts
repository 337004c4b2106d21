import {
  dragConnection,
  expect,
  expectRecordsFlowing,
  inputHandle,
  jobsCanceledAfterEach,
  keepScreenshot,
  outputHandle,
  selectEdge,
  sideHandle,
  sinkTable,
  test,
  typeOver,
} from './fixtures';

const started = jobsCanceledAfterEach();

/** A generator event as the join's output holds it on either side. */
interface Event {
  user: string;
  ts: number;
}

/** A pair as the sink stores it with no value field: the interval join's whole output record. */
interface JoinRow {
  key: string;
  left: Event;
  right: Event;
}

test('clicks joined to views from the template: two labelled inputs, one edge each, a third refused, pairs flowing into Postgres', async ({
  page,
}, testInfo) => {
  const table = 'clicks_joined_to_views';
  const sink = await sinkTable<JoinRow>(table);
  try {
    // The palette lists both joins from the catalog; the template opens in the builder, unsaved, named after it.
    await page.goto('/pipelines/new');
    await expect(page.getByTestId('live-status')).toHaveText('Live');
    await expect(page.getByTestId('palette-windowJoin')).toContainText('Window join');
    await expect(page.getByTestId('palette-intervalJoin')).toContainText('Interval join');
    await page.getByTestId('template-menu').getByText('New from template').click();
    await page.getByTestId('template-clicks-joined-to-views').click();
    await expect(page).toHaveURL(/\/pipelines\/new\?template=clicks-joined-to-views$/);
    const name = page.getByLabel('Pipeline name');
    await expect(name).toHaveValue('Clicks joined to views');
    const canvas = page.getByTestId('builder-canvas');
    await expect(canvas.locator('.react-flow__node')).toHaveCount(4);
    await name.fill(`joins-${Date.now().toString(36)}`);
    const deploy = page.getByRole('button', { name: 'Deploy' });
    await expect(deploy).toBeEnabled();

    // The join has two input handles, left above right, each labelled; each edge ends at the handle of its side.
    const join = page.getByTestId('node-joined');
    await expect(inputHandle(page, 'joined')).toHaveCount(2);
    await expect(sideHandle(page, 'joined', 'left')).toHaveCount(1);
    await expect(sideHandle(page, 'joined', 'right')).toHaveCount(1);
    await expect(page.getByTestId('input-joined-left')).toHaveText('left');
    await expect(page.getByTestId('input-joined-right')).toHaveText('right');
    const top = async (side: 'left' | 'right') => (await sideHandle(page, 'joined', side).boundingBox())!.y;
    expect(await top('left')).toBeLessThan(await top('right'));
    await expect(page.getByTestId('edge-label-clicks-joined')).toHaveText('left · hash(user)');
    await expect(page.getByTestId('edge-label-views-joined')).toHaveText('right · hash(user)');
    await expect(page.getByTestId('edge-label-joined-results')).toHaveText('forward');
    await selectEdge(page, 'views', 'joined');
    await expect(page.getByTestId('edge-side')).toHaveText('· its right input');
    await expect(page.getByLabel('Key field (keyBy)')).toHaveValue('user');

    // A third input is refused, with core's reason.
    const box = (await canvas.boundingBox())!;
    await page.getByTestId('palette-generator').dragTo(canvas, { targetPosition: { x: 140, y: box.height - 200 } });
    await expect(canvas.locator('.react-flow__node')).toHaveCount(5);
    await dragConnection(page, outputHandle(page, 'generator'), sideHandle(page, 'joined', 'left'));
    await expect(page.getByTestId('connection-refused')).toContainText('Connection refused: joined already has its two inputs (left and right)');
    await expect(canvas.locator('.react-flow__edge')).toHaveCount(3);
    await page.getByTestId('node-generator').click();
    await page.getByRole('button', { name: 'Delete operator' }).click();
    await expect(canvas.locator('.react-flow__node')).toHaveCount(4);

    // Without its right input the join says so on its node, and Deploy waits.
    await selectEdge(page, 'views', 'joined');
    await page.getByRole('button', { name: 'Delete edge' }).click();
    await expect(page.getByTestId('edge-label-views-joined')).toHaveCount(0);
    await expect(join).toHaveAttribute('data-issues', '1');
    await expect(join.locator('.op-issues')).toHaveText(
      '⚠ joined joins two inputs: connect one edge as its left input and one as its right (it has left)',
    );
    await expect(deploy).toBeDisabled();

    // The left handle is taken: a second edge there is refused; the right one takes it back.
    await dragConnection(page, outputHandle(page, 'views'), sideHandle(page, 'joined', 'left'));
    await expect(page.getByTestId('connection-refused')).toContainText("joined's left input is already connected (from clicks)");
    await dragConnection(page, outputHandle(page, 'views'), sideHandle(page, 'joined', 'right'));
    await expect(page.getByTestId('edge-label-views-joined')).toHaveText('right · hash(user)');
    await expect(join).toHaveAttribute('data-issues', '0');
    await expect(deploy).toBeEnabled();

    // The interval's bounds are signed durations from the schema: a negative lower bound is fine, one above the upper is not.
    await join.click();
    const lower = page.getByLabel('Lower', { exact: true });
    await expect(lower).toHaveValue('-1s');
    await expect(page.getByTestId('duration-readout-lower')).toHaveText('-1s = -1,000 ms');
    await expect(page.getByLabel('Upper', { exact: true })).toHaveValue('1s');
    await typeOver(lower, '-5s');
    await expect(page.getByTestId('duration-readout-lower')).toHaveText('-5s = -5,000 ms');
    await expect(page.getByTestId('setting-lower').locator('.field-error')).toHaveCount(0);
    await typeOver(lower, '2s');
    await expect(page.getByTestId('setting-lower').locator('.field-error')).toHaveText('the lower bound may not be above the upper one');
    await expect(deploy).toBeDisabled();
    await typeOver(lower, '-1s');
    await expect(page.getByTestId('setting-lower').locator('.field-error')).toHaveCount(0);
    await keepScreenshot(page, testInfo, 'joins-builder');

    // Deployed: the job graph shows the join's two inputs labelled and each edge's side, and records flow into the join.
    await typeOver(page.getByLabel('Checkpoint interval (s)'), '1');
    await expect(deploy).toBeEnabled();
    await deploy.click();
    await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    started.push(page.url().split('/').at(-1)!);
    await page.setViewportSize({ width: 1440, height: 1900 });
    await expect(page.locator('.page-head h1 [data-testid="state-badge"]')).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
    const graph = page.getByTestId('job-graph');
    await expect(graph.getByTestId('input-joined-left')).toHaveText('left');
    await expect(graph.getByTestId('input-joined-right')).toHaveText('right');
    await expect(graph.getByTestId('edge-label-clicks-joined')).toContainText('left · hash(user)');
    await expect(graph.getByTestId('edge-label-views-joined')).toContainText('right · hash(user)');
    await expectRecordsFlowing(page, ['clicks', 'views'], ['joined', 'results']);
    const watermark = page.getByTestId('watermark-joined');
    await expect(watermark).toHaveAttribute('data-status', 'active', { timeout: 30_000 });
    await expect(watermark).toHaveText(/^wm \d\d:\d\d:\d\d\.\d{3}/);
    await expect(graph).not.toContainText('NaN');

    // Each row is a click and a view of one user, at most a second apart in event time.
    await expect.poll(async () => (await sink.rows()).length, { timeout: 60_000, message: `rows in ${table}` }).toBeGreaterThan(0);
    for (const { value } of (await sink.rows()).slice(0, 50)) {
      expect(value.left.user, JSON.stringify(value)).toBe(value.key);
      expect(value.right.user).toBe(value.key);
      expect(Math.abs(value.right.ts - value.left.ts)).toBeLessThanOrEqual(1000);
    }
    await keepScreenshot(page, testInfo, 'joins');
  } finally {
    await sink.close();
  }
});
