/**
 * What a user installs: the tarball `npm pack` makes (see test/helpers/packed-tarball.ts),
 * installed into a consumer project that boots a tiny Nest app importing `nestjs-ring-redis`
 * and `nestjs-ring-redis/health` over real redis-servers and runs the package's bin, and into
 * one without any `@nestjs/*` package that uses `nestjs-ring-redis/core` alone. What the
 * tarball holds is checked in pack-contents.spec.ts.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePackedTarball } from '../helpers/packed-tarball.js';
import { redisCommand } from '../helpers/redis-command.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { describeRun, runCommand as run, type RunResult } from '../helpers/run-command.js';
import { CORE_APP, NEST_APP, RECORD_RESOLVE_HOOK } from './consumer-apps.js';

/** What a user needs next to the package (and an OpenTelemetry SDK); the versions Nest 12 users have. */
const CONSUMER_DEPENDENCIES = [
  '@nestjs/common@12',
  '@nestjs/core@12',
  '@nestjs/terminus@12',
  '@nestjs/platform-express@12',
  '@opentelemetry/api@1.9',
  '@opentelemetry/sdk-metrics@2',
  'reflect-metadata',
  'rxjs',
];

/** Every file under `dir`, as paths relative to it. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out;
}

/** Module specifiers a compiled file imports or re-exports (static and dynamic). */
function specifiers(source: string): string[] {
  // Comments may say "import x from 'y'" in prose: only code counts. (Block comments, and
  // line comments on lines of their own: a `//` inside a string such as a URL stays.)
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  // Statements start their line (strings and messages may say "import's" or "from 'x'").
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) found.push(m[1]);
  return found;
}

/**
 * The compiled files reachable from `entry` through relative imports, and the bare specifiers
 * (packages, built-ins) they import; `sources` maps a package-relative path to its text.
 */
function importGraph(
  sources: Map<string, string>,
  entry: string,
): { files: Set<string>; bare: Set<string> } {
  const files = new Set<string>();
  const bare = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = sources.get(file);
    expect(source, file).toBeDefined();
    for (const spec of specifiers(source!)) {
      if (spec.startsWith('.')) visit(posix.normalize(posix.join(posix.dirname(file), spec)));
      else bare.add(spec);
    }
  };
  visit(entry);
  return { files, bare };
}

/** What CORE_APP reports. */
interface CoreAppReport {
  packages: string[];
  exports: string[];
  owner: string;
  node?: string;
  stack: string;
}

/** Runs CORE_APP in `cwd` against `entry` (and redis-servers, when urls are given). */
async function runCoreApp(
  cwd: string,
  entry: string,
  urls: string[] = [],
): Promise<{ report: CoreAppReport; result: RunResult }> {
  await writeFile(join(cwd, 'record-resolve.mjs'), RECORD_RESOLVE_HOOK);
  await writeFile(join(cwd, 'core-app.mjs'), CORE_APP);
  const result = await run(
    process.execPath,
    ['--enable-source-maps', 'core-app.mjs', entry, ...urls],
    { cwd, timeoutMs: 30_000 },
  );
  expect(result.timedOut, describeRun('core app', result)).toBe(false);
  expect(result.code, describeRun('core app', result)).toBe(0);
  const ok = /^OK (.*)$/m.exec(result.stdout);
  expect(ok, describeRun('core app', result)).not.toBeNull();
  return { report: JSON.parse(ok![1]) as CoreAppReport, result };
}

/** Installs the tarball (and `extra` packages) into a new project `name` under `work`. */
async function installConsumer(
  work: string,
  name: string,
  args: string[],
): Promise<{ consumer: string; installed: string }> {
  const consumer = join(work, name);
  await mkdir(consumer);
  await writeFile(
    join(consumer, 'package.json'),
    JSON.stringify({ name, private: true, type: 'module' }, null, 2),
  );
  const install = await run(
    'npm',
    ['install', ...args, '--no-audit', '--no-fund', '--prefer-offline'],
    { cwd: consumer, timeoutMs: 180_000 },
  );
  expect(install.code, describeRun('npm install', install)).toBe(0);
  const installed = join(consumer, 'node_modules', 'nestjs-ring-redis');
  // The consumer's own copy, not a link back to this repository.
  expect((await lstat(installed)).isSymbolicLink()).toBe(false);
  expect(await realpath(installed)).toBe(
    join(await realpath(consumer), 'node_modules', 'nestjs-ring-redis'),
  );
  expect(existsSync(join(installed, 'dist', 'index.js'))).toBe(true);
  return { consumer, installed };
}

const pack = usePackedTarball();

describe('npm pack, then install into a fresh consumer project', () => {
  let fleet: RedisFleet | undefined;

  afterAll(async () => {
    await fleet?.stop();
  });

  describe('installed in a consumer project', () => {
    let consumer = '';
    let installed = '';

    beforeAll(async () => {
      ({ consumer, installed } = await installConsumer(pack.work, 'consumer', [
        pack.tarball,
        ...CONSUMER_DEPENDENCIES,
      ]));
    }, 200_000);

    it('ships no import that cannot resolve, a root that never loads Terminus, a core without Nest', async () => {
      const { packed } = pack;
      const compiled = (await walk(installed)).filter((f) => /\.(js|d\.ts)$/.test(f));
      const sources = new Map<string, string>();
      for (const file of compiled) sources.set(file, await readFile(join(installed, file), 'utf8'));

      for (const [file, source] of sources) {
        for (const spec of specifiers(source).filter((s) => s.startsWith('.'))) {
          const target = resolve(installed, dirname(file), spec);
          const candidates = file.endsWith('.d.ts')
            ? [target, target.replace(/\.js$/, '.d.ts')]
            : [target];
          expect(
            candidates.some((c) => existsSync(c)),
            `${file} imports ${spec}`,
          ).toBe(true);
        }
      }

      // From the root entry @nestjs/terminus must not be reachable, or users without it could
      // not import the package at all.
      const root = importGraph(sources, 'dist/index.js');
      // The walk did reach the engine and the Nest layer.
      expect(root.files.size).toBeGreaterThan(10);
      expect([...root.bare]).toEqual(expect.arrayContaining(['@nestjs/common', 'ioredis', 'rxjs']));
      expect([...root.bare].filter((s) => s.startsWith('@nestjs/terminus'))).toEqual([]);
      // From the core entry, no Nest at all: neither @nestjs/* nor reflect-metadata.
      const core = importGraph(sources, 'dist/core/index.js');
      expect(core.files.size).toBeGreaterThan(10);
      expect(
        [...core.files].every((f) => f.startsWith('dist/core/')),
        [...core.files].join(),
      ).toBe(true);
      expect([...core.bare]).toEqual(expect.arrayContaining(['ioredis', 'rxjs']));
      expect([...core.bare].filter((s) => /^(@nestjs\/|reflect-metadata)/.test(s))).toEqual([]);
      // The Keyv store loads no Keyv (it only implements its interface) and no Nest.
      const keyv = importGraph(sources, 'dist/keyv/index.js');
      expect(keyv.files.size).toBeGreaterThan(1);
      expect([...keyv.bare].filter((s) => /^(keyv|@nestjs\/|reflect-metadata)/.test(s))).toEqual(
        [],
      );
      // Whatever the root does import is declared.
      const declared = new Set([
        ...Object.keys(packed.dependencies ?? {}),
        ...Object.keys(packed.peerDependencies ?? {}),
      ]);
      for (const spec of root.bare) {
        // node built-ins, and the package's own name (its CLI prints an import of it).
        if (spec.startsWith('node:') || spec === packed.name) continue;
        const name = spec.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : spec.split('/')[0];
        expect(declared.has(name), `dist/index.js reaches ${spec}`).toBe(true);
      }
    });

    it('boots a plain-JavaScript Nest app importing the package over real redis-servers', async () => {
      fleet = await startRedisServers(2);
      await writeFile(join(consumer, 'app.mjs'), NEST_APP);
      const result = await run(process.execPath, ['app.mjs', ...fleet.servers.map((s) => s.url)], {
        cwd: consumer,
        timeoutMs: 30_000,
      });
      // Exit code 0 without a timeout: the checks passed and close() let the process exit.
      expect(result.timedOut, describeRun('consumer app', result)).toBe(false);
      expect(result.code, describeRun('consumer app', result)).toBe(0);
      const ok = /^OK (.*)$/m.exec(result.stdout);
      expect(ok, describeRun('consumer app', result)).not.toBeNull();
      const { node } = JSON.parse(ok![1]) as { node: string };

      // The value is really in Redis, as plain JSON, on the node the ring named.
      const server = fleet.servers[Number(node.replace('node', ''))];
      expect(await redisCommand(server.port, 'GET', 'consumer:answer')).toBe('{"n":42}');
      await fleet.stop();
    }, 60_000);

    it('loads no Nest for nestjs-ring-redis/core even where Nest is installed (the root does)', async () => {
      // The recorder sees Nest when it is loaded: the root entry loads it.
      const viaRoot = await runCoreApp(consumer, 'nestjs-ring-redis');
      expect(viaRoot.report.packages).toEqual(
        expect.arrayContaining(['@nestjs/common', 'ioredis', 'nestjs-ring-redis', 'rxjs']),
      );
      const viaCore = await runCoreApp(consumer, 'nestjs-ring-redis/core');
      expect(viaCore.report.packages).toEqual(
        expect.arrayContaining(['ioredis', 'nestjs-ring-redis', 'rxjs']),
      );
      expect(
        viaCore.report.packages.filter((p) => /^(@nestjs\/|reflect-metadata$)/.test(p)),
      ).toEqual([]);
      // Both entries place keys alike.
      expect(viaCore.report.owner).toBe(viaRoot.report.owner);
    }, 60_000);

    it('installs the bin: `npx nestjs-ring-redis` without arguments prints usage and exits 2', async () => {
      const bare = await run('npx', ['--no', '--', 'nestjs-ring-redis'], {
        cwd: consumer,
        timeoutMs: 60_000,
      });
      expect(bare.code, describeRun('npx nestjs-ring-redis', bare)).toBe(2);
      expect(bare.stderr).toContain('Usage: nestjs-ring-redis');

      const help = await run('npx', ['--no', '--', 'nestjs-ring-redis', '--help'], {
        cwd: consumer,
        timeoutMs: 60_000,
      });
      expect(help.code, describeRun('npx nestjs-ring-redis --help', help)).toBe(0);
      expect(help.stdout).toContain('from-twemproxy');
    }, 120_000);
  });

  describe('installed without any @nestjs/* package: the framework-free core alone', () => {
    let consumer = '';
    let installed = '';

    beforeAll(async () => {
      // Peers left out, as a script that only wants the engine would install it; rxjs is the
      // one peer the core needs (its events$ is an Observable).
      ({ consumer, installed } = await installConsumer(pack.work, 'core-consumer', [
        pack.tarball,
        'rxjs@7',
        '--omit=peer',
      ]));
      expect(existsSync(join(consumer, 'node_modules', '@nestjs'))).toBe(false);
      expect(existsSync(join(consumer, 'node_modules', 'reflect-metadata'))).toBe(false);
      expect(existsSync(join(consumer, 'node_modules', 'ioredis'))).toBe(true);
      // Metrics are optional too: without the OpenTelemetry API a dict records nothing and works.
      expect(existsSync(join(consumer, 'node_modules', '@opentelemetry'))).toBe(false);
    }, 200_000);

    it('the root entry cannot load there: it needs Nest', async () => {
      const result = await run(
        process.execPath,
        ['--input-type=module', '-e', "await import('nestjs-ring-redis')"],
        { cwd: consumer, timeoutMs: 30_000 },
      );
      expect(result.code, describeRun('import nestjs-ring-redis', result)).not.toBe(0);
      expect(result.stderr).toMatch(/Cannot find (package|module) '(@nestjs\/|reflect-metadata)/);
    }, 60_000);

    it('imports nestjs-ring-redis/core, loads no @nestjs/* module, and a RingDict works over a real redis-server', async () => {
      fleet = await startRedisServers(1);
      const [server] = fleet.servers;
      const { report } = await runCoreApp(consumer, 'nestjs-ring-redis/core', [server.url]);
      expect(report.packages).toEqual(
        expect.arrayContaining(['ioredis', 'nestjs-ring-redis', 'rxjs']),
      );
      expect(report.packages.filter((p) => /^(@nestjs\/|reflect-metadata$)/.test(p))).toEqual([]);
      expect(report.exports).toEqual(
        expect.arrayContaining(['RingDict', 'HashRing', 'RingError', 'RingConfigError']),
      );
      expect(report.exports).not.toContain('RingRedisModule');
      expect(report.node).toBe('node0');
      // The value is really in Redis, as plain JSON.
      expect(await redisCommand(server.port, 'GET', 'core:answer')).toBe('{"n":42}');
      await fleet.stop();
    }, 60_000);

    it('with --enable-source-maps, a stack trace names the shipped TypeScript line', async () => {
      const { report } = await runCoreApp(consumer, 'nestjs-ring-redis/core');
      // The first frame below the message: the line that threw, in lib/, inside the package.
      const frame = /\((.+\.ts):(\d+):\d+\)/.exec(report.stack.split('\n')[1] ?? '');
      expect(frame, report.stack).not.toBeNull();
      const [, file, line] = frame!;
      expect(relative(installed, file)).toMatch(/^lib\/core\/.+\.ts$/);
      const lines = (await readFile(file, 'utf8')).split('\n');
      expect(lines[Number(line) - 1], `${file}:${line}`).toMatch(/Error/);
    }, 60_000);
  });
});
