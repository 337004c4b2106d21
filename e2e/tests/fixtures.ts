import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as base, expect, type Locator, type Page, type TestInfo } from '@playwright/test';

const DOCS_SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');

/** Tests reach the dashboard the global setup started (its port is only known then). */
export const test = base.extend({
  baseURL: async ({}, use) => use(process.env.KEYFLOW_WEB_URL),
});
export { expect };

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

/** Waits until records flow through every operator of the job's graph: sources emit, the others receive. */
export async function expectRecordsFlowing(page: Page, sources: string[], others: string[]): Promise<void> {
  const live = async (id: string) => (await page.getByTestId(`live-${id}`).textContent()) ?? '';
  for (const id of sources) await expect.poll(() => live(id), { timeout: 30_000 }).toMatch(/out [1-9][\d.]*k?\/s/);
  for (const id of others) await expect.poll(() => live(id), { timeout: 30_000 }).toMatch(/in [1-9][\d.]*k?\/s/);
}
