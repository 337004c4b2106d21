import type { Page } from '@playwright/test';
import { dragConnection, expect, inputHandle, outputHandle, selectEdge, test, typeOver } from './fixtures';

/** The dialogs the page opens from now on, each answered with `answer`, as "type: message". */
function recordDialogs(page: Page, answer: 'accept' | 'dismiss'): string[] {
  const seen: string[] = [];
  page.on('dialog', (d) => {
    seen.push(`${d.type()}: ${d.message()}`);
    void d[answer]();
  });
  return seen;
}

test('builder inputs never corrupt a value silently: typed text stays, problems block deploy, warnings do not, leaving asks', async ({ page }) => {
  await page.goto('/pipelines/new');
  await expect(page.getByTestId('live-status')).toHaveText('Live');
  await expect(page.getByTestId('save-state')).toHaveText('Not saved yet');
  await page.getByLabel('Pipeline name').fill(`inputs-${Date.now().toString(36)}`);

  const canvas = page.getByTestId('builder-canvas');
  await page.getByTestId('palette-generator').dragTo(canvas, { targetPosition: { x: 140, y: 220 } });
  await page.getByTestId('palette-count').dragTo(canvas, { targetPosition: { x: 440, y: 220 } });
  await page.getByTestId('palette-log').dragTo(canvas, { targetPosition: { x: 740, y: 220 } });
  await dragConnection(page, outputHandle(page, 'generator'), inputHandle(page, 'count'));
  await dragConnection(page, outputHandle(page, 'count'), inputHandle(page, 'log'));
  await expect(page.getByTestId('edge-label-generator-count')).toHaveText('hash(user)');
  await expect(page.getByTestId('edge-label-count-log')).toHaveText('forward');
  const deploy = page.getByRole('button', { name: 'Deploy' });
  await expect(deploy).toBeEnabled();

  // Checkpoint interval: what is typed is what the field holds; an invalid or empty one blocks Deploy, with why.
  const interval = page.getByLabel('Checkpoint interval (s)');
  const intervalError = page.locator('#interval-error');
  await typeOver(interval, '0.5');
  await expect(interval).toHaveValue('0.5');
  await expect(intervalError).toBeHidden();
  await expect(deploy).toBeEnabled();
  await typeOver(interval, '-5');
  await expect(interval).toHaveValue('-5');
  await expect(intervalError).toHaveText('at least 0.1 s');
  await expect(deploy).toBeDisabled();
  await expect(deploy).toHaveAttribute('title', 'Checkpoint interval: at least 0.1 s');
  await typeOver(interval, '');
  await expect(interval).toHaveValue('');
  await expect(intervalError).toHaveText('required');
  await expect(deploy).toBeDisabled();
  await typeOver(interval, '2');
  await expect(intervalError).toBeHidden();
  await expect(deploy).toBeEnabled();

  // Parallelism: wrong text stays as typed with a plain-words error, the operator keeps its value, Save and Deploy wait.
  await page.getByTestId('node-count').click();
  const parallelism = page.getByTestId('parallelism');
  const parallelismError = page.locator('#field-count-parallelism-error');
  const save = page.getByRole('button', { name: 'Save pipeline' });
  const countParallelism = page.getByTestId('node-count').locator('.op-par');
  await typeOver(parallelism, '-2');
  await expect(parallelism).toHaveValue('-2');
  await expect(parallelismError).toHaveText('a whole number from 1 to 32768');
  await expect(countParallelism).toHaveText('×1');
  await expect(page.getByTestId('node-count')).toHaveAttribute('data-issues', '1');
  await expect(deploy).toBeDisabled();
  await expect(save).toBeDisabled();
  await typeOver(parallelism, '1.5');
  await expect(parallelism).toHaveValue('1.5');
  await expect(parallelismError).toHaveText('a whole number from 1 to 32768');
  await expect(countParallelism).toHaveText('×1');
  await typeOver(parallelism, '100000');
  await expect(parallelism).toHaveValue('100000');
  await expect(parallelismError).toHaveText('a whole number from 1 to 32768');
  // More subtasks than the pool has slots: a warning, not an error (workers may join).
  await typeOver(parallelism, '12');
  await expect(parallelismError).toBeHidden();
  await expect(countParallelism).toHaveText('×12');
  await expect(page.getByTestId('parallelism-warning')).toContainText('the pool has 8 slots; this pipeline needs 14');
  await expect(page.getByTestId('pool-warning')).toContainText('the pool has 8 slots; this pipeline needs 14');
  await typeOver(parallelism, '2');
  await expect(countParallelism).toHaveText('×2');

  // Every numeric setting generated from the schema does the same.
  await page.getByTestId('node-generator').click();
  const splits = page.getByLabel('Splits', { exact: true });
  await typeOver(splits, '2.5');
  await expect(splits).toHaveValue('2.5');
  await expect(page.getByTestId('setting-splits').locator('.field-error')).toHaveText('a whole number from 1 to 1024');
  await expect(deploy).toBeDisabled();
  await typeOver(splits, '');
  await expect(splits).toHaveAttribute('placeholder', '16 (default)');
  await expect(page.getByTestId('setting-splits').locator('.field-error')).toHaveCount(0);

  // So does a duration: it keeps the text typed, says what it reads as, and one that is none blocks Deploy.
  const delay = page.getByLabel('Watermark delay');
  const delayError = page.getByTestId('setting-watermarkDelay').locator('.field-error');
  await expect(delay).toHaveAttribute('placeholder', '0ms (default)');
  await typeOver(delay, '1.5h');
  await expect(page.getByTestId('duration-readout-watermarkDelay')).toHaveText('1.5h = 5,400,000 ms');
  await typeOver(delay, '10x');
  await expect(delay).toHaveValue('10x');
  await expect(delayError).toHaveText('a duration such as 500ms, 10s, 1m or 1.5h');
  await expect(page.getByTestId('duration-readout-watermarkDelay')).toHaveCount(0);
  await expect(deploy).toBeDisabled();
  await typeOver(delay, '-5s');
  await expect(delayError).toHaveText('may not be negative');
  await typeOver(delay, '500ms');
  await expect(delayError).toHaveCount(0);
  await expect(page.getByTestId('duration-readout-watermarkDelay')).toHaveText('500ms = 500 ms');

  // count (×2) → log (×1) cannot stay forward; rebalance, then hash: no key is made up, the known fields are offered.
  await selectEdge(page, 'count', 'log');
  const partitioning = page.getByLabel('Partitioning');
  await partitioning.selectOption('rebalance');
  await expect(page.getByTestId('edge-label-count-log')).toHaveText('rebalance');
  await partitioning.selectOption('hash');
  const key = page.getByLabel('Key field (keyBy)');
  await expect(key).toHaveValue('');
  await expect(page.getByTestId('edge-label-count-log')).toContainText('hash(?)');
  await expect(page.locator('#edge-key-error')).toHaveText('hash edge count->log needs a key field (keyBy)');
  await expect(page.getByTestId('edge-key-fields')).toHaveText('count emits key, count');
  await expect(page.locator('#edge-key-fields option')).toHaveCount(2);
  await expect(deploy).toBeDisabled();

  // A key the upstream is not known to emit: a warning, and deploying stays possible.
  await key.fill('user');
  await expect(page.getByTestId('edge-key-warning')).toContainText("count is not known to emit 'user' (its records have key, count)");
  await expect(page.locator('#edge-key-error')).toBeHidden();
  await expect(deploy).toBeEnabled();
  await key.fill('key');
  await expect(page.getByTestId('edge-key-warning')).toBeHidden();
  await expect(page.getByTestId('edge-label-count-log')).toHaveText('hash(key)');

  // Leaving with unsaved changes asks first: an in-app link, and the browser's own prompt on close.
  const dialogs = recordDialogs(page, 'dismiss');
  await page.getByRole('navigation').getByRole('link', { name: 'Jobs' }).click();
  await expect.poll(() => dialogs).toEqual(['confirm: Leave the builder? Your unsaved changes will be lost.']);
  await expect(page).toHaveURL(/\/pipelines\/new$/);
  await expect(canvas.locator('.react-flow__node')).toHaveCount(3);
  await page.close({ runBeforeUnload: true });
  await expect.poll(() => dialogs.map((d) => d.split(':')[0])).toEqual(['confirm', 'beforeunload']);
  await expect(page.getByTestId('save-state')).toHaveText('Unsaved changes');

  // Saved, a new pipeline reads as its version, and the page is left without a question.
  await save.click();
  await expect(page.getByTestId('save-state')).toHaveText('Saved as version 1');
  await expect(page).toHaveURL(/\/pipelines\/[0-9a-f-]{36}\?version=1$/);
  await page.getByRole('navigation').getByRole('link', { name: 'Jobs' }).click();
  await expect(page).toHaveURL(/\/$/);
  expect(dialogs).toHaveLength(2);
});
