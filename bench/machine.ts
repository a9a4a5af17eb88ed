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
 * How often the OS takes the core from a process that never yields: a loop reads the clock
 * for `ms` and counts the gaps over 0.2 ms between two reads. No deadline of this process can
 * be answered sooner than such a pause lets it, so the longest is the floor under every tail
 * (p99) goal of a few milliseconds.
 */
export function schedulerPauses(ms = 2_000): string {
  const gaps: number[] = [];
  const end = performance.now() + ms;
  let last = performance.now();
  for (let now = last; now < end; now = performance.now()) {
    if (now - last > 0.2) gaps.push(now - last);
    last = now;
  }
  const longest = gaps.length === 0 ? 0 : Math.max(...gaps);
  const paused = gaps.reduce((sum, gap) => sum + gap, 0);
  return (
    `a loop that never yields was paused ${gaps.length} times over 0.2 ms in ${ms / 1000} s ` +
    `(${paused.toFixed(1)} ms in all, the longest ${longest.toFixed(2)} ms)`
  );
}
