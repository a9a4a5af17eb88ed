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
