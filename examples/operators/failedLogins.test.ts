import type { z } from '@keyflow/sdk';
import { OperatorHarness } from '@keyflow/sdk/testing';
import { describe, expect, it } from 'vitest';
import failedLogins from './failedLogins.ts';

const S = 1000;
const fail = (user: string) => ({ user, outcome: 'failure' });
const ok = (user: string) => ({ user, outcome: 'success' });

/** The operator keyed by user, as a keyBy on `user` feeds it. */
function harness(settings?: z.input<typeof failedLogins.settings>) {
  return OperatorHarness.create(failedLogins, { settings, keyField: 'user' });
}

describe('failedLogins', () => {
  it('alerts once when 3 failures fall within a minute, then counts afresh', () => {
    const h = harness();
    for (const t of [0, 20, 50, 55, 58]) h.process(fail('alice'), { timestamp: t * S });
    expect(h.output()).toEqual([{ record: { key: 'alice', failures: 3, firstAt: 0, lastAt: 50 * S }, timestamp: 50 * S }]);
    expect(h.state('alice').failures).toEqual([55 * S, 58 * S]);
  });

  it('does not alert on failures further apart than the window', () => {
    const h = harness();
    for (const t of [0, 40, 60, 100]) h.process(fail('bob'), { timestamp: t * S });
    expect(h.records()).toEqual([]);
    expect(h.state('bob').failures).toEqual([60 * S, 100 * S]);
  });

  it('counts failures that come out of order by their event time', () => {
    const h = harness();
    h.process(fail('c'), { timestamp: 30 * S });
    h.process(fail('c'), { timestamp: 10 * S });
    h.process(fail('c'), { timestamp: 20 * S });
    expect(h.records()).toEqual([{ key: 'c', failures: 3, firstAt: 10 * S, lastAt: 30 * S }]);
  });

  it('clears the failures before a success', () => {
    const h = harness();
    h.process(fail('d'), { timestamp: 0 });
    h.process(fail('d'), { timestamp: S });
    h.process(ok('d'), { timestamp: 2 * S });
    h.process(fail('d'), { timestamp: 3 * S });
    h.process(fail('d'), { timestamp: 4 * S });
    expect(h.records()).toEqual([]);
    h.process(fail('d'), { timestamp: 5 * S });
    expect(h.records()).toEqual([{ key: 'd', failures: 3, firstAt: 3 * S, lastAt: 5 * S }]);
  });

  it('holds no state for a user once the window after their last failure has passed, by one timer', () => {
    const h = harness();
    h.process(fail('e'), { timestamp: 0 });
    h.process(fail('e'), { timestamp: 10 * S });
    expect(h.timers('e').event).toEqual([70 * S - 1]);
    h.processWatermark(70 * S - 2);
    expect(h.state('e').failures).toHaveLength(2);
    h.processWatermark(70 * S - 1);
    expect(h.keyCount()).toBe(0);
  });

  it('sends a failure whose window the watermark has passed to the late output', () => {
    const h = harness();
    h.processWatermark(2 * 60 * S);
    h.process(fail('f'), { timestamp: 60 * S });
    expect(h.late()).toEqual([{ record: fail('f'), reason: "failedLogins: the watermark passed the end of this failure's 60000 ms window" }]);
    expect(h.keyCount()).toBe(0);
  });

  it('takes its threshold, window, field and failure value from the settings', () => {
    const h = harness({ threshold: 2, within: '10s', outcomeField: 'ok', failureValue: false });
    h.process({ user: 'g', ok: false }, { timestamp: 0 });
    h.process({ user: 'g', ok: false }, { timestamp: 9 * S });
    expect(h.records()).toEqual([{ key: 'g', failures: 2, firstAt: 0, lastAt: 9 * S }]);
  });

  it('dead-letters a record without an outcome or an event time', () => {
    const h = harness();
    h.process({ user: 'h' }, { timestamp: 0 });
    h.process(fail('h'));
    expect(h.deadLetters().map((d) => d.reason)).toEqual([
      "failedLogins: the record has no 'outcome'",
      'failedLogins: the record has no event time (give its source a timestamp field)',
    ]);
  });

  it('alerts the same across a restore and a rescale 1 → 3, and its timers still clear state', () => {
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const h = harness();
    for (const user of users) h.process(fail(user), { timestamp: 0 });
    const restored = OperatorHarness.restore(failedLogins, h.snapshot(), { keyField: 'user' });
    for (const user of users) restored.process(fail(user), { timestamp: 10 * S });

    const three = OperatorHarness.rescale(failedLogins, [restored.snapshot()], 3, { keyField: 'user' });
    for (const user of users) three.find((s) => s.owns(user))!.process(fail(user), { timestamp: 20 * S });
    const alerts = three.flatMap((s) => s.records());
    expect(alerts).toHaveLength(users.length);
    expect(new Set(alerts.map((a) => a.key))).toEqual(new Set(users));
    for (const user of users.slice(0, 3)) three.find((s) => s.owns(user))!.process(fail(user), { timestamp: 30 * S });
    for (const s of three) s.processWatermark(90 * S - 1);
    expect(three.map((s) => s.keyCount())).toEqual([0, 0, 0]);
  });
});
