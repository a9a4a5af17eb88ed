/**
 * The soak's verdict: every bound it checks at the end, measured against what the run saw,
 * printed as a Markdown table with the slowest calls explained by the timeline.
 */
import { CONNECTIONS_PER_NODE, NAMES, SLOW_CALL_MS, type Options } from './soak-config.js';
import type { Load } from './soak-load.js';
import { activeResources, processListeners, type Snapshot } from './soak-probes.js';
import type { Timeline } from './soak-timeline.js';

export interface Check {
  name: string;
  bound: string;
  measured: string;
  ok: boolean;
}

/** What the run measured, with every node back and before the dict is closed. */
export interface Measured {
  options: Options;
  /** Operations after the warm-up. */
  done: number;
  elapsedMs: number;
  timedOut: boolean;
  load: Load;
  timeline: Timeline;
  before: Snapshot;
  after: Snapshot;
  warnings: readonly string[];
  /** Each node's `CLIENT LIST` lines. */
  connections: readonly string[][];
}

function check(name: string, bound: string, measured: string, ok: boolean): Check {
  return { name, bound, measured, ok };
}

/** Every bound that can be checked while the dict is still open, in the table's order. */
export function boundChecks(m: Measured): Check[] {
  return [...runChecks(m), ...heapAndHandleChecks(m), ...listenerChecks(m), ...callChecks(m)];
}

function runChecks({ options, done, elapsedMs, timedOut, timeline }: Measured): Check[] {
  const { flaps } = timeline;
  return [
    check(
      'operations',
      `≥ ${options.ops}, ≥ ${options.seconds} s, within ${options.timeLimit} s`,
      `${done} in ${(elapsedMs / 1000).toFixed(1)} s (${Math.round(done / (elapsedMs / 1000))}/s)`,
      done >= options.ops && !timedOut,
    ),
    check(
      'flaps',
      '≥ 1 kill and ≥ 1 hang',
      `${flaps.kill} kill+restart, ${flaps.hang} hang+resume; ${flaps.ejected} ejections, ${flaps.rediscovered} rediscoveries`,
      flaps.kill >= 1 && flaps.hang >= 1,
    ),
  ];
}

function heapAndHandleChecks({ options, before, after }: Measured): Check[] {
  const growth = after.heapMB - before.heapMB;
  const types = new Set([...before.resources.keys(), ...after.resources.keys()]);
  const grown = [...types].filter(
    (type) => (after.resources.get(type) ?? 0) > (before.resources.get(type) ?? 0),
  );
  return [
    check(
      'heap used (after gc)',
      `≤ before + ${options.heapBound} MB`,
      `${before.heapMB.toFixed(1)} → ${after.heapMB.toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB)`,
      growth <= options.heapBound,
    ),
    check(
      'active handles and timers',
      'no growth, by type',
      [...types]
        .sort()
        .map((t) => `${t} ${before.resources.get(t) ?? 0}→${after.resources.get(t) ?? 0}`)
        .join(', '),
      grown.length === 0,
    ),
  ];
}

function listenerChecks({ before, after, warnings, connections }: Measured): Check[] {
  const leakWarnings = warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'));
  return [
    check(
      'listeners on the nodes’ clients and sockets',
      'no growth',
      `${before.clientListeners} → ${after.clientListeners}`,
      after.clientListeners <= before.clientListeners,
    ),
    check(
      'listeners on process',
      'no growth',
      `${before.processListeners} → ${after.processListeners}`,
      after.processListeners <= before.processListeners,
    ),
    check(
      'listener-leak warnings',
      '0',
      leakWarnings.length === 0 ? '0' : `${leakWarnings.length}: ${leakWarnings[0]}`,
      leakWarnings.length === 0,
    ),
    check(
      'connections per node (CLIENT LIST)',
      `exactly ${CONNECTIONS_PER_NODE}: the dict’s data and fleet connections + this probe’s`,
      connections.map((lines, i) => `${NAMES[i]} ${lines.length}`).join(', '),
      connections.every((lines) => lines.length === CONNECTIONS_PER_NODE),
    ),
  ];
}

function callChecks({ load, timeline }: Measured): Check[] {
  return [
    check(
      'calls that threw (two nodes always alive)',
      '0',
      load.errors === 0 ? '0' : `${load.errors}, e.g. ${load.errorSamples[0]}`,
      load.errors === 0,
    ),
    check('stale reads', '0', String(load.stale), load.stale === 0),
    check('values never written', '0', String(load.neverWritten), load.neverWritten === 0),
    check(
      'slowest call',
      `info (goal ≤ ${SLOW_CALL_MS} ms)`,
      `${load.slowestMs.toFixed(0)} ms`,
      true,
    ),
    check('misses', 'info (keys lost with a killed node)', String(load.misses), true),
    check('worst event-loop stall', 'info', `${timeline.worstStall.toFixed(0)} ms`, true),
  ];
}

/** The last bound, once the dict is closed and the servers stopped: nothing left behind. */
export function leftoverCheck(
  resourcesAtStart: ReadonlyMap<string, number>,
  processListenersAtStart: number,
): Check {
  const leftover = [...activeResources()].filter(
    ([type, count]) => count > (resourcesAtStart.get(type) ?? 0),
  );
  return check(
    'after close() and stopping the servers',
    'the handles of the start',
    leftover.length === 0 ? 'none left' : leftover.map(([t, c]) => `${t} ${c}`).join(', '),
    // +1: the server helper's own 'exit' safety net, installed with the first server.
    leftover.length === 0 && processListeners() <= processListenersAtStart + 1,
  );
}

/** Prints the checks and the slowest calls; answers the exit code (1 if a bound broke). */
export function report(
  checks: readonly Check[],
  load: Load,
  timeline: Timeline,
  connections: readonly string[][],
): number {
  printChecks(checks);
  printSlowCalls(load, timeline);
  const broken = checks.filter((c) => !c.ok);
  if (broken.length > 0) {
    console.log(`\nsoak: FAILED — ${broken.map((c) => c.name).join('; ')}`);
    if (connections.some((lines) => lines.length !== CONNECTIONS_PER_NODE)) {
      console.log(
        connections.map((lines, i) => `${NAMES[i]}:\n  ${lines.join('\n  ')}`).join('\n'),
      );
    }
    return 1;
  }
  console.log('\nsoak: every bound held');
  return 0;
}

function printChecks(checks: readonly Check[]): void {
  console.log('\n| check | bound | measured | |');
  console.log('|---|---|---|---|');
  for (const c of checks) {
    console.log(`| ${c.name} | ${c.bound} | ${c.measured} | ${c.ok ? 'ok' : 'BROKEN'} |`);
  }
}

function printSlowCalls(load: Load, timeline: Timeline): void {
  if (load.slowCalls.length === 0) return;
  console.log(`\nCalls slower than ${SLOW_CALL_MS} ms, with what happened in the second before:`);
  const slowest = [...load.slowCalls].sort((x, y) => y.ms - x.ms).slice(0, 5);
  for (const call of slowest) {
    console.log(`  ${call.op} ${call.ms.toFixed(0)} ms (${timeline.around(call) || 'nothing'})`);
  }
}
