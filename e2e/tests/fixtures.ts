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
