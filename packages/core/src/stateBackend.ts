import { decodeValue, encodeValue } from './codec.ts';
import type { Key } from './hashing.ts';
import { keyGroupFor, type KeyGroupRange } from './keyGroups.ts';

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

/**
 * Keyed state in memory, partitioned by key group, as Flink's heap backend: handles are scoped to the current
 * key, and any set of key groups can be serialized to bytes and loaded back, which is what checkpoints and
 * rescales move.
 */
export class KeyedStateBackend {
  private readonly tables = new Map<string, StateTable>();
  private key: Key = '';
  private kg = 0;

  constructor(readonly maxParallelism: number) {}

  /** Scopes every handle to `key`; pass its key group when the caller already computed it. */
  setCurrentKey(key: Key, keyGroup = keyGroupFor(key, this.maxParallelism)): void {
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
      remove: (k) => void current()?.delete(k),
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

  /** Serializes the given key groups; groups without any state are left out. */
  snapshot(keyGroups: Iterable<number>): Map<number, Buffer> {
    const out = new Map<number, Buffer>();
    for (const kg of keyGroups) {
      const snap: KeyGroupSnapshot = {};
      let any = false;
      for (const [name, t] of this.tables) {
        const g = t.groups[kg];
        if (!g || g.size === 0) continue;
        const keys: Key[] = [];
        const values: unknown[] = [];
        for (const [k, v] of g) {
          keys.push(k);
          values.push(t.kind === 'map' ? [...(v as Map<Key, unknown>)] : v);
        }
        snap[name] = { kind: t.kind, keys, values };
        any = true;
      }
      if (any) out.set(kg, encodeValue(snap));
    }
    return out;
  }

  /** Loads one key group's bytes as made by `snapshot`, replacing what the group held. */
  restore(keyGroup: number, bytes: Uint8Array): void {
    const snap = decodeValue<KeyGroupSnapshot>(bytes);
    for (const t of this.tables.values()) t.groups[keyGroup] = undefined;
    for (const [name, { kind, keys, values }] of Object.entries(snap)) {
      const g = this.table(name, kind).group(keyGroup);
      for (let i = 0; i < keys.length; i++) {
        const v = values[i];
        g.set(keys[i]!, kind === 'map' ? new Map(v as [Key, unknown][]) : v);
      }
    }
  }

  /** Forgets every key group outside `keep` (after a rescale took them elsewhere). */
  retainOnly(keep: KeyGroupRange): void {
    for (const t of this.tables.values())
      for (let kg = 0; kg < this.maxParallelism; kg++) if (kg < keep.start || kg > keep.end) t.groups[kg] = undefined;
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
