import { describe, expect, it } from 'vitest';
import { canRedo, canUndo, commit, redo, startHistory, transient, undo } from './history';

describe('undo and redo', () => {
  it('undoes and redoes committed steps', () => {
    let h = startHistory('a');
    h = commit(h, 'b');
    h = commit(h, 'c');
    expect(canUndo(h)).toBe(true);
    h = undo(h);
    expect(h.present).toBe('b');
    h = undo(h);
    expect(h.present).toBe('a');
    expect(canUndo(h)).toBe(false);
    h = redo(redo(h));
    expect(h.present).toBe('c');
    expect(canRedo(h)).toBe(false);
  });

  it('a new step drops the redo branch', () => {
    let h = commit(commit(startHistory(1), 2), 3);
    h = commit(undo(h), 4);
    expect(canRedo(h)).toBe(false);
    expect(undo(h).present).toBe(2);
  });

  it('transient changes are no step: undo goes back before them', () => {
    let h = commit(startHistory('a'), 'b');
    h = transient(h, 'b-dragging');
    expect(h.present).toBe('b-dragging');
    h = undo(h);
    expect(h.present).toBe('a');
    expect(redo(h).present).toBe('b-dragging');
  });

  it('commits with the same key in a row make one step (typing into one field)', () => {
    let h = startHistory('');
    for (const text of ['u', 'us', 'use', 'user']) h = commit(h, text, 'key');
    h = commit(h, 'user!', 'other');
    expect(undo(h).present).toBe('user');
    expect(undo(undo(h)).present).toBe('');
  });
});
