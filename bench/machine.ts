/** What the figures were measured on, printed at the top of every run. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { nutcrackerVersion } from '../test/helpers/nutcracker.js';

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() || 'unknown CPU';
  } catch {
    return 'unknown CPU';
  }
}

function redisVersion(): string {
  try {
    const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    return out.match(/v=(\S+)/)?.[1] ?? out.trim();
  } catch {
    return 'not found';
  }
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  redis: string;
  nutcracker: string;
}

export async function describeMachine(): Promise<Machine> {
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis: redisVersion(),
    nutcracker: (await nutcrackerVersion())?.replace(/^This is nutcracker-/, '') ?? 'not found',
  };
}

export function machineLine(m: Machine): string {
  return (
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; ` +
    `redis-server ${m.redis}; nutcracker ${m.nutcracker}`
  );
}

/** The 1-minute load average: anything well above 0 means other work shared the cores. */
export function loadAverage(): string {
  return loadavg()[0].toFixed(2);
}

/**
 * A loop that never yields reads the clock and counts the gaps over 0.2 ms between two reads.
 * In Python: a loop of Node's allocates a number per clock read, and the garbage collector's
 * own pauses (0.3–1.3 ms scavenges, tens a second) would be counted as the machine's.
 */
const PAUSES = `
import json, sys, time
end = time.perf_counter() + float(sys.argv[1])
last = time.perf_counter()
gaps = []
while last < end:
    now = time.perf_counter()
    if now - last > 0.0002:
        gaps.append(now - last)
    last = now
print(json.dumps([len(gaps), sum(gaps) * 1000, max(gaps, default=0) * 1000]))
`;

/**
 * How often the OS takes the core from a process that never yields, for `ms`: no deadline of
 * any process can be answered sooner than such a pause ends, so the longest is the floor under
 * every tail (p99) goal of a few milliseconds. Needs `python3`; without it, says so.
 */
export function schedulerPauses(ms = 2_000): string {
  let count: number, paused: number, longest: number;
  try {
    const out = execFileSync('python3', ['-c', PAUSES, String(ms / 1000)], { encoding: 'utf8' });
    [count, paused, longest] = JSON.parse(out) as [number, number, number];
  } catch {
    return 'not measured (python3 not found)';
  }
  return (
    `a loop that never yields was paused ${count} times over 0.2 ms in ${ms / 1000} s ` +
    `(${paused.toFixed(1)} ms in all, the longest ${longest.toFixed(2)} ms)`
  );
}
