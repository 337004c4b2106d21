import type { Locator, Page } from '@playwright/test';
import {
  dragConnection,
  expect,
  expectRecordsFlowing,
  inputHandle,
  jobsCanceledAfterEach,
  keepScreenshot,
  outputHandle,
  test,
  typeOver,
} from './fixtures';

// The example user operators (examples/operators, loaded by the stack's control plane and workers through
// KEYFLOW_OPERATORS) in the dashboard: listed in the palette, configured through the form made from their schemas,
// drawn with their side outputs, deployed, and rescaled live like a built-in.

const started = jobsCanceledAfterEach();

const VERSION = (type: string) => new RegExp(`^${type}@[0-9a-f]{12}$`);

/** Drags an operator from the palette onto the canvas at (x, y). */
async function drop(page: Page, type: string, x: number, y = 220) {
  await page.getByTestId(`palette-${type}`).dragTo(page.getByTestId('builder-canvas'), { targetPosition: { x, y } });
}

/** The handle of a node's side output, labelled with its name. */
const sideOutputHandle = (page: Page, nodeId: string, output: string) =>
  page.locator(`.react-flow__node[data-id="${nodeId}"] .react-flow__handle.source[data-handleid="${output}"]`);
/** A node's main output handle: the one without a name. */
const mainOutputHandle = (page: Page, nodeId: string) => outputHandle(page, nodeId).and(page.locator(':not([data-handleid])'));

/** Where an edge's path starts, in the canvas's coordinates. */
async function pathStart(edge: Locator): Promise<{ x: number; y: number }> {
  const d = (await edge.locator('path.react-flow__edge-path').getAttribute('d')) ?? '';
  const [x, y] = (/^M\s*([-\d.]+)[ ,]([-\d.]+)/.exec(d) ?? []).slice(1).map(Number);
  return { x: x!, y: y! };
}

test('sdkCounter from "Your operators": configured through its own form, deployed, counting, rescaled with its slider', async ({
  page,
  request,
}, testInfo) => {
  await page.goto('/pipelines/new');
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  await page.getByLabel('Pipeline name').fill(`user-operators-${Date.now().toString(36)}`);

  // The palette lists the example operators in a group of their own, after the built-ins', each with its version.
  const groups = await page.locator('[data-testid^="palette-group-"]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.testid));
  expect(groups.at(-1)).toBe('palette-group-user');
  const mine = page.getByTestId('palette-group-user');
  await expect(mine.getByRole('heading')).toHaveText('Your operators');
  for (const [type, label] of [
    ['sdkCounter', 'Counter (SDK)'],
    ['dedupe', 'Dedupe'],
    ['failedLogins', 'Failed logins'],
  ] as const) {
    const item = mine.getByTestId(`palette-${type}`);
    await expect(item).toContainText(label);
    await expect(item.locator('.op-version')).toHaveText(VERSION(type));
  }
  await expect(mine.getByTestId('palette-sdkCounter')).toContainText(
    "Counts records per key; emits {key, count, message: 'Processed: <value>, Count: <n>'}",
  );
  // Search finds them by name, description and version.
  const search = page.getByPlaceholder('Search operators');
  await search.fill('repeats');
  await expect(mine.getByTestId('palette-dedupe')).toBeVisible();
  await expect(page.getByTestId('palette-sdkCounter')).toBeHidden();
  await expect(page.getByTestId('palette-group-source')).toBeHidden();
  await search.fill('sdkCounter@');
  await expect(page.locator('.palette-item')).toHaveCount(1);
  await search.fill('');

  // generator → sdkCounter (keyed by user) → log.
  await drop(page, 'generator', 140);
  await drop(page, 'sdkCounter', 440);
  await drop(page, 'log', 740);
  await dragConnection(page, outputHandle(page, 'generator'), inputHandle(page, 'sdkCounter'));
  await expect(page.getByTestId('edge-label-generator-sdkCounter')).toHaveText('hash(user)');
  await dragConnection(page, outputHandle(page, 'sdkCounter'), inputHandle(page, 'log'));
  await expect(page.getByTestId('edge-label-sdkCounter-log')).toHaveText('forward');
  await expect(page.getByTestId('node-sdkCounter')).toContainText('Counter (SDK)');

  // Its form, from the schema the control plane sent: its description, its own message for a wrong value.
  await page.getByTestId('node-sdkCounter').click();
  const panel = page.getByRole('form', { name: 'Settings of sdkCounter' });
  await expect(panel.getByRole('heading', { name: 'Counter (SDK)' })).toBeVisible();
  await expect(panel.getByTestId('operator-version')).toHaveText(VERSION('sdkCounter'));
  const setting = page.getByTestId('setting-field');
  await expect(setting).toContainText('Field shown as the value; empty = the whole record');
  const field = panel.getByLabel('Field', { exact: true });
  await expect(field).toHaveAttribute('placeholder', 'optional');
  await typeOver(field, '1item');
  await expect(setting.locator('.field-error')).toHaveText('a field name: letters, digits, _ and .');
  await expect(page.getByTestId('node-sdkCounter')).toHaveAttribute('data-issues', '1');
  await typeOver(field, 'item');
  await expect(setting.locator('.field-error')).toHaveCount(0);
  await expect(page.getByTestId('node-sdkCounter')).toHaveAttribute('data-issues', '0');
  await keepScreenshot(page, testInfo, 'user-operator-form');

  await page
    .getByTestId('builder-canvas')
    .locator('.react-flow__pane')
    .click({ position: { x: 20, y: 20 } });
  await expect(page.getByTestId('side-panel')).toContainText('The pipeline is valid');
  await page.getByRole('button', { name: 'Save pipeline' }).click();
  await expect(page.getByTestId('save-state')).toHaveText('Saved as version 1');
  await expect(page).toHaveURL(/\/pipelines\/[0-9a-f-]{36}\?version=1$/);
  const pipelineId = /\/pipelines\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  const saved = await (await request.get(`/api/pipelines/${pipelineId}`)).json();
  expect(saved.versions[0].graph.vertices.find((v: { id: string }) => v.id === 'sdkCounter')).toMatchObject({
    type: 'sdkCounter',
    settings: { field: 'item' },
  });

  // Deployed, it runs, and records flow through the user operator's node into the log, as it formats them.
  await page.getByLabel('Checkpoint interval (s)').fill('1');
  await page.getByRole('button', { name: 'Deploy' }).click();
  await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/);
  started.push(/\/jobs\/([0-9a-f-]{36})$/.exec(page.url())![1]!);
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  await expectRecordsFlowing(page, ['generator'], ['sdkCounter', 'log']);
  await expect(page.getByTestId('sample-log')).toContainText(/"message":"Processed: i\d+, Count: \d+"/, { timeout: 30_000 });
  await expect(page.getByTestId('key-groups-sdkCounter').getByTestId('key-group-range')).toHaveText(['0–127']);

  // Its slider rescales it (with the log it is chained to) live, as a built-in's does.
  const slider = page.getByTestId('slider-sdkCounter');
  await expect(slider).toHaveAttribute('max', '128');
  await slider.focus();
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('parallelism-input-sdkCounter')).toHaveValue('2');
  const event = page.getByTestId('scaling-event').first();
  await expect(event).toHaveAttribute('data-vertex', 'sdkCounter');
  await expect(event).toHaveAttribute('data-status', 'COMPLETED', { timeout: 60_000 });
  await expect(page.getByTestId('node-sdkCounter').locator('.op-par')).toHaveText('×2');
  await expect(page.getByTestId('node-log').locator('.op-par')).toHaveText('×2');
  await expect(page.getByTestId('key-groups-sdkCounter').getByTestId('key-group-range')).toHaveText(['0–63', '64–127'], { timeout: 15_000 });
  await expect(state).toHaveAttribute('data-state', 'RUNNING');
  await expectRecordsFlowing(page, ['generator'], ['sdkCounter', 'log']);
  await slider.blur();
  await keepScreenshot(page, testInfo, 'user-operator-job');
});

test('dedupe’s side output: its own labelled handle, saved as the edge’s output, drawn from it again when loaded and on the job', async ({
  page,
  request,
}, testInfo) => {
  await page.goto('/pipelines/new');
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  await page.getByLabel('Pipeline name').fill(`dedupe-${Date.now().toString(36)}`);
  await drop(page, 'generator', 140, 260);
  await drop(page, 'dedupe', 440, 260);
  await drop(page, 'log', 760, 140);
  await drop(page, 'log', 760, 400);

  // Two outputs: the main one, and `duplicates` with its name beside it.
  await expect(page.locator('.react-flow__node[data-id="dedupe"] .react-flow__handle.source')).toHaveCount(2);
  await expect(page.getByTestId('output-dedupe-duplicates')).toHaveText('duplicates');
  await dragConnection(page, outputHandle(page, 'generator'), inputHandle(page, 'dedupe'));
  await dragConnection(page, mainOutputHandle(page, 'dedupe'), inputHandle(page, 'log'));
  // Until an edge is drawn from it, the panel says what becomes of the side output's records.
  await page.getByTestId('node-dedupe').click();
  await expect(page.getByTestId('side-output-warning')).toContainText(
    "side output 'duplicates' is not connected: what dedupe sends there is dropped",
  );
  await dragConnection(page, sideOutputHandle(page, 'dedupe', 'duplicates'), inputHandle(page, 'log2'));
  await page.getByTestId('node-dedupe').click();
  await expect(page.getByTestId('side-output-warning')).toHaveCount(0);
  await expect(page.getByTestId('edge-label-dedupe-log')).toHaveText('forward');
  await expect(page.getByTestId('edge-label-dedupe-log2')).toHaveText('duplicates · forward');

  // The generator's events repeat their items soon with few users.
  await page.getByTestId('node-generator').click();
  await typeOver(page.getByLabel('Keys', { exact: true }), '10');
  await page.getByTestId('node-dedupe').click();
  await typeOver(page.getByLabel('Id field', { exact: true }), 'item');
  await expect(page.getByTestId('setting-ttl')).toContainText('How long an id is remembered');
  await typeOver(page.getByLabel('Ttl', { exact: true }), '1 fortnight');
  await expect(page.getByTestId('setting-ttl').locator('.field-error')).toHaveText('a duration such as 500ms, 10s, 1m or 1.5h');
  await typeOver(page.getByLabel('Ttl', { exact: true }), '1h');
  await expect(page.getByTestId('duration-readout-ttl')).toHaveText('1h = 3,600,000 ms');
  await keepScreenshot(page, testInfo, 'user-operator-side-output');
  await page.getByRole('button', { name: 'Save pipeline' }).click();
  await expect(page.getByTestId('save-state')).toHaveText('Saved as version 1');
  await expect(page).toHaveURL(/\/pipelines\/[0-9a-f-]{36}\?version=1$/);

  const pipelineId = /\/pipelines\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  const saved = await (await request.get(`/api/pipelines/${pipelineId}`)).json();
  expect(saved.versions[0].graph.edges).toContainEqual(expect.objectContaining({ from: 'dedupe', to: 'log2', output: 'duplicates' }));
  expect(saved.versions[0].graph.edges.find((e: { to: string }) => e.to === 'log')).not.toHaveProperty('output');

  // Loaded again, the edge starts at the duplicates handle, below the main one's.
  await page.reload();
  const side = page.locator('.react-flow__edge[data-id="dedupe->log2"]');
  const main = page.locator('.react-flow__edge[data-id="dedupe->log"]');
  await expect(page.getByTestId('edge-label-dedupe-log2')).toHaveText('duplicates · forward');
  expect((await pathStart(side)).y).toBeGreaterThan((await pathStart(main)).y);

  // Deployed: first sightings flow out of the main output, repeats out of the side output.
  await page.getByLabel('Checkpoint interval (s)').fill('1');
  await page.getByRole('button', { name: 'Deploy' }).click();
  await expect(page).toHaveURL(/\/jobs\/[0-9a-f-]{36}$/);
  started.push(/\/jobs\/([0-9a-f-]{36})$/.exec(page.url())![1]!);
  await expect(page.locator('.page-head h1 [data-testid="state-badge"]')).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  await expect(page.getByTestId('output-dedupe-duplicates')).toHaveText('duplicates');
  await expectRecordsFlowing(page, ['generator'], ['dedupe', 'log', 'log2']);
  await expect(page.getByTestId('edge-label-dedupe-log2')).toContainText(/^duplicates · forward/);
  await keepScreenshot(page, testInfo, 'user-operator-side-output-job');
});
