import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  test as base,
  expect,
  type APIRequestContext,
  type Browser,
  type Locator,
  type Page,
  type PlaywrightWorkerArgs,
  type TestInfo,
} from '@playwright/test';
import type { E2eRole, E2eUsers } from '../stack';

const DOCS_SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');

type StorageState = Awaited<ReturnType<APIRequestContext['storageState']>>;

/** The users the global setup made, one per role, with their passwords. */
export function users(): E2eUsers {
  const json = process.env.KEYFLOW_E2E_USERS;
  if (!json) throw new Error('KEYFLOW_E2E_USERS is not set: run the tests through playwright.config.ts (its global setup makes the users)');
  return JSON.parse(json) as E2eUsers;
}

const webUrl = () => process.env.KEYFLOW_WEB_URL!;

type Change = 'post' | 'put' | 'patch' | 'delete';
const CHANGES = new Set<string | symbol>(['post', 'put', 'patch', 'delete']);
type ChangeOptions = Parameters<APIRequestContext['post']>[1];

/**
 * Sends every change as the dashboard's client does, as JSON (`{}` when it has no body): the control plane refuses a
 * change made with a session in any other content type, which is what a cross-site form could send.
 */
function sendingJson(context: APIRequestContext): APIRequestContext {
  const json = (options: ChangeOptions) =>
    options && (options.data !== undefined || options.form !== undefined || options.multipart !== undefined) ? options : { ...options, data: {} };
  return new Proxy(context, {
    get(target, prop) {
      if (CHANGES.has(prop)) return (url: string, options?: ChangeOptions) => target[prop as Change](url, json(options));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * A request context as `role` (through the dashboard, as the browser goes), or as nobody. It sends the dashboard's
 * Origin and JSON, as the dashboard does: the control plane refuses a change made with a session otherwise.
 */
async function requestContext(playwright: PlaywrightWorkerArgs['playwright'], state?: StorageState) {
  return sendingJson(await playwright.request.newContext({ baseURL: webUrl(), storageState: state, extraHTTPHeaders: { origin: webUrl() } }));
}

interface Fixtures {
  /** Who the test's browser context and `request` are signed in as; `null`: nobody (the sign-in page's tests). */
  signedInAs: E2eRole | null;
  /** A request context signed in as another role than the test's (e.g. an operator deploying what a viewer looks at). */
  requestAs: (role: E2eRole) => Promise<APIRequestContext>;
}
interface WorkerFixtures {
  /** One session per role for the whole run, signed in once through the dashboard's API (as its sign-in page does). */
  sessions: (role: E2eRole) => Promise<StorageState>;
}

/**
 * Tests reach the dashboard the global setup started (its port is only known then), signed in as an operator unless
 * they say otherwise with `test.use({ signedInAs: … })`.
 */
export const test = base.extend<Fixtures, WorkerFixtures>({
  baseURL: async ({}, use) => use(webUrl()),
  sessions: [
    async ({ playwright }, use) => {
      const signedIn = new Map<E2eRole, Promise<StorageState>>();
      const signIn = async (role: E2eRole) => {
        const context = await requestContext(playwright);
        const res = await context.post('/api/auth/sign-in/email', { data: users()[role] });
        if (!res.ok()) throw new Error(`could not sign in as the ${role}: ${res.status()} ${await res.text()}`);
        const state = await context.storageState();
        await context.dispose();
        return state;
      };
      await use((role) => {
        if (!signedIn.has(role)) signedIn.set(role, signIn(role));
        return signedIn.get(role)!;
      });
    },
    { scope: 'worker' },
  ],
  signedInAs: ['operator', { option: true }],
  storageState: async ({ signedInAs, sessions }, use) => use(signedInAs ? await sessions(signedInAs) : undefined),
  request: async ({ playwright, signedInAs, sessions }, use) => {
    const context = await requestContext(playwright, signedInAs ? await sessions(signedInAs) : undefined);
    await use(context);
    await context.dispose();
  },
  requestAs: async ({ playwright, sessions }, use) => {
    const made: APIRequestContext[] = [];
    await use(async (role) => {
      const context = await requestContext(playwright, await sessions(role));
      made.push(context);
      return context;
    });
    for (const context of made) await context.dispose();
  },
});
export { expect };

/**
 * The jobs a spec's tests start: each is canceled (as the operator) after its test, passed or not, so the next test
 * finds the workers' slots free. Call once at the spec's top level and push every job started.
 */
export function jobsCanceledAfterEach(): string[] {
  const started: string[] = [];
  test.afterEach(async ({ requestAs }) => {
    const operator = await requestAs('operator');
    for (const id of started.splice(0)) await operator.post(`/api/jobs/${id}/cancel`);
  });
  return started;
}

/** Selects all of a field's text and types over it key by key, as a person does (`fill` would set it at once). */
export async function typeOver(field: Locator, text: string): Promise<void> {
  await field.click();
  await field.press('ControlOrMeta+A');
  if (text) await field.pressSequentially(text);
  else await field.press('Backspace');
}

/**
 * A reader of a Postgres sink's table (`key`, `value`), through the sinks' own role as the stack's sinks write; none
 * while the table does not exist yet. `close` when done.
 */
export async function sinkTable<T>(table: string): Promise<{ rows: () => Promise<{ key: string; value: T }[]>; close: () => Promise<void> }> {
  const url = process.env.KEYFLOW_E2E_SINK_DATABASE_URL;
  if (!url) throw new Error('KEYFLOW_E2E_SINK_DATABASE_URL is not set: run the tests through playwright.config.ts (its global setup sets it)');
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a sink table name: ${table}`);
  // Loaded only by the tests that read a sink: the others never start a database client.
  const { createPrisma } = await import('@keyflow/db');
  const db = createPrisma(url);
  return {
    rows: async () => {
      const exists = await db.$queryRawUnsafe<{ found: string | null }[]>(`SELECT to_regclass('${table}')::text AS found`);
      return exists[0]?.found ? db.$queryRawUnsafe(`SELECT key, value FROM ${table}`) : [];
    },
    close: () => db.$disconnect(),
  };
}

/** Signs in on the sign-in page as a person does: email, password, the button. */
export async function signInWithForm(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * A page in a browser context of its own, signed in as nobody: another person, at another computer. (A context made
 * in a test would otherwise start with the test's session.)
 */
export async function newPerson(browser: Browser, baseURL: string): Promise<Page> {
  const context = await browser.newContext({ baseURL, storageState: { cookies: [], origins: [] } });
  return context.newPage();
}

/**
 * Keeps a screenshot as an artifact of the run (attached to the report, in .keyflow/test-results); with
 * UPDATE_SCREENSHOTS=1 it also replaces the README's copy in docs/screenshots.
 */
export async function keepScreenshot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path });
  await testInfo.attach(name, { path, contentType: 'image/png' });
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
    copyFileSync(path, join(DOCS_SCREENSHOTS, `${name}.png`));
  }
}

async function center(locator: Locator): Promise<{ x: number; y: number }> {
  const box = await locator.boundingBox();
  if (!box) throw new Error(`${locator} is not visible`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Drags a connection from one handle to another with the mouse, as a person does. */
export async function dragConnection(page: Page, from: Locator, to: Locator): Promise<void> {
  const a = await center(from);
  const b = await center(to);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2 + 30, { steps: 8 });
  await page.mouse.move(b.x, b.y, { steps: 8 });
  await page.mouse.up();
}

export const outputHandle = (page: Page, nodeId: string) => page.locator(`.react-flow__node[data-id="${nodeId}"] .react-flow__handle.source`);
export const inputHandle = (page: Page, nodeId: string) => page.locator(`.react-flow__node[data-id="${nodeId}"] .react-flow__handle.target`);
/** A join's input handle of one side (its handles are named after their sides). */
export const sideHandle = (page: Page, nodeId: string, side: 'left' | 'right') =>
  inputHandle(page, nodeId).and(page.locator(`[data-handleid="${side}"]`));

/** Clicks an edge where its label sits: on its path (the label itself lets clicks through). */
export async function selectEdge(page: Page, from: string, to: string): Promise<void> {
  const box = await page.getByTestId(`edge-label-${from}-${to}`).boundingBox();
  if (!box) throw new Error(`no label on ${from}->${to}`);
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await expect(page.getByRole('form', { name: `Edge ${from}->${to}` })).toBeVisible();
}

/**
 * Drags a range slider's thumb to `value` with the mouse, as a person does, and releases it unless told not to.
 * Returns a reader of every value the slider showed from the moment before the release on, frame by frame.
 */
export async function dragSlider(page: Page, slider: Locator, value: number, { release = true } = {}): Promise<() => Promise<string[]>> {
  const box = await slider.boundingBox();
  if (!box) throw new Error(`${slider} is not visible`);
  const [min, max, current] = await slider.evaluate((el: HTMLInputElement) => [Number(el.min), Number(el.max), Number(el.value)]);
  // The thumb's centre runs from about 8 px in to 8 px before the end; past either end is the end's value.
  const x = (v: number) => (v === min ? box.x - 20 : v === max ? box.x + box.width + 20 : box.x + 8 + ((v - min) / (max - min)) * (box.width - 16));
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + 8 + ((current! - min!) / (max! - min!)) * (box.width - 16), y);
  await page.mouse.down();
  await page.mouse.move(x(value), y, { steps: 8 });
  await expect(slider).toHaveValue(String(value));
  const shown = await watchValue(slider);
  if (release) await page.mouse.up();
  return shown;
}

type Watched = { __watch?: { values: string[]; stop: boolean } };

/** Records every value an input shows from now on (each change, read every frame), until the next call. */
async function watchValue(input: Locator): Promise<() => Promise<string[]>> {
  await input.evaluate((el: HTMLInputElement) => {
    const w = window as Watched;
    if (w.__watch) w.__watch.stop = true;
    const watch = { values: [el.value], stop: false };
    w.__watch = watch;
    const tick = () => {
      if (watch.stop) return;
      if (el.value !== watch.values.at(-1)) watch.values.push(el.value);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  return () => input.page().evaluate(() => (window as Watched).__watch!.values);
}

/**
 * The job page's newest rescale names its checkpoint as the Checkpoints table lists it ("checkpoint #N", a RESCALE row
 * numbered N), not by the checkpoint's id, which runs on across jobs.
 */
export async function expectRescaleCheckpointListed(page: Page): Promise<void> {
  const number = (await page.getByTestId('scaling-checkpoint').first().textContent())?.match(/^checkpoint #(\d+)$/)?.[1];
  expect(number).toBeDefined();
  await expect(page.locator(`[data-testid="checkpoint-row"][data-kind="RESCALE"][data-number="${number}"]`)).toHaveCount(1);
}

/** Waits until records flow through every operator of the job's graph: sources emit, the others receive. */
export async function expectRecordsFlowing(page: Page, sources: string[], others: string[]): Promise<void> {
  const live = async (id: string) => (await page.getByTestId(`live-${id}`).textContent()) ?? '';
  for (const id of sources) await expect.poll(() => live(id), { timeout: 30_000 }).toMatch(/out [1-9][\d.]*k?\/s/);
  for (const id of others) await expect.poll(() => live(id), { timeout: 30_000 }).toMatch(/in [1-9][\d.]*k?\/s/);
}

/**
 * Saves `graph` as a new pipeline, deploys it (checkpoints every second), notes the job in `started` (to cancel after
 * the test) and opens its page once it runs and its live updates flow.
 */
export async function deployRunning(page: Page, request: APIRequestContext, started: string[], graph: object) {
  const pipeline = await request.post('/api/pipelines', { data: { name: `e2e-${Date.now().toString(36)}`, graph } });
  expect(pipeline.status()).toBe(201);
  const deployed = await request.post('/api/jobs', { data: { pipelineId: (await pipeline.json()).id, checkpointIntervalMs: 1000 } });
  expect(deployed.status()).toBe(201);
  const jobId: string = (await deployed.json()).id;
  started.push(jobId);
  await page.setViewportSize({ width: 1440, height: 1900 });
  await page.goto(`/jobs/${jobId}`);
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  const state = page.locator('.page-head h1 [data-testid="state-badge"]');
  await expect(state).toHaveAttribute('data-state', 'RUNNING', { timeout: 60_000 });
  return { jobId, state };
}
