import type { Stall } from '@keyflow/api';
import { describe, expect, it } from 'vitest';
import { culpritName, culprits, failoverText, jobChains, secondsBetween, stalledOperators } from './stall';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const graph = {
  vertices: [
    { id: 'events', type: 'generator', parallelism: 1, settings: {} },
    { id: 'count', type: 'count', parallelism: 2, settings: {} },
    { id: 'out', type: 'log', parallelism: 2, settings: {} },
  ],
  edges: [
    { from: 'events', to: 'count', partitioning: 'hash', key: 'user' },
    { from: 'count', to: 'out', partitioning: 'forward' },
  ],
};
const plan = {
  vertices: {
    events: { parallelism: 1, maxParallelism: 16 },
    count: { parallelism: 2, maxParallelism: 128 },
    out: { parallelism: 2, maxParallelism: 128 },
  },
};
const stall: Stall = {
  jobId: 'j',
  since: at(10),
  failoverAt: at(25),
  subtasks: [
    { subtask: 'count#1', reason: 'has not reported (its process may be frozen or its event loop stuck)', since: at(10) },
    { subtask: 'events#0', reason: 'has not emitted the barrier of checkpoint 7', since: at(12) },
  ],
};

describe('a stalled job', () => {
  const list = culprits(stall, jobChains(graph, plan));

  it('names each culprit with the operators of its chain', () => {
    expect(list.map(culpritName)).toEqual(['count#1 (with out#1)', 'events#0']);
    expect(list[0]).toMatchObject({ index: 1, vertices: ['count', 'out'], since: at(10) });
  });

  it('marks every operator of a culprit chain, with the reason of each of its subtasks', () => {
    const marked = stalledOperators(list);
    expect([...marked.keys()]).toEqual(['count', 'out', 'events']);
    expect(marked.get('out')).toEqual(['out#1 has not reported (its process may be frozen or its event loop stuck)']);
  });

  it('names a subtask of a chain the page does not know by what the control plane sent', () => {
    expect(culprits(stall, []).map(culpritName)).toEqual(['count#1', 'events#0']);
  });

  it('counts down to the fail-over, then says it is under way', () => {
    expect(failoverText(at(25), Date.parse(at(18)))).toBe('fails over in 7 s');
    expect(failoverText(at(25), Date.parse(at(26)))).toBe('failing over now');
    expect(secondsBetween(at(10), Date.parse(at(14)) + 400)).toBe(4);
    expect(secondsBetween(at(10), at(9))).toBe(0);
  });
});
