import { describe, expect, it } from 'vitest';
import { HandoffLog } from '../../lib/core/handoff/handoff-log.js';

/*
 * The hinted handoff's memory, without a server: which node took each write made on an
 * ejected owner's behalf, bounded per owner, and what the owner must catch up on when it
 * returns.
 */
describe('HandoffLog', () => {
  it('remembers the node that took each entry, and names the copy a newer write made stale', () => {
    const log = new HandoffLog(10);
    expect(log.remember('node0', 'k', 'node1')).toBeNull();
    // Written again elsewhere: node1's copy is stale now.
    expect(log.remember('node0', 'k', 'node2')).toBe('node1');
    // Written again on the same node: nothing is stale.
    expect(log.remember('node0', 'k', 'node2')).toBeNull();
    // Deleted meanwhile: node2's copy must go.
    expect(log.remember('node0', 'k', null)).toBe('node2');
    expect(log.remembers('node0', 'k')).toBe(true);
    expect(log.remembers('node1', 'k')).toBe(false);
  });

  it('take() hands over what an owner must catch up on, and forgets it', () => {
    const log = new HandoffLog(10);
    log.remember('node0', 'a', 'node1');
    log.remember('node0', 'b', null);
    log.rememberClear('node0', 'p:');
    log.remember('node1', 'c', 'node2');
    const taken = log.take('node0');
    expect([...taken.hints]).toEqual([
      ['a', 'node1'],
      ['b', null],
    ]);
    expect(taken.clears).toEqual(['p:']);
    expect(taken.overflowed).toBe(false);
    const again = log.take('node0');
    expect(again.hints.size).toBe(0);
    expect(again.clears).toEqual([]);
    // Other owners are untouched.
    expect(log.remembers('node1', 'c')).toBe(true);
  });

  it('past the limit it remembers only that the owner overflowed, and which nodes took the rest', () => {
    const log = new HandoffLog(2);
    log.remember('node0', 'a', 'node1');
    log.remember('node0', 'b', 'node1');
    // Known entries are still updated at the limit.
    expect(log.remember('node0', 'a', 'node2')).toBe('node1');
    log.remember('node0', 'c', 'node2');
    log.remember('node0', 'd', null);
    expect(log.remembers('node0', 'c')).toBe(false);
    expect(log.anySpilled).toBe(true);
    expect(log.holdsSpilled('node2')).toBe(true);
    expect(log.holdsSpilled('node1')).toBe(false);
    // A node holding copies the log forgot is treated as overflowed itself when it returns.
    expect(log.take('node2').overflowed).toBe(true);
    const taken = log.take('node0');
    expect(taken.overflowed).toBe(true);
    expect([...taken.spilledTo]).toEqual(['node2']);
    expect(log.anySpilled).toBe(false);
  });

  it('clearedSpills() forgets a node once it was cleared', () => {
    const log = new HandoffLog(1);
    log.remember('node0', 'a', 'node1');
    log.remember('node0', 'b', 'node2');
    expect(log.holdsSpilled('node2')).toBe(true);
    log.clearedSpills('node2');
    expect(log.holdsSpilled('node2')).toBe(false);
    expect(log.anySpilled).toBe(false);
  });

  it('restore() puts back what a failed handoff took; newer hints win', () => {
    const log = new HandoffLog(10);
    log.remember('node0', 'a', 'node1');
    log.remember('node0', 'b', 'node1');
    log.rememberClear('node0', 'p:');
    const taken = log.take('node0');
    // Written again while the handoff was failing.
    log.remember('node0', 'a', 'node2');
    log.restore('node0', taken);
    const back = log.take('node0');
    expect(back.hints.get('a')).toBe('node2');
    expect(back.hints.get('b')).toBe('node1');
    expect(back.clears).toEqual(['p:']);
  });

  it('a limit of 0 turns it off', () => {
    const log = new HandoffLog(0);
    expect(log.enabled).toBe(false);
    expect(new HandoffLog(1).enabled).toBe(true);
  });

  it('overflow() marks an owner for the overflow policy without any hint', () => {
    const log = new HandoffLog(10);
    log.overflow('node1');
    expect(log.take('node1').overflowed).toBe(true);
    expect(log.take('node1').overflowed).toBe(false);
  });
});
