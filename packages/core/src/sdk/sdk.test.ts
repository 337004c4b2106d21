import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Rec } from '../codec.ts';
import { validateGraph } from '../graphRules.ts';
import { clearUserOperators, operatorSpec, registerOperator, userOperatorSpecs } from '../operatorCatalog.ts';
import { builtinOperators } from '../operators/index.ts';
import type { Output } from '../operators/types.ts';
import { buildChains, initialPlan, operatorVersionProblem, rescaledPlan } from '../plan.ts';
import { KeyedStateBackend } from '../stateBackend.ts';
import { bindOperator } from './bind.ts';
import { defineOperator, mapState, valueState, type OperatorDefinition } from './define.ts';

const minimal = { title: 'T', description: 'd', settings: z.object({}), inputs: 'keyed', process() {} } as const;

const tagger = defineOperator({
  kind: 'tagger',
  title: 'Tagger',
  description: 'Tags records; repeats of a key go to its side output',
  settings: z.object({ tag: z.string().default('t') }),
  inputs: 'keyed',
  outputs: ['repeats'],
  state: { seen: valueState<number>(), ids: mapState<string, number>() },
  process(rec, ctx) {
    const n = (ctx.state.seen.value() ?? 0) + 1;
    ctx.state.seen.update(n);
    if (n > 1) return ctx.emitTo('repeats', rec);
    ctx.emit({ ...rec, tag: ctx.settings.tag });
  },
});

afterEach(() => clearUserOperators());

describe('defineOperator', () => {
  it.each<[string, Partial<OperatorDefinition>, RegExp]>([
    ['a kind that is no name', { kind: '9 lives' }, /kind must be a letter/],
    ['no title', { kind: 'x', title: ' ' }, /title/],
    ['settings that are no zod schema', { kind: 'x', settings: {} as z.ZodType }, /zod schema/],
    ['state without keyed input', { kind: 'x', inputs: 'any', state: { n: valueState<number>() } }, /need keyed input/],
    ['a timer handler without keyed input', { kind: 'x', inputs: 'any', onTimer() {} }, /need keyed input/],
    ['a state named as the timers are', { kind: 'x', state: { timers: valueState<number>() } }, /engine keeps timers under/],
    ['a state that is no descriptor', { kind: 'x', state: { n: {} as never } }, /no state descriptor/],
    ['an output named twice', { kind: 'x', outputs: ['a', 'a'] }, /named twice/],
  ])('refuses %s when the module loads', (_what, change, message) => {
    expect(() => defineOperator({ ...minimal, ...change } as OperatorDefinition)).toThrow(message);
  });
});

describe('bindOperator', () => {
  const run = (def: OperatorDefinition, settings: unknown = {}) => {
    const backend = new KeyedStateBackend(128);
    const out: Rec[] = [];
    const side: [string, Rec][] = [];
    const dead: [unknown, string][] = [];
    const output: Output = { emit: (r) => out.push(r), emitTo: (n, r) => side.push([n, r]) };
    const op = bindOperator(def, settings, { backend, deadLetter: (r, why) => dead.push([r, why]) });
    const feed = (key: string, rec: Rec) => {
      backend.setCurrentKey(key);
      op.process(rec, key, output);
    };
    return { op, out, side, dead, feed, output, backend };
  };

  it('runs process with typed state, settings and a side output', () => {
    const t = run(tagger as unknown as OperatorDefinition, { tag: 'x' });
    t.feed('a', { n: 1 });
    t.feed('b', { n: 2 });
    t.feed('a', { n: 3 });
    expect(t.out).toEqual([
      { n: 1, tag: 'x' },
      { n: 2, tag: 'x' },
    ]);
    expect(t.side).toEqual([['repeats', { n: 3 }]]);
  });

  it('refuses settings that do not parse, naming the field', () => {
    expect(() => run(tagger as unknown as OperatorDefinition, { tag: 5 })).toThrow(/tagger: settings do not parse: tag: /);
  });

  it('fails to open with the operator’s own message', () => {
    const def = defineOperator({
      ...minimal,
      kind: 'opener',
      open() {
        throw new Error('no model file');
      },
    });
    expect(() => run(def as unknown as OperatorDefinition)).toThrow('opener failed to open: no model file');
  });

  it('dead-letters a timer whose handler throws, naming key, time and clock, and goes on', () => {
    const def = defineOperator({
      ...minimal,
      kind: 'flaky',
      process(_rec, ctx) {
        ctx.timers.registerEventTime(10);
        ctx.timers.registerEventTime(20);
      },
      onTimer(ts, ctx) {
        if (ts === 10) throw new Error('boom');
        ctx.emit({ fired: ts, key: ctx.currentKey, domain: ctx.timeDomain });
      },
    });
    const t = run(def as unknown as OperatorDefinition);
    t.feed('k', {});
    t.op.onWatermark!(30, t.output);
    expect(t.dead).toEqual([[{ key: 'k', timer: 10, domain: 'event' }, 'flaky threw in onTimer: boom']]);
    expect(t.out).toEqual([{ fired: 20, key: 'k', domain: 'event' }]);
  });

  it('fires processing-time timers on the clock, and all that are left at the end of the input', () => {
    const def = defineOperator({
      ...minimal,
      kind: 'clocked',
      process(_rec, ctx) {
        ctx.timers.registerProcessingTime(100);
        ctx.timers.registerProcessingTime(5000);
      },
      onTimer(ts, ctx) {
        ctx.emit({ ts, domain: ctx.timeDomain });
      },
    });
    const t = run(def as unknown as OperatorDefinition);
    t.feed('k', {});
    t.op.onProcessingTime!(200, t.output);
    expect(t.out).toEqual([{ ts: 100, domain: 'processing' }]);
    t.op.onWatermark!(Infinity, t.output);
    expect(t.out).toEqual([
      { ts: 100, domain: 'processing' },
      { ts: 5000, domain: 'processing' },
    ]);
  });

  it('refuses a timer from an operator without onTimer, and an undeclared side output', () => {
    const t = run(
      defineOperator({ ...minimal, kind: 'untimed', process: (_r, ctx) => ctx.timers.registerEventTime(1) }) as unknown as OperatorDefinition,
    );
    expect(() => t.feed('k', {})).toThrow('untimed registers timers but has no onTimer');
    const s = run(defineOperator({ ...minimal, kind: 'unnamed', process: (r, ctx) => ctx.emitTo('nowhere', r) }) as unknown as OperatorDefinition);
    expect(() => s.feed('k', {})).toThrow(/'nowhere' is not one of the operator's outputs \(none declared\)/);
  });

  it('keeps state and timers in key groups: a snapshot restored elsewhere fires the same timers', () => {
    const def = defineOperator({
      ...minimal,
      kind: 'later',
      state: { n: valueState<number>() },
      process(_rec, ctx) {
        ctx.state.n.update((ctx.state.n.value() ?? 0) + 1);
        ctx.timers.registerEventTime(50);
      },
      onTimer(_ts, ctx) {
        ctx.emit({ key: ctx.currentKey, n: ctx.state.n.value() });
      },
    });
    const a = run(def as unknown as OperatorDefinition);
    a.feed('x', {});
    a.feed('x', {});
    const snap = a.backend.snapshot(Array.from({ length: 128 }, (_, i) => i));
    const b = run(def as unknown as OperatorDefinition);
    for (const [kg, bytes] of snap) b.backend.restore(kg, bytes);
    b.op.onWatermark!(60, b.output);
    expect(b.out).toEqual([{ key: 'x', n: 2 }]);
  });
});

describe('the catalog with user operators', () => {
  it('lists a registered operator beside the built-ins and validates its settings and side outputs', () => {
    registerOperator(tagger as unknown as OperatorDefinition, 'tagger@abc');
    expect(operatorSpec('tagger')).toMatchObject({ type: 'tagger', kind: 'keyed', label: 'Tagger', outputs: ['repeats'], version: 'tagger@abc' });
    expect(userOperatorSpecs().map((s) => s.type)).toEqual(['tagger']);
    const graph = (settings: Record<string, unknown>, output: string) => ({
      vertices: [
        { id: 'g', type: 'generator', parallelism: 1 },
        { id: 't', type: 'tagger', parallelism: 2, settings },
        { id: 'a', type: 'log', parallelism: 2 },
        { id: 'b', type: 'log', parallelism: 2 },
      ],
      edges: [
        { from: 'g', to: 't', partitioning: 'hash', key: 'user' },
        { from: 't', to: 'a', partitioning: 'forward' },
        { from: 't', to: 'b', partitioning: 'forward', output },
      ],
    });
    const ok = validateGraph(graph({}, 'repeats'));
    expect(ok.ok).toBe(true);
    const bad = validateGraph(graph({ tag: 1 }, 'other'));
    expect(bad.ok ? [] : bad.issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/expected string/i),
      "t has no output 'other' (its side outputs: repeats)",
    ]);
    // An edge from a side output is never chained: the router picks the side output's records out.
    if (!ok.ok) return;
    const chains = buildChains(ok.graph, initialPlan(ok.graph));
    expect(chains.find((c) => c.id === 't')!.vertices.map((v) => v.id)).toEqual(['t']);
  });

  it('refuses a user operator under a built-in’s name', () => {
    const def = defineOperator({ ...minimal, kind: 'count' });
    expect(() => registerOperator(def as unknown as OperatorDefinition, 'count@1')).toThrow(/is a built-in/);
  });

  it('has every built-in transform and keyed operator written on the SDK, under its catalog entry', () => {
    for (const [type, def] of Object.entries(builtinOperators)) {
      const spec = operatorSpec(type)!;
      expect({ kind: def.kind, title: def.title, settings: def.settings, keyed: def.inputs === 'keyed' }).toEqual({
        kind: type,
        title: spec.label,
        settings: spec.settings,
        keyed: spec.kind === 'keyed',
      });
    }
    expect(Object.keys(builtinOperators).sort()).toEqual([
      'aggregate',
      'count',
      'filter',
      'intervalJoin',
      'join',
      'map',
      'statefulCounter',
      'sum',
      'window',
      'windowJoin',
    ]);
  });
});

describe('a job records the user operators’ versions', () => {
  const graph = () => {
    const r = validateGraph({
      vertices: [
        { id: 'g', type: 'generator', parallelism: 1 },
        { id: 't', type: 'tagger', parallelism: 1 },
        { id: 'l', type: 'log', parallelism: 1 },
      ],
      edges: [
        { from: 'g', to: 't', partitioning: 'hash', key: 'user' },
        { from: 't', to: 'l', partitioning: 'forward' },
      ],
    });
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.graph;
  };

  it('in its plan at deploy, kept through a rescale, and a process without that version refuses to run it', () => {
    registerOperator(tagger as unknown as OperatorDefinition, 'tagger@aaa');
    const g = graph();
    const plan = initialPlan(g);
    expect(plan.operators).toEqual({ tagger: 'tagger@aaa' });
    const chain = buildChains(g, plan).find((c) => c.id === 't')!;
    expect(rescaledPlan(plan, chain, 2, 7).operators).toEqual({ tagger: 'tagger@aaa' });
    expect(operatorVersionProblem(plan, g.vertices, 'w1')).toBeUndefined();

    registerOperator(tagger as unknown as OperatorDefinition, 'tagger@bbb');
    expect(operatorVersionProblem(plan, g.vertices, 'w1')).toMatch(
      /^worker w1 has operator 'tagger' at tagger@bbb, but the job was deployed with tagger@aaa: it refuses to run other code/,
    );
    clearUserOperators();
    expect(operatorVersionProblem(plan, g.vertices, 'w1')).toMatch(
      /^worker w1 has no operator 'tagger' \(the job was deployed with tagger@aaa\): start the worker with KEYFLOW_OPERATORS/,
    );
  });

  it('records nothing for built-ins', () => {
    const r = validateGraph({
      vertices: [
        { id: 'g', type: 'generator', parallelism: 1 },
        { id: 'c', type: 'count', parallelism: 1 },
        { id: 'l', type: 'log', parallelism: 1 },
      ],
      edges: [
        { from: 'g', to: 'c', partitioning: 'hash', key: 'user' },
        { from: 'c', to: 'l', partitioning: 'forward' },
      ],
    });
    expect(r.ok && initialPlan(r.graph).operators).toBeUndefined();
  });
});
