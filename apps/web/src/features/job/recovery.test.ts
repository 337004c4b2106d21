import { EventEmitter } from 'node:events';
import type { Recovery } from '@keyflow/api';
import { QueryClient } from '@tanstack/react-query';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { queryKeys } from '../../lib/api';
import { bindEventsToCache, recoveriesWith } from '../../lib/liveCache';
import { recoveryCheckpoint, recoveryPhases, recoveryTimings, recoveryTone } from './recovery';
import { RecoveryList } from './RecoveryList';

const JOB = '11111111-1111-4111-8111-111111111111';
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();

const recovery = (id: number, extra: Partial<Recovery> = {}): Recovery => ({
  id,
  jobId: JOB,
  attempt: id + 1,
  cause: 'no heartbeat for count#0 within 2500 ms (worker lost)',
  failedAt: at(0),
  detectedAt: at(2500),
  checkpointId: 41,
  checkpointNumber: 7,
  runningAt: null,
  detectionMs: null,
  recoveryMs: null,
  restoreMs: null,
  keyGroupsRestored: 0,
  bytesRestored: 0,
  status: 'RESTORING',
  reason: null,
  ...extra,
});

const running = (id: number) =>
  recovery(id, {
    status: 'RUNNING',
    runningAt: at(4000),
    detectionMs: 2500,
    recoveryMs: 1500,
    restoreMs: 120,
    keyGroupsRestored: 128,
    bytesRestored: 4096,
  });

describe('a recovery on the job page', () => {
  it.each([
    ['the server’s durations when it sent them', running(1), { detectionMs: 2500, recoveryMs: 1500, restoreMs: 120 }],
    ['otherwise worked out from its times', recovery(1, { runningAt: at(3100) }), { detectionMs: 2500, recoveryMs: 600, restoreMs: null }],
    ['nothing while it restores', recovery(1), { detectionMs: 2500, recoveryMs: null, restoreMs: null }],
    ['no detection time when the failure time is unknown', recovery(1, { failedAt: null }), { detectionMs: null, recoveryMs: null, restoreMs: null }],
  ])('times: %s', (_name, r, want) => {
    expect(recoveryTimings(r)).toEqual(want);
  });

  it('has three phases, each timed from the one before', () => {
    expect(recoveryPhases(running(1))).toEqual([
      { label: 'failed', at: at(0), afterMs: null },
      { label: 'detected', at: at(2500), afterMs: 2500 },
      { label: 'running again', at: at(4000), afterMs: 1500 },
    ]);
  });

  it.each([
    [{ checkpointId: 41, checkpointNumber: 7 }, 'checkpoint #7'],
    [{ checkpointId: 41, checkpointNumber: null }, 'checkpoint id 41'],
    [{ checkpointId: null, checkpointNumber: null }, 'no checkpoint: from the start'],
  ])('names the checkpoint it restarted from: %o → %s', (r, want) => {
    expect(recoveryCheckpoint(r)).toBe(want);
  });

  it("names another job's checkpoint it started from by that job and its number there, not as one of its own", () => {
    const startedFrom = { checkpointId: 41, jobId: '22222222-2222-4222-8222-222222222222', number: 7 };
    expect(recoveryCheckpoint({ checkpointId: 41, checkpointNumber: 7 }, startedFrom)).toBe('checkpoint #7 of job 22222222, which it started from');
    // Once it has checkpoints of its own, they are named as usual.
    expect(recoveryCheckpoint({ checkpointId: 58, checkpointNumber: 2 }, startedFrom)).toBe('checkpoint #2');
  });

  it.each([
    ['RESTORING', 'warn'],
    ['RUNNING', 'ok'],
    ['FAILED', 'bad'],
    ['SUPERSEDED', 'neutral'],
  ] as const)('%s reads as %s', (status, tone) => {
    expect(recoveryTone(status)).toBe(tone);
  });
});

describe('the recovery list', () => {
  const render = (recoveries: Recovery[], now = Date.parse(at(5000))) => renderToStaticMarkup(createElement(RecoveryList, { recoveries, now }));

  it('shows cause, detection, time to running, state restore, the checkpoint used and the status', () => {
    const html = render([running(1)]);
    expect(html).toContain('data-status="RUNNING"');
    expect(html).toContain('no heartbeat for count#0 within 2500 ms (worker lost)');
    expect(html).toContain('checkpoint #7');
    expect(html).toMatch(/detection<\/dt><dd>2\.50 s/);
    expect(html).toMatch(/time to running<\/dt><dd>1\.50 s/);
    expect(html).toMatch(/state restore<\/dt><dd>120 ms/);
    expect(html).toMatch(/key groups restored<\/dt><dd>128/);
    expect(html).toMatch(/bytes restored<\/dt><dd>4\.0 KB/);
    expect(html).toContain('+2.50 s');
    expect(html).toContain('+1.50 s');
  });

  it('counts the time of a recovery still restoring, and gives the reason of one that ended otherwise', () => {
    expect(render([recovery(1)])).toContain('… 2.50 s so far');
    const superseded = render([recovery(1, { status: 'SUPERSEDED', reason: 'attempt 2 failed before it ran: count#0 failed: boom' })]);
    expect(superseded).toContain('data-status="SUPERSEDED"');
    expect(superseded).toContain('attempt 2 failed before it ran');
  });

  it('says so when the job never failed', () => {
    expect(render([])).toContain('No recovery');
  });
});

describe('job:recovery events', () => {
  it('replace their row or are added newest first; a settled recovery never goes back to restoring', () => {
    const list = recoveriesWith([], recovery(1));
    expect(recoveriesWith(list, recovery(2)).map((r) => r.id)).toEqual([2, 1]);
    const settled = recoveriesWith(list, running(1));
    expect(settled[0]!.status).toBe('RUNNING');
    expect(recoveriesWith(settled, recovery(1))).toBe(settled);
  });

  it('fold into the cached list, and make one when the control plane lists none (null: no route yet)', () => {
    const client = new QueryClient();
    const socket = new EventEmitter();
    bindEventsToCache(socket, client);
    client.setQueryData<Recovery[] | null>(queryKeys.recoveries(JOB), null);
    socket.emit('job:recovery', recovery(1));
    socket.emit('job:recovery', running(1));
    expect(client.getQueryData<Recovery[]>(queryKeys.recoveries(JOB))!.map((r) => [r.id, r.status])).toEqual([[1, 'RUNNING']]);
    socket.emit('job:recovery', recovery(2));
    expect(client.getQueryData<Recovery[]>(queryKeys.recoveries(JOB))!.map((r) => r.id)).toEqual([2, 1]);
  });
});
