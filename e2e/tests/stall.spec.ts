import { expect, expectRecordsFlowing, jobsCanceledAfterEach, keepScreenshot, test } from './fixtures';

type Worker = { pid: number; subtasks: { jobId: string; vertexId: string; index: number }[] };

const started = jobsCanceledAfterEach();

test('a frozen worker: the job page and the job list say the job is stalled and who holds it up, then it fails over and recovers', async ({
  page,
  request,
}, testInfo) => {
  // Five tasks (events, and count with out chained, four times) on two workers of four slots: both run some, so
  // the control plane keeps hearing from the job while one worker is frozen.
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 300, keys: 200 } },
      { id: 'count', type: 'count', parallelism: 4 },
      { id: 'out', type: 'log', parallelism: 4 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'out', partitioning: 'forward' },
    ],
  };
  const pipeline = await request.post('/api/pipelines', { data: { name: `stall-${Date.now().toString(36)}`, graph } });
  const deployed = await request.post('/api/jobs', { data: { pipelineId: (await pipeline.json()).id, checkpointIntervalMs: 1000 } });
  const jobId: string = (await deployed.json()).id;
  started.push(jobId);

  await page.goto(`/jobs/${jobId}`);
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  await expect(page.getByTestId('completed-count')).not.toHaveText('0', { timeout: 30_000 });
  await expect(page.getByTestId('stall-banner')).toHaveCount(0);
  const list = await page.context().newPage();
  await list.goto('/');
  const row = list.locator(`[data-testid="job-row"][data-job="${jobId}"]`);
  await expect(row.getByTestId('state-badge')).toHaveAttribute('data-state', 'RUNNING');
  await expect(row.getByTestId('stalled-marker')).toHaveCount(0);

  // Freeze (SIGSTOP) a worker that runs count: it neither works nor reports, and the stall detector names its
  // subtasks before anything else notices (this stack gives heartbeats longer than the stall timeout).
  const placed = async () => {
    const workers = (await (await request.get('/api/workers')).json()) as Worker[];
    return workers.map((w) => ({ pid: w.pid, subtasks: w.subtasks.filter((s) => s.jobId === jobId).map((s) => `${s.vertexId}#${s.index}`) }));
  };
  await expect.poll(async () => (await placed()).map((w) => w.subtasks.length).filter((n) => n > 0).length, { timeout: 15_000 }).toBe(2);
  await expect.poll(async () => (await placed()).reduce((n, w) => n + w.subtasks.length, 0), { timeout: 15_000 }).toBe(5);
  const victim = (await placed()).find((w) => w.subtasks.some((s) => s.startsWith('count#')))!;
  process.kill(victim.pid, 'SIGSTOP');
  let frozen = true;
  try {
    const banner = page.getByTestId('stall-banner');
    await expect(banner).toBeVisible({ timeout: 15_000 });
    await expect(banner.getByTestId('stalled-subtask')).toHaveCount(victim.subtasks.length);
    for (const s of victim.subtasks)
      await expect(banner.locator(`[data-subtask="${s}"]`)).toContainText(
        `${s}${s.startsWith('count#') ? ` (with out#${s.slice(6)})` : ''}, which has not reported`,
      );
    await expect(banner.getByTestId('stall-failover')).toHaveText(/^(fails over in \d+ s|failing over now)$/);
    // The state still says RUNNING, marked stalled; the culprits' operators are marked on the graph.
    await expect(state).toHaveAttribute('data-state', 'RUNNING');
    await expect(state.getByTestId('stalled-marker')).toBeVisible();
    await expect(page.getByTestId('stalled-count')).toBeVisible();
    await expect(page.getByTestId('stalled-out')).toBeVisible();
    await expect(row.getByTestId('stalled-marker')).toBeVisible();
    await expect(row.getByTestId('job-stall')).toContainText('count#');
    await keepScreenshot(page, testInfo, 'stall');

    // The stall timeout fails the job over, and the banner goes away. The other worker alone has too few slots for
    // the new attempt: the frozen one is woken to run it.
    await expect(state).toHaveAttribute('data-state', 'RECOVERING', { timeout: 30_000 });
    await expect(banner).toHaveCount(0);
    await expect(page.getByTestId('lifecycle-events')).toContainText(/stalled for \d+ s: .*has not reported/);
    process.kill(victim.pid, 'SIGCONT');
    frozen = false;
    await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
    await expect(state.getByTestId('stalled-marker')).toHaveCount(0);
    await expect(row.getByTestId('stalled-marker')).toHaveCount(0);
    await expect(row.getByTestId('state-badge')).toHaveAttribute('data-state', 'RUNNING');
    await expectRecordsFlowing(page, ['events'], ['count', 'out']);
  } finally {
    if (frozen) process.kill(victim.pid, 'SIGCONT');
  }
  await list.close();
});
