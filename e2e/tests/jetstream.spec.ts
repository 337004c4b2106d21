import { createRequire } from 'node:module';
import type { Page } from '@playwright/test';
import { dragConnection, expect, inputHandle, jobsCanceledAfterEach, keepScreenshot, outputHandle, selectEdge, sinkTable, test } from './fixtures';

test.use({ signedInAs: 'admin' });

const started = jobsCanceledAfterEach();

const NATS_URL = 'nats://127.0.0.1:4222';
const MESSAGES = 2000;
const USERS = 20;

/** The bits of the NATS client this test uses. */
interface NatsConnection {
  close(): Promise<void>;
}
interface NatsClient {
  connect(options: { servers: string }): Promise<NatsConnection>;
  jetstreamManager(nc: NatsConnection): Promise<{
    streams: { add(config: { name: string; subjects: string[] }): Promise<unknown>; delete(name: string): Promise<boolean> };
  }>;
  jetstream(nc: NatsConnection): { publish(subject: string, payload: string): Promise<{ seq: number }> };
}

/** The NATS client, from the control plane's dependencies: the e2e package has none of its own. */
function natsClient(): NatsClient {
  const require = createRequire(new URL('../../apps/control/package.json', import.meta.url));
  return { ...require('@nats-io/transport-node'), ...require('@nats-io/jetstream') } as NatsClient;
}

/** Makes a NATS connection on the Connections page, as an admin does. */
async function createConnection(page: Page, name: string, url: string) {
  await page.goto('/connections');
  await page.getByRole('button', { name: 'New connection' }).click();
  const form = page.getByRole('form', { name: 'New connection' });
  await form.getByLabel('Name', { exact: true }).fill(name);
  await expect(form.getByLabel('Kind', { exact: true })).toHaveValue('nats');
  await form.getByLabel('URL', { exact: true }).fill(url);
  await form.getByRole('button', { name: 'Create connection' }).click();
  await expect(form).toBeHidden();
  await expect(page.locator(`[data-testid="connection-row"][data-name="${name}"]`)).toContainText(url);
}

/** A count as the Postgres sink stores it with no value field: the count operator's whole record. */
interface CountRow {
  key: string;
  count: number;
}

test('draw NATS JetStream → count → postgres and a log, publish to the stream, watch the counts arrive and the backlog catch up', async ({
  page,
}, testInfo) => {
  const suffix = Date.now().toString(36);
  const connection = `e2e-js-${suffix}`;
  const stream = `E2E_CLICKS_${suffix.toUpperCase()}`;
  const subject = `e2e.${suffix}.clicks`;
  const table = `e2e_js_counts_${suffix}`;

  const nats = natsClient();
  const nc = await nats.connect({ servers: NATS_URL });
  const jsm = await nats.jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [subject] });
  const sink = await sinkTable<CountRow>(table);
  try {
    await createConnection(page, connection, NATS_URL);

    // Source, keyed count, and two sinks: the table, and a log whose latest records the job page shows.
    await page.goto('/pipelines/new');
    await expect(page.getByTestId('live-status')).toHaveText('Live');
    await page.getByLabel('Pipeline name').fill(`jetstream-count-${suffix}`);
    const canvas = page.getByTestId('builder-canvas');
    await page.getByTestId('palette-nats').dragTo(canvas, { targetPosition: { x: 140, y: 220 } });
    await page.getByTestId('palette-count').dragTo(canvas, { targetPosition: { x: 440, y: 220 } });
    await page.getByTestId('palette-postgres').dragTo(canvas, { targetPosition: { x: 740, y: 140 } });
    await page.getByTestId('palette-log').dragTo(canvas, { targetPosition: { x: 740, y: 360 } });
    await expect(canvas.locator('.react-flow__node')).toHaveCount(4);

    // The source: the connection picked from the select, the test's stream and subject, ingestion time.
    await page.getByTestId('node-nats').click();
    const select = page.getByLabel('Connection *');
    await expect(select).toHaveAttribute('data-testid', 'connection-select-connection');
    await select.selectOption(connection);
    await expect(select).toHaveValue(connection);
    await page.getByLabel('Stream *').fill(stream);
    await page.getByLabel('Subjects', { exact: true }).fill(subject);
    await page.getByLabel('Timestamps', { exact: true }).selectOption('ingestion');
    await expect(page.getByTestId('node-nats')).toHaveAttribute('data-issues', '0');

    // A NATS source's fields are unknown to the builder: the edge into the count needs a key, until it is keyed by user.
    await dragConnection(page, outputHandle(page, 'nats'), inputHandle(page, 'count'));
    const edge = page.getByTestId('edge-label-nats-count');
    await expect(edge).toHaveText('⚠ hash(?)');
    await selectEdge(page, 'nats', 'count');
    await expect(page.locator('#edge-key-error')).toHaveText('hash edge nats->count needs a key field (keyBy)');
    await page.getByLabel('Key field (keyBy)').fill('user');
    await expect(edge).toHaveText('hash(user)');
    await expect(page.locator('#edge-key-error')).toBeHidden();
    await dragConnection(page, outputHandle(page, 'count'), inputHandle(page, 'postgres'));
    await dragConnection(page, outputHandle(page, 'count'), inputHandle(page, 'log'));
    await expect(canvas.locator('.react-flow__edge')).toHaveCount(3);

    await page.getByTestId('node-postgres').click();
    await page.getByLabel('Table *').fill(table);
    await expect(page.getByTestId('node-postgres')).toHaveAttribute('data-issues', '0');
    await canvas.locator('.react-flow__pane').click({ position: { x: 20, y: 20 } });
    await expect(page.getByTestId('side-panel')).toContainText('The pipeline is valid');
    await keepScreenshot(page, testInfo, 'builder-jetstream');

    await page.getByLabel('Checkpoint interval (s)').fill('1');
    await page.getByRole('button', { name: 'Deploy' }).click();
    await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    started.push(page.url().split('/').at(-1)!);
    await page.setViewportSize({ width: 1440, height: 1900 });
    const state = page.locator('.page-head h1 [data-testid="state-badge"]');
    await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });

    // The source reads the (empty) stream: its node shows the backlog.
    const lag = page.getByTestId('source-lag-nats');
    await expect(lag).toHaveText('backlog caught up', { timeout: 30_000 });

    // 2,000 messages over 20 users, each acknowledged by JetStream: 100 per user.
    const js = nats.jetstream(nc);
    for (let i = 0; i < MESSAGES; i += 100)
      await Promise.all(Array.from({ length: 100 }, (_, j) => js.publish(subject, JSON.stringify({ user: `u${(i + j) % USERS}`, item: i + j }))));

    // The log's latest records are the last users' final counts; the table holds every user's.
    const sample = page.getByTestId('sample-log');
    await expect(sample.locator('tr').first()).toContainText(`"count":${MESSAGES / USERS}`, { timeout: 60_000 });
    await expect(sample).not.toContainText(`"count":${MESSAGES / USERS + 1}`);
    const counts = async () => Object.fromEntries((await sink.rows()).map((r) => [r.key, r.value.count]));
    const expected = Object.fromEntries(Array.from({ length: USERS }, (_, u) => [`u${u}`, MESSAGES / USERS]));
    await expect.poll(counts, { timeout: 60_000, message: `counts in ${table}` }).toEqual(expected);

    // Everything read and counted: the backlog, and its one split's in the tooltip, is caught up again.
    await expect(lag).toHaveText('backlog caught up', { timeout: 30_000 });
    await expect(lag).toHaveAttribute('title', new RegExp(`^Backlog per split .*\\n${subject.replace(/\./g, '\\.')}: caught up$`, 's'));
    await expect(state).toHaveAttribute('data-state', 'RUNNING');
    await page.evaluate(() => window.scrollTo(0, 0));
    await keepScreenshot(page, testInfo, 'job-jetstream');

    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
    await expect(state).toHaveAttribute('data-state', 'CANCELED', { timeout: 30_000 });
  } finally {
    await sink.close();
    await jsm.streams.delete(stream).catch(() => {});
    await nc.close();
  }
});
