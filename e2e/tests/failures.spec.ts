import { hostname } from 'node:os';
import type { APIRequestContext, Page } from '@playwright/test';
import { expect, expectRescaleCheckpointListed, jobsCanceledAfterEach, keepScreenshot, test } from './fixtures';

type Graph = { vertices: object[]; edges: object[] };
type Worker = { id: string; host: string; pid: number; subtasks: { jobId: string }[] };

const started = jobsCanceledAfterEach();

/** Saves the graph as a pipeline and deploys it; the job's id. */
async function deploy(request: APIRequestContext, name: string, graph: Graph, checkpointIntervalMs = 1000): Promise<string> {
  const pipeline = await request.post('/api/pipelines', { data: { name: `${name}-${Date.now().toString(36)}`, graph } });
  expect(pipeline.status()).toBe(201);
  const job = await request.post('/api/jobs', { data: { pipelineId: (await pipeline.json()).id, checkpointIntervalMs } });
  expect(job.status()).toBe(201);
  const { id } = await job.json();
  started.push(id);
  return id;
}

async function openRunningJob(page: Page, jobId: string) {
  await page.goto(`/jobs/${jobId}`);
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  return state;
}

test('sinks show their delivery guarantee; a savepoint is taken, listed and deleted; a new job starts from a retained checkpoint', async ({
  page,
  request,
}, testInfo) => {
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 200, keys: 100 } },
      { id: 'count', type: 'count', parallelism: 1 },
      { id: 'counts', type: 'postgres', parallelism: 1, settings: { table: `e2e_counts_${Date.now().toString(36)}`, valueField: 'count' } },
      { id: 'audit', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'counts', partitioning: 'forward' },
      { from: 'events', to: 'audit', partitioning: 'forward' },
    ],
  };
  const jobId = await deploy(request, 'savepoints', graph, 1500);
  const state = await openRunningJob(page, jobId);

  // Each sink says what it guarantees: postgres commits with checkpoints by default, the log sink writes at once.
  await expect(page.getByTestId('guarantee-counts')).toHaveText('exactly-once');
  await expect(page.getByTestId('guarantee-audit')).toHaveText('at-least-once');
  await expect(page.getByTestId('guarantee-count')).toHaveCount(0);

  // A savepoint on demand: the list opens and shows it pending, then completed.
  await page.getByRole('button', { name: 'Savepoint now' }).click();
  await expect(page.getByRole('tab', { name: 'Savepoints' })).toHaveAttribute('aria-selected', 'true');
  const savepoints = page.locator('[data-testid="retained-row"][data-kind="SAVEPOINT"]');
  await expect(savepoints).toHaveCount(1, { timeout: 30_000 });
  await expect(savepoints).toHaveAttribute('data-status', 'COMPLETED', { timeout: 30_000 });
  const number = Number(await savepoints.getAttribute('data-number'));
  await expect(savepoints.getByTestId('state-badge')).toHaveText('COMPLETED');

  // The periodic checkpoints retention keeps are listed too, newest first, and cannot be deleted by hand. (Deleted
  // while still the newest, a savepoint's number is taken again by the next checkpoint, which then hangs: reported.)
  const periodic = page.locator('[data-testid="retained-row"][data-kind="PERIODIC"][data-status="COMPLETED"]');
  await expect.poll(async () => Number(await periodic.first().getAttribute('data-number')), { timeout: 30_000 }).toBeGreaterThan(number);
  await expect(periodic.first().getByRole('button', { name: 'Delete' })).toHaveCount(0);
  await keepScreenshot(page, testInfo, 'savepoints');

  // Deleting the savepoint asks first; then it is gone from the page and from the control plane.
  await savepoints.getByRole('button', { name: 'Delete' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText(`Delete savepoint #${number}?`);
  await dialog.getByRole('button', { name: 'Delete savepoint' }).click();
  await expect(dialog).toBeHidden();
  await expect(savepoints).toHaveCount(0);
  const kept = (await (await request.get(`/api/jobs/${jobId}/checkpoints`)).json()) as { kind: string }[];
  expect(kept.filter((c) => c.kind === 'SAVEPOINT')).toEqual([]);

  // A new job starts from the newest retained checkpoint, while this one runs on.
  const firstUrl = page.url();
  await periodic.first().getByRole('button', { name: 'Start new job' }).click();
  // This job still runs: a second one would write to the same sinks, so the page asks first.
  const confirm = page.getByRole('dialog', { name: /Start a second job from/ });
  await expect(confirm).toContainText('Both jobs will run and write to the same sinks');
  await confirm.getByRole('button', { name: 'Start new job' }).click();
  await expect(page).not.toHaveURL(firstUrl);
  await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/);
  started.push(page.url().split('/').pop()!);
  await expect(page.getByTestId('restored-from')).toHaveText(
    new RegExp(`restored from checkpoint #\\d+ of job ${firstUrl.split('/').pop()!.slice(0, 8)}$`),
  );
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  // Its parallelism can change from here on, with the sliders.
  const slider = page.getByTestId('slider-count');
  await expect(slider).toBeEnabled();
  await slider.focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('scaling-event').first()).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
  // Its rescale names the checkpoint by this job's own number, which the table lists (checkpoint ids run on across jobs).
  await expectRescaleCheckpointListed(page);
});

test('records an operator refuses: a dead-letter count on its node, and samples with the reason in the tab', async ({ page, request }, testInfo) => {
  // `item` is text ("i42"): scaling it dead-letters every record, with the map's reason.
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 50, keys: 100 } },
      { id: 'map', type: 'map', parallelism: 1, settings: { steps: [{ op: 'scale', field: 'item', factor: 2 }] } },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'events', to: 'map', partitioning: 'forward' },
      { from: 'map', to: 'out', partitioning: 'forward' },
    ],
  };
  const jobId = await deploy(request, 'dead-letters', graph);
  await openRunningJob(page, jobId);

  const badge = page.getByTestId('dead-letters-map');
  await expect(badge).toHaveText(/^⚠ [\d,]+ dead letters?$/, { timeout: 30_000 });
  await expect(page.getByTestId('dead-letters-events')).toHaveCount(0);
  await expect(page.getByTestId('tab-dead-letters').locator('.tab-count')).toHaveText(/^[1-9][\d,]*$/);

  await page.getByRole('tab', { name: /Dead letters/ }).click();
  const operator = page.getByTestId('dead-letters').getByTestId('dead-letter-operator-map');
  await expect(operator.getByTestId('dead-letter-total-map')).toHaveText(/[1-9][\d,]* in all/);
  const sample = operator.getByTestId('dead-letter').first();
  await expect(sample).toContainText("map: field 'item' is not a number", { timeout: 30_000 });
  await expect(sample.locator('td.record')).toContainText(/"item":"i\d+"/);
  await expect(page.getByTestId('dead-letters').locator('[data-testid^="dead-letter-operator-"]')).toHaveCount(1);
  await keepScreenshot(page, testInfo, 'dead-letters');

  // The operator's own panel, opened from its node, shows the same samples.
  await page.getByTestId('node-map').click();
  await expect(page.getByTestId('subtasks').getByTestId('dead-letter').first()).toContainText("field 'item' is not a number");
});

test('a worker killed under a running job: the recovery shows on the timeline, live, with the checkpoint it used', async ({
  page,
  request,
}, testInfo) => {
  const graph = {
    vertices: [
      { id: 'events', type: 'generator', parallelism: 1, settings: { rate: 200, keys: 100 } },
      { id: 'count', type: 'count', parallelism: 1 },
      { id: 'out', type: 'log', parallelism: 1 },
    ],
    edges: [
      { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
      { from: 'count', to: 'out', partitioning: 'forward' },
    ],
  };
  const jobId = await deploy(request, 'recovery', graph);
  const state = await openRunningJob(page, jobId);
  await expect(page.getByTestId('completed-count')).not.toHaveText('0', { timeout: 30_000 });

  await page.getByRole('tab', { name: /Recoveries/ }).click();
  const recoveries = page.getByTestId('recoveries');
  await expect(recoveries).toContainText('No recovery');

  // Kill (SIGKILL, no goodbye) a worker of this stack that runs a subtask of the job; the stack starts it again.
  const workers = (await (await request.get('/api/workers')).json()) as Worker[];
  const victim = workers.find((w) => w.subtasks.some((s) => s.jobId === jobId));
  expect(victim, 'a worker runs the job').toBeDefined();
  expect(victim!.host).toBe(hostname());
  process.kill(victim!.pid, 'SIGKILL');

  // The recovery arrives over Socket.IO: restoring, then running again from the last completed checkpoint.
  const recovery = recoveries.getByTestId('recovery');
  await expect(recovery).toHaveCount(1, { timeout: 30_000 });
  await expect(recovery).toHaveAttribute('data-status', 'RUNNING', { timeout: 60_000 });
  await expect(recovery).toHaveAttribute('data-attempt', '2');
  // Its subtasks stop reporting: the stall detector notices first in this stack (its timeout is shorter than the
  // heartbeats'), else the heartbeat check does.
  await expect(recovery.getByTestId('recovery-cause')).toContainText(/has not reported|worker lost/);
  await expect(recovery.getByTestId('recovery-checkpoint')).toHaveText(/^checkpoint #\d+$/);
  await expect(recovery.locator('.scaling-phases li.done')).toHaveCount(3);
  await expect(recovery.locator('.recovery-figures')).toContainText(/detection\s*\d/);
  await expect(page.getByTestId('tab-recoveries').locator('.tab-count')).toHaveText('1');
  await expect(state).toHaveAttribute('data-state', 'RUNNING');
  await keepScreenshot(page, testInfo, 'recoveries');

  // The control plane keeps it: a fresh page lists it from GET /jobs/:id/recoveries.
  await page.reload();
  await page.getByRole('tab', { name: /Recoveries/ }).click();
  await expect(page.getByTestId('recovery')).toHaveAttribute('data-status', 'RUNNING');

  // The Workers page shows what each subtask of the new attempt was placed by: its operator's CPU before the failure.
  await page.goto('/workers');
  const placed = page.locator(`[data-job="${jobId}"] [data-testid=worker-subtask]`);
  await expect(placed).toHaveCount(2, { timeout: 15_000 });
  for (const chip of await placed.all()) {
    await expect(chip).toContainText(/\d\.\d\d cpu$/);
    await expect(chip).toHaveAttribute('title', /attempt 2, .*placed as using \d\.\d\d of a core/);
  }
  await keepScreenshot(page, testInfo, 'workers-after-recovery');

  // The pool is whole again for the tests after this one: the killed worker is back, as a new process.
  await expect
    .poll(
      async () => {
        const now = (await (await request.get('/api/workers')).json()) as Worker[];
        return now.length === 2 && now.some((w) => w.id === victim!.id && w.pid !== victim!.pid);
      },
      { timeout: 60_000 },
    )
    .toBe(true);
});
