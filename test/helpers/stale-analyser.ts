/**
 * The oracle of the cross-process chaos harness: given every operation of every process on a
 * shared key space (what was written, what each read returned, when each call began and
 * ended on one clock), it says which reads were stale.
 *
 * A read R of key k is STALE when it returned the value of a write Wx, and some other write W
 * of k began after Wx had completed and completed before R began. Concurrent writes are never
 * judged: if W began before Wx completed, either order is a correct outcome.
 * - A delete is a write of "nothing": reading a value that a completed delete superseded is
 *   stale; a miss is never stale (misses are allowed, a cache may lose entries).
 * - A write that threw has no known end: it may have been applied, and may yet land later.
 *   Its value is never judged stale, and it never makes another value stale.
 * - A value carrying another key's name is a "wrong key": two keys shared an entry.
 * - A value no logged write produced is counted apart (`unknownVersions`), as is a value
 *   whose write began after the read had ended (`impossible`): both mean corruption or a
 *   broken log, never a judgement call.
 *
 * Reads are counted in phases by when they began: before the fault, during it, in the first
 * second after the heal, and later; reads of the final sweep (every key read once more by every
 * process once everything is quiet) give the stale keys at the end.
 */

export type OpKind = 'get' | 'set' | 'delete' | 'sweep';
/** `miss`: a read that found nothing; `error`: the call threw. */
export type OpOutcome = 'ok' | 'miss' | 'error';

/** One write's identity: the process that made it and its sequence number there. */
export interface VersionId {
  writer: number;
  seq: number;
}

/** One call, as a process logged it. Times in ms on a clock shared by every process. */
export interface OpRecord {
  key: string;
  kind: OpKind;
  outcome: OpOutcome;
  start: number;
  end: number;
  /** `set`: the version it wrote. `get`/`sweep` answered `ok`: the version it read. */
  version?: VersionId;
  /** `get`/`sweep` answered `ok`: the key named inside the value read. */
  valueKey?: string;
}

/** When the fault began and when it healed (same clock as the records). */
export interface FaultTimeline {
  faultStart: number;
  heal: number;
}

export interface AnalyseOptions {
  /**
   * Clocks of separate processes agree only to within some tolerance: a write must have
   * completed more than `slackMs` before another began (or before a read began) to count as
   * "before". Default 0.
   */
  slackMs?: number;
  /** Where "after the heal" ends and "late" begins, ms after the heal (default 1000). */
  lateAfterMs?: number;
  /** How many stale reads to keep as examples (default 10). */
  examples?: number;
}

export const PHASES = ['before', 'during', 'afterHeal', 'late', 'sweep'] as const;
export type Phase = (typeof PHASES)[number];

export interface PhaseCounts {
  reads: number;
  stale: number;
  misses: number;
  writes: number;
  /** Calls that threw, reads and writes alike. */
  errors: number;
  wrongKey: number;
}

/** A stale read, explained: what it read, and the completed write that superseded it. */
export interface StaleExample {
  key: string;
  phase: Phase;
  readStart: number;
  read: VersionId;
  readWrittenEnd: number;
  supersededByStart: number;
}

export interface StaleReport {
  phases: Record<Phase, PhaseCounts>;
  /** Stale reads that began at or after the heal (sweep excluded). */
  staleAfterHeal: number;
  /** Stale reads that began `lateAfterMs` or more after the heal (sweep excluded). */
  staleLate: number;
  /** Keys of which at least one read of the final sweep was stale. */
  staleKeysAtEnd: number;
  /** Keys the final sweep read. */
  keysSwept: number;
  /** Totals over every phase. */
  reads: number;
  stale: number;
  misses: number;
  errors: number;
  wrongKey: number;
  unknownVersions: number;
  impossible: number;
  examples: StaleExample[];
}

/** A write as the oracle needs it. */
interface WriteInfo {
  key: string;
  start: number;
  /** Infinity for a write that threw: it may land at any time. */
  end: number;
}

/** Completed writes of one key, by end time, with the latest start among the first i. */
interface KeyHistory {
  ends: Float64Array;
  maxStart: Float64Array;
}

function versionKey(version: VersionId): number {
  // Sequence numbers stay below 2^32; writers are a handful: exact in a double.
  return version.writer * 2 ** 32 + version.seq;
}

function emptyCounts(): PhaseCounts {
  return { reads: 0, stale: 0, misses: 0, writes: 0, errors: 0, wrongKey: 0 };
}

export function phaseOf(
  record: Pick<OpRecord, 'kind' | 'start'>,
  timeline: FaultTimeline,
  lateAfterMs = 1_000,
): Phase {
  if (record.kind === 'sweep') return 'sweep';
  if (record.start < timeline.faultStart) return 'before';
  if (record.start < timeline.heal) return 'during';
  if (record.start < timeline.heal + lateAfterMs) return 'afterHeal';
  return 'late';
}

function isRead(kind: OpKind): boolean {
  return kind === 'get' || kind === 'sweep';
}

/** Every write by its version, and every key's completed writes (sets and deletes). */
function indexWrites(records: readonly OpRecord[]): {
  writes: Map<number, WriteInfo>;
  histories: Map<string, KeyHistory>;
} {
  const writes = new Map<number, WriteInfo>();
  const completed = new Map<string, { start: number; end: number }[]>();
  for (const record of records) {
    if (record.kind !== 'set' && record.kind !== 'delete') continue;
    const ok = record.outcome !== 'error';
    if (record.kind === 'set' && record.version !== undefined) {
      writes.set(versionKey(record.version), {
        key: record.key,
        start: record.start,
        end: ok ? record.end : Infinity,
      });
    }
    if (!ok) continue;
    let list = completed.get(record.key);
    if (list === undefined) completed.set(record.key, (list = []));
    list.push({ start: record.start, end: record.end });
  }
  const histories = new Map<string, KeyHistory>();
  for (const [key, list] of completed) {
    list.sort((a, b) => a.end - b.end);
    const ends = new Float64Array(list.length);
    const maxStart = new Float64Array(list.length);
    let latest = -Infinity;
    list.forEach((write, i) => {
      ends[i] = write.end;
      latest = Math.max(latest, write.start);
      maxStart[i] = latest;
    });
    histories.set(key, { ends, maxStart });
  }
  return { writes, histories };
}

/** The latest start among the writes of `history` that completed before `time`; -Infinity if none. */
function latestStartCompletedBefore(history: KeyHistory | undefined, time: number): number {
  if (history === undefined) return -Infinity;
  // Binary search: the number of writes whose end < time.
  let lo = 0;
  let hi = history.ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (history.ends[mid] < time) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? -Infinity : history.maxStart[lo - 1];
}

export function analyse(
  records: readonly OpRecord[],
  timeline: FaultTimeline,
  options: AnalyseOptions = {},
): StaleReport {
  const slack = options.slackMs ?? 0;
  const lateAfter = options.lateAfterMs ?? 1_000;
  const keepExamples = options.examples ?? 10;
  const { writes, histories } = indexWrites(records);
  const phases = Object.fromEntries(PHASES.map((p) => [p, emptyCounts()])) as Record<
    Phase,
    PhaseCounts
  >;
  const report: StaleReport = {
    phases,
    staleAfterHeal: 0,
    staleLate: 0,
    staleKeysAtEnd: 0,
    keysSwept: 0,
    reads: 0,
    stale: 0,
    misses: 0,
    errors: 0,
    wrongKey: 0,
    unknownVersions: 0,
    impossible: 0,
    examples: [],
  };
  const staleAtEnd = new Set<string>();
  const swept = new Set<string>();

  for (const record of records) {
    const phase = phaseOf(record, timeline, lateAfter);
    const counts = phases[phase];
    if (record.outcome === 'error') counts.errors++;
    if (!isRead(record.kind)) {
      counts.writes++;
      continue;
    }
    counts.reads++;
    if (phase === 'sweep') swept.add(record.key);
    if (record.outcome === 'miss') counts.misses++;
    if (record.outcome !== 'ok') continue;
    const read = record.version;
    const written = read === undefined ? undefined : writes.get(versionKey(read));
    if (record.valueKey !== undefined && record.valueKey !== record.key) {
      counts.wrongKey++;
      continue;
    }
    if (read === undefined || written === undefined) {
      report.unknownVersions++;
      continue;
    }
    if (written.key !== record.key) {
      counts.wrongKey++;
      continue;
    }
    if (written.start > record.end + slack) {
      report.impossible++;
      continue;
    }
    const supersededBy = latestStartCompletedBefore(
      histories.get(record.key),
      record.start - slack,
    );
    if (!(supersededBy > written.end + slack)) continue;
    counts.stale++;
    if (phase === 'sweep') staleAtEnd.add(record.key);
    if (report.examples.length < keepExamples) {
      report.examples.push({
        key: record.key,
        phase,
        readStart: record.start,
        read,
        readWrittenEnd: written.end,
        supersededByStart: supersededBy,
      });
    }
  }

  for (const counts of Object.values(phases)) {
    report.reads += counts.reads;
    report.stale += counts.stale;
    report.misses += counts.misses;
    report.errors += counts.errors;
    report.wrongKey += counts.wrongKey;
  }
  report.staleAfterHeal = phases.afterHeal.stale + phases.late.stale;
  report.staleLate = phases.late.stale;
  report.staleKeysAtEnd = staleAtEnd.size;
  report.keysSwept = swept.size;
  return report;
}
