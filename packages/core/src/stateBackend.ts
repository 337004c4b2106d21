import { decodeValue, encodeValue } from './codec.ts';
import type { Key } from './hashing.ts';
import { keyGroupFor } from './keyGroups.ts';

/** The state of one key, scoped by the backend's current key. */
export interface ValueState<T> {
  value(): T | undefined;
  update(value: T): void;
  clear(): void;
}

export interface ListState<T> {
  get(): readonly T[];
  add(value: T): void;
  update(values: T[]): void;
  clear(): void;
}

export interface MapState<K extends Key, V> {
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  remove(key: K): void;
  entries(): IterableIterator<[K, V]>;
  clear(): void;
}

export interface ReducingState<T> {
  get(): T | undefined;
  add(value: T): void;
  clear(): void;
}

type Kind = 'value' | 'list' | 'map' | 'reducing';

/** One named state: a map from key to value per key group, allocated only for groups that hold keys. */
class StateTable {
  readonly groups: (Map<Key, unknown> | undefined)[];
  constructor(
    readonly kind: Kind,
    maxParallelism: number,
  ) {
    this.groups = new Array(maxParallelism);
  }
  group(kg: number): Map<Key, unknown> {
    let g = this.groups[kg];
    if (!g) this.groups[kg] = g = new Map();
    return g;
  }
}

/** The serialized form of one key group: per state name its kind and its keys and values side by side. */
type KeyGroupSnapshot = Record<string, { kind: Kind; keys: Key[]; values: unknown[] }>;
/** What changed in one key group since a copy of it: per state name the keys set (with their values) and removed. */
type KeyGroupDelta = Record<string, { kind: Kind; keys: Key[]; values: unknown[]; removed: Key[] }>;

/** One key group's share of every state: per state its name, kind and map (undefined when it holds nothing). */
type StateGroups = [name: string, kind: Kind, group: Map<Key, unknown> | undefined][];

const copyValue = (kind: Kind, v: unknown) => (kind === 'map' ? [...(v as Map<Key, unknown>)] : v);

/** A key's value as it is now, in its serialized shape, and deep: nothing done to the live value later reaches it. */
const frozenValue = (kind: Kind, v: unknown) => {
  const c = copyValue(kind, v);
  return c !== null && typeof c === 'object' ? decodeValue(encodeValue(c)) : c;
};

/** In a key's values as they were before a snapshot began: it had none in that state. */
const ABSENT: unique symbol = Symbol('absent');

/** An asynchronous snapshot under way. */
interface Copying {
  /** Per key group, 1 while it is still to be serialized. */
  due: Uint8Array;
  left: number;
  out: Map<number, Buffer>;
  /** The states as the snapshot began (one created after has nothing in it). */
  tables: [name: string, table: StateTable][];
  /**
   * Per key group still due, the keys accessed since the snapshot began, each with its value per state (in `tables`'
   * order) as it was then: copy on write per entry, as Flink's heap backend does.
   */
  before: (Map<Key, unknown[]> | undefined)[];
}
const loadValue = (kind: Kind, v: unknown) => (kind === 'map' ? new Map(v as [Key, unknown][]) : v);

/**
 * Keyed state in memory, partitioned by key group, as Flink's heap backend: handles are scoped to the current
 * key, and any set of key groups can be serialized to bytes and loaded back, which is what checkpoints and
 * rescales move.
 */
export class KeyedStateBackend {
  private readonly tables = new Map<string, StateTable>();
  private key: Key = '';
  private kg = 0;
  /** The running asynchronous snapshot, if any: which key groups it has still to serialize, and what it made. */
  private copying: Copying | undefined;
  /** Per key group under change tracking, the keys accessed since it was last copied (see copyTracked). */
  private changes: (Set<Key> | undefined)[] | undefined;

  /** Told the number of each key group whose state was loaded (a restore, a handover's copy or delta). */
  private readonly loadListeners: ((keyGroup: number) => void)[] = [];

  constructor(readonly maxParallelism: number) {}

  /** Calls `listener` after each key group whose state was loaded: indexes built on state (timers) rebuild from it. */
  onGroupLoaded(listener: (keyGroup: number) => void): void {
    this.loadListeners.push(listener);
  }

  /** One state's keys and values in a key group, as held (a map state's value is its Map). */
  entriesIn(name: string, keyGroup: number): IterableIterator<[Key, unknown]> {
    return (this.tables.get(name)?.groups[keyGroup] ?? new Map<Key, unknown>()).entries();
  }

  /** Scopes every handle to `key`; pass its key group when the caller already computed it. */
  setCurrentKey(key: Key, keyGroup = keyGroupFor(key, this.maxParallelism)): void {
    // Copy on write, per entry: in a group an asynchronous snapshot has not reached yet, a key's values are kept as
    // they were before its first access after the snapshot began (every handle reads and writes through the current
    // key, and a value read may be changed in place).
    if (this.copying?.due[keyGroup]) this.keepBefore(this.copying, keyGroup, key);
    this.changes?.[keyGroup]?.add(key);
    this.key = key;
    this.kg = keyGroup;
  }

  get currentKey(): Key {
    return this.key;
  }

  private table(name: string, kind: Kind): StateTable {
    let t = this.tables.get(name);
    if (!t) this.tables.set(name, (t = new StateTable(kind, this.maxParallelism)));
    else if (t.kind !== kind) throw new Error(`state '${name}' is a ${t.kind} state, not a ${kind} state`);
    return t;
  }

  valueState<T>(name: string): ValueState<T> {
    const t = this.table(name, 'value');
    return {
      value: () => t.groups[this.kg]?.get(this.key) as T | undefined,
      update: (v) => void t.group(this.kg).set(this.key, v),
      clear: () => void t.groups[this.kg]?.delete(this.key),
    };
  }

  listState<T>(name: string): ListState<T> {
    const t = this.table(name, 'list');
    const list = () => {
      const g = t.group(this.kg);
      let l = g.get(this.key) as T[] | undefined;
      if (!l) g.set(this.key, (l = []));
      return l;
    };
    return {
      get: () => (t.groups[this.kg]?.get(this.key) as T[] | undefined) ?? [],
      add: (v) => void list().push(v),
      update: (vs) => void t.group(this.kg).set(this.key, [...vs]),
      clear: () => void t.groups[this.kg]?.delete(this.key),
    };
  }

  mapState<K extends Key, V>(name: string): MapState<K, V> {
    const t = this.table(name, 'map');
    const current = () => t.groups[this.kg]?.get(this.key) as Map<K, V> | undefined;
    const map = () => {
      const g = t.group(this.kg);
      let m = g.get(this.key) as Map<K, V> | undefined;
      if (!m) g.set(this.key, (m = new Map()));
      return m;
    };
    return {
      get: (k) => current()?.get(k),
      put: (k, v) => void map().set(k, v),
      remove: (k) => {
        const m = current();
        // A key whose map is empty holds no state: nothing of it is kept or snapshotted.
        if (m?.delete(k) && m.size === 0) t.groups[this.kg]!.delete(this.key);
      },
      entries: () => (current() ?? new Map<K, V>()).entries(),
      clear: () => void t.groups[this.kg]?.delete(this.key),
    };
  }

  reducingState<T>(name: string, reduce: (a: T, b: T) => T): ReducingState<T> {
    const t = this.table(name, 'reducing');
    return {
      get: () => t.groups[this.kg]?.get(this.key) as T | undefined,
      add: (v) => {
        const g = t.group(this.kg);
        const prev = g.get(this.key) as T | undefined;
        g.set(this.key, prev === undefined ? v : reduce(prev, v));
      },
      clear: () => void t.groups[this.kg]?.delete(this.key),
    };
  }

  /** Each state's map for one key group. */
  private groupsOf(kg: number): StateGroups {
    return [...this.tables].map(([name, t]) => [name, t.kind, t.groups[kg]]);
  }

  /** Serializes one key group, or returns undefined when it holds no state. */
  private encodeGroup(kg: number): Buffer | undefined {
    return encodeGroups(this.groupsOf(kg));
  }

  /**
   * Takes the given key groups out of this backend (a rescale moves them elsewhere) and returns a function that
   * serializes what they held, later: nothing changes them any more.
   */
  detach(keyGroups: Iterable<number>): (kg: number) => Buffer | undefined {
    const taken = new Map<number, StateGroups>();
    for (const kg of keyGroups) {
      if (this.copying?.due[kg]) this.copyDue(kg);
      taken.set(kg, this.groupsOf(kg));
      for (const t of this.tables.values()) t.groups[kg] = undefined;
      if (this.changes) this.changes[kg] = undefined;
    }
    return (kg) => {
      const groups = taken.get(kg);
      taken.delete(kg);
      return groups && encodeGroups(groups);
    };
  }

  /**
   * Starts recording which keys of the given groups are accessed (a rescale's pre-copy: the groups are copied
   * while processing goes on, then only what changed since is sent at the barrier).
   */
  trackChanges(keyGroups: Iterable<number>): void {
    this.changes ??= new Array(this.maxParallelism);
    for (const kg of keyGroups) this.changes[kg] = new Set();
  }

  /** Serializes a tracked key group as it is now; what changes from here on makes up its `delta`. */
  copyTracked(kg: number): Buffer | undefined {
    this.changes?.[kg]?.clear();
    return this.encodeGroup(kg);
  }

  /** What changed in a tracked key group since `copyTracked`: the keys accessed, with their state now or as removed. */
  delta(kg: number): Buffer {
    const accessed = this.changes?.[kg] ?? new Set<Key>();
    const out: KeyGroupDelta = {};
    for (const [name, t] of this.tables) {
      const g = t.groups[kg];
      const d: KeyGroupDelta[string] = { kind: t.kind, keys: [], values: [], removed: [] };
      for (const k of accessed) {
        if (g?.has(k)) {
          d.keys.push(k);
          d.values.push(copyValue(t.kind, g.get(k)));
        } else d.removed.push(k);
      }
      if (d.keys.length || d.removed.length) out[name] = d;
    }
    return encodeValue(out);
  }

  /** Applies a `delta` on top of the copy loaded before it. */
  applyDelta(keyGroup: number, bytes: Uint8Array): void {
    if (this.copying?.due[keyGroup]) this.copyDue(keyGroup);
    for (const [name, { kind, keys, values, removed }] of Object.entries(decodeValue<KeyGroupDelta>(bytes))) {
      const g = this.table(name, kind).group(keyGroup);
      for (let i = 0; i < keys.length; i++) g.set(keys[i]!, loadValue(kind, values[i]));
      for (const k of removed) g.delete(k);
    }
    for (const l of this.loadListeners) l(keyGroup);
  }

  /** Stops recording changes (the rescale they were for is over). */
  stopTracking(): void {
    this.changes = undefined;
  }

  /** Serializes the given key groups now; groups without any state are left out. */
  snapshot(keyGroups: Iterable<number>): Map<number, Buffer> {
    const out = new Map<number, Buffer>();
    for (const kg of keyGroups) {
      const bytes = this.encodeGroup(kg);
      if (bytes) out.set(kg, bytes);
    }
    return out;
  }

  /**
   * Serializes the given key groups as they are now, but in the background: the caller goes on updating state
   * at once (Flink's asynchronous snapshot of the heap backend, with copy-on-write per entry). It serializes
   * whole key groups in slices of about `slice.ms` (default 15), or of `slice.entries` entries, and yields to the
   * event loop between them. Groups without state are left out.
   *
   * Slices by time rather than by entries: every key a record touches before its group is serialized is copied
   * first, so short slices, interleaved with processing at full speed, cost more than they spare. Measured with a
   * million keys of count state at p=2 on 2 cores, slices of 20,000 entries (about 3 ms) stretched the snapshot to
   * about a second; slices of about 15 ms end it in less than half that, for pauses no longer than one slice.
   */
  async snapshotAsync(keyGroups: Iterable<number>, slice: { ms?: number; entries?: number } = {}): Promise<Map<number, Buffer>> {
    const { entries: sliceEntries = Infinity, ms: sliceMs = slice.entries === undefined ? 15 : Infinity } = slice;
    this.settle();
    const due = new Uint8Array(this.maxParallelism);
    const order: number[] = [];
    for (const kg of keyGroups)
      if (!due[kg]) {
        due[kg] = 1;
        order.push(kg);
      }
    if (order.length === 0) return new Map();
    const copying: Copying = { due, left: order.length, out: new Map(), tables: [...this.tables], before: new Array(this.maxParallelism) };
    this.copying = copying;
    let sinceYield = 0;
    let sliceStart = performance.now();
    for (const kg of order) {
      if (copying.left === 0) break;
      if (!due[kg]) continue;
      sinceYield += this.keyCount(kg);
      this.copyDue(kg);
      if ((sinceYield >= sliceEntries || performance.now() - sliceStart >= sliceMs) && copying.left > 0) {
        await new Promise((r) => setImmediate(r));
        sinceYield = 0;
        sliceStart = performance.now();
      }
    }
    return copying.out;
  }

  /** Keeps `key`'s values in group `kg` as they are now, unless they were kept already in this snapshot. */
  private keepBefore(c: Copying, kg: number, key: Key): void {
    let before = c.before[kg];
    if (!before) c.before[kg] = before = new Map();
    if (before.has(key)) return;
    const values: unknown[] = new Array(c.tables.length);
    for (let i = 0; i < c.tables.length; i++) {
      const t = c.tables[i]![1];
      const g = t.groups[kg];
      values[i] = g?.has(key) ? frozenValue(t.kind, g.get(key)) : ABSENT;
    }
    before.set(key, values);
  }

  /** Serializes a due group as it was when the snapshot began: its live entries, with those accessed since as kept. */
  private copyDue(kg: number): void {
    const c = this.copying!;
    c.due[kg] = 0;
    const before = c.before[kg];
    c.before[kg] = undefined;
    const bytes = before ? encodeAsBefore(c.tables, kg, before) : encodeGroups(c.tables.map(([name, t]) => [name, t.kind, t.groups[kg]]));
    if (bytes) c.out.set(kg, bytes);
    if (--c.left === 0) this.copying = undefined;
  }

  /** Finishes a running asynchronous snapshot at once (before another one starts). */
  private settle(): void {
    const c = this.copying;
    if (!c) return;
    for (let kg = 0; kg < this.maxParallelism && this.copying === c; kg++) if (c.due[kg]) this.copyDue(kg);
  }

  /** Loads one key group's bytes as made by `snapshot`, replacing what the group held. */
  restore(keyGroup: number, bytes: Uint8Array): void {
    if (this.copying?.due[keyGroup]) this.copyDue(keyGroup);
    const snap = decodeValue<KeyGroupSnapshot>(bytes);
    for (const t of this.tables.values()) t.groups[keyGroup] = undefined;
    for (const [name, { kind, keys, values }] of Object.entries(snap)) {
      const g = this.table(name, kind).group(keyGroup);
      for (let i = 0; i < keys.length; i++) g.set(keys[i]!, loadValue(kind, values[i]));
    }
    for (const l of this.loadListeners) l(keyGroup);
  }

  /** Entries held over all state tables (a key with two states counts twice), in one key group or in all. */
  keyCount(keyGroup?: number): number {
    let n = 0;
    for (const t of this.tables.values()) {
      if (keyGroup !== undefined) n += t.groups[keyGroup]?.size ?? 0;
      else for (const g of t.groups) n += g?.size ?? 0;
    }
    return n;
  }
}

/** Serializes key group `kg` of `tables` as it was before the keys in `before` were accessed (their values then). */
function encodeAsBefore(tables: Copying['tables'], kg: number, before: Map<Key, unknown[]>): Buffer | undefined {
  const snap: KeyGroupSnapshot = {};
  let any = false;
  for (let i = 0; i < tables.length; i++) {
    const [name, t] = tables[i]!;
    const g = t.groups[kg];
    const keys: Key[] = [];
    const values: unknown[] = [];
    if (g)
      for (const [k, v] of g) {
        const kept = before.get(k);
        if (!kept) {
          keys.push(k);
          values.push(copyValue(t.kind, v));
        } else if (kept[i] !== ABSENT) {
          keys.push(k);
          values.push(kept[i]);
        }
      }
    // Keys cleared since.
    for (const [k, kept] of before)
      if (kept[i] !== ABSENT && !g?.has(k)) {
        keys.push(k);
        values.push(kept[i]);
      }
    if (keys.length) {
      snap[name] = { kind: t.kind, keys, values };
      any = true;
    }
  }
  return any ? encodeValue(snap) : undefined;
}

/** Serializes one key group given each state's map for it, or returns undefined when none holds anything. */
function encodeGroups(groups: StateGroups): Buffer | undefined {
  const snap: KeyGroupSnapshot = {};
  let any = false;
  for (const [name, kind, g] of groups) {
    if (!g || g.size === 0) continue;
    const keys: Key[] = [];
    const values: unknown[] = [];
    for (const [k, v] of g) {
      keys.push(k);
      values.push(copyValue(kind, v));
    }
    snap[name] = { kind, keys, values };
    any = true;
  }
  return any ? encodeValue(snap) : undefined;
}
