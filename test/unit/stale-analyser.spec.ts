import { describe, expect, it } from 'vitest';
import {
  analyse,
  phaseOf,
  type FaultTimeline,
  type OpRecord,
  type VersionId,
} from '../helpers/stale-analyser.js';

/**
 * The stale-read analyser is the oracle of the cross-process chaos harness: every figure the
 * harness prints comes from it. Each rule has a case that must be judged stale and one that
 * must not, on hand-made logs whose times (ms) are chosen so the answer is obvious.
 */

/** Fault from 1000 to 2000: reads before 1000 are "before", 2000–3000 "afterHeal", ≥ 3000 "late". */
const TIMELINE: FaultTimeline = { faultStart: 1_000, heal: 2_000 };

function v(writer: number, seq: number): VersionId {
  return { writer, seq };
}

function set(
  key: string,
  version: VersionId,
  start: number,
  end: number,
  outcome: 'ok' | 'error' = 'ok',
): OpRecord {
  return { key, kind: 'set', outcome, start, end, version };
}

function del(key: string, start: number, end: number, outcome: 'ok' | 'error' = 'ok'): OpRecord {
  return { key, kind: 'delete', outcome, start, end };
}

function get(key: string, version: VersionId, start: number, end = start + 1): OpRecord {
  return { key, kind: 'get', outcome: 'ok', start, end, version, valueKey: key };
}

function miss(key: string, start: number, end = start + 1): OpRecord {
  return { key, kind: 'get', outcome: 'miss', start, end };
}

function sweep(key: string, version: VersionId | undefined, start: number): OpRecord {
  return version === undefined
    ? { key, kind: 'sweep', outcome: 'miss', start, end: start + 1 }
    : { key, kind: 'sweep', outcome: 'ok', start, end: start + 1, version, valueKey: key };
}

function stale(records: OpRecord[], options = {}): number {
  return analyse(records, TIMELINE, options).stale;
}

describe('stale-read analyser: the rule', () => {
  it('a value superseded by a write that completed before the read began is stale', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(1);
  });

  it('the newest completed value is not stale', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30)];
    expect(stale([...log, get('a', v(2, 1), 40)])).toBe(0);
  });

  it('concurrent writes are never judged: either order is correct', () => {
    // The second write began before the first completed.
    const log = [set('a', v(1, 1), 0, 25), set('a', v(2, 1), 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40), get('a', v(2, 1), 41)])).toBe(0);
  });

  it('a newer write still running when the read began does not make the read stale', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 45)];
    expect(stale([...log, get('a', v(1, 1), 40, 50)])).toBe(0);
    // Once it has completed, the same old value is stale.
    expect(stale([...log, get('a', v(1, 1), 46, 50)])).toBe(1);
  });

  it('a value whose write was still running when the read began is not stale', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 35, 60)];
    expect(stale([...log, get('a', v(2, 1), 40, 50)])).toBe(0);
  });

  it('writes of other keys never make a read stale', () => {
    const log = [set('a', v(1, 1), 0, 10), set('b', v(1, 2), 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(0);
  });

  it('versions are told apart by writer and sequence number', () => {
    // Writer 2's seq 1 is not writer 1's seq 1.
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30), set('a', v(1, 2), 50, 60)];
    expect(stale([...log, get('a', v(2, 1), 40)])).toBe(0);
    expect(stale([...log, get('a', v(2, 1), 70)])).toBe(1);
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(1);
  });

  it('a value superseded twice is one stale read', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(1, 2), 20, 30), set('a', v(1, 3), 40, 50)];
    expect(stale([...log, get('a', v(1, 1), 60)])).toBe(1);
    expect(stale([...log, get('a', v(1, 2), 60)])).toBe(1);
  });
});

describe('stale-read analyser: deletes and misses', () => {
  it('a completed delete supersedes the value before it', () => {
    const log = [set('a', v(1, 1), 0, 10), del('a', 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(1);
  });

  it('a delete concurrent with the write does not', () => {
    const log = [set('a', v(1, 1), 0, 25), del('a', 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(0);
  });

  it('a value written after a delete is not stale', () => {
    const log = [del('a', 0, 10), set('a', v(1, 1), 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(0);
  });

  it('a miss is never stale, whatever was written before', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(1, 2), 20, 30)];
    const report = analyse([...log, miss('a', 40)], TIMELINE);
    expect(report.stale).toBe(0);
    expect(report.misses).toBe(1);
  });
});

describe('stale-read analyser: writes that threw', () => {
  it('the value of a write that threw is never stale: it may land at any time', () => {
    const log = [set('a', v(1, 1), 0, 10, 'error'), set('a', v(2, 1), 20, 30)];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(0);
  });

  it('a write that threw supersedes nothing: it never completed', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30, 'error')];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(0);
    // The same log with that write acknowledged: stale.
    const acked = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30)];
    expect(stale([...acked, get('a', v(1, 1), 40)])).toBe(1);
  });

  it('a delete that threw supersedes nothing either', () => {
    const log = [set('a', v(1, 1), 0, 10), del('a', 20, 30, 'error')];
    expect(stale([...log, get('a', v(1, 1), 40)])).toBe(0);
  });

  it('calls that threw are counted in the phase they began in', () => {
    const failedRead: OpRecord = {
      key: 'a',
      kind: 'get',
      outcome: 'error',
      start: 1_500,
      end: 1_700,
    };
    const report = analyse(
      [set('a', v(1, 1), 500, 510, 'error'), failedRead, del('a', 2_500, 2_510, 'error')],
      TIMELINE,
    );
    expect(report.errors).toBe(3);
    expect(report.phases.before.errors).toBe(1);
    expect(report.phases.during.errors).toBe(1);
    expect(report.phases.afterHeal.errors).toBe(1);
    expect(report.phases.during.reads).toBe(1);
    expect(report.phases.before.writes).toBe(1);
  });
});

describe('stale-read analyser: values that are wrong, not old', () => {
  it('a value naming another key is a wrong key, not a stale read', () => {
    const log = [set('b', v(1, 1), 0, 10)];
    const read: OpRecord = { ...get('a', v(1, 1), 40), valueKey: 'b' };
    const report = analyse([...log, read], TIMELINE);
    expect(report.wrongKey).toBe(1);
    expect(report.stale).toBe(0);
  });

  it('a value of its own key is not a wrong key', () => {
    const report = analyse([set('a', v(1, 1), 0, 10), get('a', v(1, 1), 40)], TIMELINE);
    expect(report.wrongKey).toBe(0);
  });

  it('a version written for another key is a wrong key even if the value names this one', () => {
    const report = analyse([set('b', v(1, 1), 0, 10), get('a', v(1, 1), 40)], TIMELINE);
    expect(report.wrongKey).toBe(1);
  });

  it('a version nobody wrote is counted apart', () => {
    const report = analyse([set('a', v(1, 1), 0, 10), get('a', v(3, 9), 40)], TIMELINE);
    expect(report).toMatchObject({ unknownVersions: 1, stale: 0, wrongKey: 0 });
  });

  it('a value written after the read ended is impossible, not fresh', () => {
    const report = analyse([set('a', v(1, 1), 50, 60), get('a', v(1, 1), 40, 45)], TIMELINE);
    expect(report).toMatchObject({ impossible: 1, stale: 0 });
    const fine = analyse([set('a', v(1, 1), 42, 60), get('a', v(1, 1), 40, 45)], TIMELINE);
    expect(fine.impossible).toBe(0);
  });
});

describe('stale-read analyser: phases and the final sweep', () => {
  it('phases are told by when the call began', () => {
    expect(phaseOf({ kind: 'get', start: 999 }, TIMELINE)).toBe('before');
    expect(phaseOf({ kind: 'get', start: 1_000 }, TIMELINE)).toBe('during');
    expect(phaseOf({ kind: 'get', start: 1_999 }, TIMELINE)).toBe('during');
    expect(phaseOf({ kind: 'get', start: 2_000 }, TIMELINE)).toBe('afterHeal');
    expect(phaseOf({ kind: 'get', start: 2_999 }, TIMELINE)).toBe('afterHeal');
    expect(phaseOf({ kind: 'get', start: 3_000 }, TIMELINE)).toBe('late');
    expect(phaseOf({ kind: 'sweep', start: 100 }, TIMELINE)).toBe('sweep');
    expect(phaseOf({ kind: 'get', start: 2_600 }, TIMELINE, 500)).toBe('late');
  });

  it('stale reads are counted per phase; after the heal counts the late ones too', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(1, 2), 20, 30)];
    const reads = [500, 1_500, 1_600, 2_500, 3_500, 3_600].map((t) => get('a', v(1, 1), t));
    const report = analyse([...log, ...reads, get('a', v(1, 2), 3_700)], TIMELINE);
    expect(report.phases.before.stale).toBe(1);
    expect(report.phases.during.stale).toBe(2);
    expect(report.phases.afterHeal.stale).toBe(1);
    expect(report.phases.late.stale).toBe(2);
    expect(report.phases.late.reads).toBe(3);
    expect(report.staleAfterHeal).toBe(3);
    expect(report.staleLate).toBe(2);
    expect(report.stale).toBe(6);
  });

  it('a stale read just under a second after the heal is not late; just over it is', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(1, 2), 20, 30)];
    expect(analyse([...log, get('a', v(1, 1), 2_999)], TIMELINE).staleLate).toBe(0);
    expect(analyse([...log, get('a', v(1, 1), 3_001)], TIMELINE).staleLate).toBe(1);
  });

  it('stale keys at the end: distinct keys with a stale read in the final sweep', () => {
    const log = [
      set('a', v(1, 1), 0, 10),
      set('a', v(1, 2), 20, 30),
      set('b', v(1, 3), 0, 10),
      set('b', v(1, 4), 20, 30),
      set('c', v(1, 5), 0, 10),
      del('c', 20, 30),
    ];
    const report = analyse(
      [
        ...log,
        // Two processes read a's old value: one key.
        sweep('a', v(1, 1), 5_000),
        sweep('a', v(1, 1), 5_001),
        sweep('b', v(1, 4), 5_000),
        sweep('c', undefined, 5_000),
        // A stale read during the fault is not a stale key at the end.
        get('b', v(1, 3), 1_500),
      ],
      TIMELINE,
    );
    expect(report.staleKeysAtEnd).toBe(1);
    expect(report.keysSwept).toBe(3);
    expect(report.phases.sweep).toMatchObject({ reads: 4, stale: 2, misses: 1 });
    expect(report.staleAfterHeal).toBe(0);
  });

  it('keeps a few stale reads as examples, saying what superseded them', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30)];
    const report = analyse([...log, get('a', v(1, 1), 2_500)], TIMELINE);
    expect(report.examples).toEqual([
      {
        key: 'a',
        phase: 'afterHeal',
        readStart: 2_500,
        read: v(1, 1),
        readWrittenEnd: 10,
        supersededByStart: 20,
      },
    ]);
    const none = analyse([...log, get('a', v(1, 1), 2_500)], TIMELINE, { examples: 0 });
    expect(none.examples).toEqual([]);
  });
});

describe('stale-read analyser: clocks of separate processes', () => {
  it('slack: a write that completed within slackMs of the read is not "before" it', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 20, 30)];
    const read = get('a', v(1, 1), 30.5);
    expect(stale([...log, read])).toBe(1);
    expect(stale([...log, read], { slackMs: 1 })).toBe(0);
  });

  it('slack: writes closer than slackMs are concurrent', () => {
    const log = [set('a', v(1, 1), 0, 10), set('a', v(2, 1), 10.5, 30)];
    const read = get('a', v(1, 1), 100);
    expect(stale([...log, read])).toBe(1);
    expect(stale([...log, read], { slackMs: 1 })).toBe(0);
  });
});
