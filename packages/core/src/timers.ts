import TinyQueue from 'tinyqueue';
import type { Key } from './hashing.ts';
import { keyGroupFor } from './keyGroups.ts';
import type { KeyedStateBackend, MapState } from './stateBackend.ts';

/**
 * Timers per key, kept as keyed state (a map state of timestamps per key), so checkpoints, recoveries and live
 * rescales move them with the key groups like any other state. An index in memory (timestamps in a min-heap, the
 * keys due at each) finds the due ones; it is rebuilt from state for every key group the backend loads. A timer
 * whose key group left this subtask is simply not found in state any more when it comes due, and skipped.
 */
export class KeyedTimers {
  private readonly state: MapState<number, 1>;
  private readonly heap = new TinyQueue<number>();
  private readonly keysAt = new Map<number, Set<Key>>();

  constructor(
    private readonly backend: KeyedStateBackend,
    private readonly name: string,
    /**
     * Whether the subtask owns a key group now. A rescale's pre-copy loads groups ahead of its barrier, while their
     * old owner still runs them: their timers must not fire here. They are indexed again when the group is loaded at
     * the barrier (every gained group is), so skipping them loses nothing.
     */
    private readonly owns: (keyGroup: number) => boolean = () => true,
  ) {
    this.state = backend.mapState<number, 1>(name);
    backend.onGroupLoaded((kg) => this.reindex(kg));
  }

  /** Registers a timer at `ts` for the current key (once, however often it is registered). */
  register(ts: number): void {
    if (this.state.get(ts) !== undefined) return;
    this.state.put(ts, 1);
    this.index(ts, this.backend.currentKey);
  }

  /** Deletes the current key's timer at `ts`. */
  delete(ts: number): void {
    this.state.remove(ts);
    if (this.state.entries().next().done) this.state.clear();
  }

  /** The earliest timestamp a timer may be due at, if any (it may have been deleted since). */
  get next(): number | undefined {
    return this.heap.peek();
  }

  /**
   * Fires every timer at or before `time`, in time order: for each, scopes the backend to its key, removes it,
   * and calls `fire`. Timers that `fire` registers at or before `time` fire in the same call.
   */
  advance(time: number, fire: (ts: number, key: Key) => void): void {
    while (this.heap.length && this.heap.peek()! <= time) {
      const ts = this.heap.pop()!;
      const keys = this.keysAt.get(ts)!;
      this.keysAt.delete(ts);
      for (const key of keys) {
        const kg = keyGroupFor(key, this.backend.maxParallelism);
        if (!this.owns(kg)) continue;
        this.backend.setCurrentKey(key, kg);
        if (this.state.get(ts) === undefined) continue;
        this.state.remove(ts);
        if (this.state.entries().next().done) this.state.clear();
        fire(ts, key);
      }
    }
  }

  private reindex(kg: number): void {
    for (const [key, timers] of this.backend.entriesIn(this.name, kg)) for (const ts of (timers as Map<number, 1>).keys()) this.index(ts, key);
  }

  private index(ts: number, key: Key): void {
    let keys = this.keysAt.get(ts);
    if (!keys) {
      this.keysAt.set(ts, (keys = new Set()));
      this.heap.push(ts);
    }
    keys.add(key);
  }
}
