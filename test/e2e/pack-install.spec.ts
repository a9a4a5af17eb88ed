/**
 * What a user installs: `npm pack` (which builds through `prepack`), the tarball's contents and
 * manifest, then an install of that tarball into a fresh consumer project that boots a tiny Nest
 * app importing `nestjs-ring-redis` and `nestjs-ring-redis/health` over real redis-servers, and
 * the package's bin.
 *
 * The pack runs in a copy of the working tree (node_modules linked, not copied), so it neither
 * races another test run over `dist/` nor depends on a `dist/` left behind: like a fresh clone,
 * the copy has none until `prepack` builds it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCommand, startRedisServers, type RedisFleet } from '../helpers/redis-servers.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Top-level entries of the working tree the copy leaves out (build output, caches, VCS). */
const NOT_COPIED = new Set(['node_modules', '.git', 'dist', '.run', '.bench-tmp', 'coverage']);

/** What a user needs next to the package; the versions Nest 12 users have. */
const CONSUMER_DEPENDENCIES = [
  '@nestjs/common@12',
  '@nestjs/core@12',
  '@nestjs/terminus@12',
  '@nestjs/platform-express@12',
  'reflect-metadata',
  'rxjs',
];

/** The fields of the packed package.json this suite reads. */
interface PackedManifest {
  name: string;
  version: string;
  type?: string;
  license?: string;
  main?: string;
  types?: string;
  files?: string[];
  engines?: { node?: string };
  bin?: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * The environment for nested npm/node runs. Under `npm test`, npm exports its own state
 * (npm_config_local_prefix pointing at this repository, npm_package_*, npm_lifecycle_*,
 * INIT_CWD): an `npm install` in the consumer that inherited it could act on this repository.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      /^npm_(package_|lifecycle_|command$|config_local_prefix$|execpath$|node_execpath$)/i.test(
        name,
      )
    )
      continue;
    if (name === 'INIT_CWD') continue;
    env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs a command to completion (killing it after `timeoutMs`), capturing its output. */
function run(
  command: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function describeRun(label: string, result: RunResult): string {
  return `${label}: code ${String(result.code)}, signal ${String(result.signal)}${result.timedOut ? ' (timed out)' : ''}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;
}

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
 * The consumer's app: plain ESM JavaScript, as a user without a TypeScript build would write
 * it, so decorators are applied by hand. It exits non-zero (with the reason on stderr) if any
 * check fails, and by itself once the app is closed.
 */
const CONSUMER_APP = `
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { Controller, Get, Inject, Injectable, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import {
  getRingDictToken,
  InjectRingDict,
  RingCached,
  RingDict,
  RingRedisModule,
  RingRedisService,
} from 'nestjs-ring-redis';
import { RingRedisHealthIndicator } from 'nestjs-ring-redis/health';

function decorateMethod(cls, name, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  Object.defineProperty(cls.prototype, name, Reflect.decorate(decorators, cls.prototype, name, descriptor));
}

const urls = process.argv.slice(2);
const nodes = Object.fromEntries(urls.map((url, i) => ['node' + i, { capacity: 1, connection: url }]));

// A service with the dict injected by token and a memoised method.
class Greeter {
  constructor(dict) {
    this.dict = dict;
    this.calls = 0;
  }
  async greet(name) {
    this.calls++;
    return 'hello ' + name;
  }
}
Inject(getRingDictToken('default'))(Greeter, undefined, 0);
Injectable()(Greeter);
// As TypeScript emits it: the return type metadata tells @RingCached the method is async.
decorateMethod(Greeter, 'greet', RingCached({ ttl: 30 }), Reflect.metadata('design:returntype', Promise));

// A controller with the dict injected by @InjectRingDict().
class KvController {
  constructor(dict) {
    this.dict = dict;
  }
  async get(key) {
    return { key, value: (await this.dict.get(key)) ?? null };
  }
}
InjectRingDict()(KvController, undefined, 0);
Param('key')(KvController.prototype, 'get', 0);
decorateMethod(KvController, 'get', Get(':key'));
Controller('kv')(KvController);

class AppModule {}
Module({
  imports: [
    TerminusModule,
    RingRedisModule.forRoot({ groups: { default: nodes }, defaults: { prefix: 'consumer:' } }),
  ],
  controllers: [KvController],
  providers: [
    Greeter,
    RingRedisHealthIndicator,
    { provide: 'DICT_BY_FACTORY', useFactory: (dict) => dict, inject: [getRingDictToken('default')] },
  ],
})(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(0, '127.0.0.1');
const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');

const dict = app.get(getRingDictToken('default'));
assert.ok(dict instanceof RingDict, 'the injected dict is a RingDict');
assert.equal(app.get('DICT_BY_FACTORY'), dict);
assert.deepEqual(app.get(RingRedisService).names(), ['default']);

await dict.set('answer', { n: 42 });
assert.deepEqual(await dict.get('answer'), { n: 42 });
assert.equal(dict.getEntry('answer'), 'consumer:answer');

const greeter = app.get(Greeter);
assert.equal(greeter.dict, dict);
assert.equal(await greeter.greet('ada'), 'hello ada');
assert.equal(await greeter.greet('ada'), 'hello ada');
assert.equal(greeter.calls, 1, '@RingCached served the second call from the ring');

const response = await fetch(url + '/kv/answer');
assert.equal(response.status, 200);
assert.deepEqual(await response.json(), { key: 'answer', value: { n: 42 } });

const health = app.get(RingRedisHealthIndicator).isHealthy();
assert.equal(health['ring-redis'].status, 'up');
assert.equal(health['ring-redis'].groups.default.alive, urls.length);
assert.equal(health['ring-redis'].groups.default.total, urls.length);

const node = dict.aliveHash.locate(dict.getEntry('answer'));
await app.close();
console.log('OK ' + JSON.stringify({ node }));
`;

describe('npm pack, then install into a fresh consumer project', () => {
  let work = '';
  let tarball = '';
  let listing: string[] = [];
  let packed: PackedManifest = { name: '', version: '', exports: {} };
  let fleet: RedisFleet | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ring-redis-pack-'));
    const source = join(work, 'source');
    await cp(repoRoot, source, {
      recursive: true,
      filter: (path) => {
        const rel = relative(repoRoot, path);
        const top = rel.split(/[\\/]/)[0];
        return !NOT_COPIED.has(top) && !rel.endsWith('.tgz');
      },
    });
    await symlink(join(repoRoot, 'node_modules'), join(source, 'node_modules'), 'dir');
    expect(existsSync(join(source, 'dist'))).toBe(false);

    const pack = await run('npm', ['pack', '--pack-destination', work], {
      cwd: source,
      timeoutMs: 120_000,
    });
    expect(pack.code, describeRun('npm pack', pack)).toBe(0);
    const tarballs = (await readdir(work)).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    tarball = join(work, tarballs[0]);

    const tar = await run('tar', ['-tzf', tarball], { cwd: work, timeoutMs: 30_000 });
    expect(tar.code, describeRun('tar', tar)).toBe(0);
    listing = tar.stdout.split('\n').filter(Boolean);

    const manifest = await run('tar', ['-xzOf', tarball, 'package/package.json'], {
      cwd: work,
      timeoutMs: 30_000,
    });
    packed = JSON.parse(manifest.stdout) as PackedManifest;
  }, 150_000);

  afterAll(async () => {
    await fleet?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds dist (ESM + .d.ts for . and ./health), the bin, package.json, README and LICENSE', () => {
    expect(basename(tarball)).toBe(`nestjs-ring-redis-${packed.version}.tgz`);
    for (const file of [
      'package/package.json',
      'package/README.md',
      'package/LICENSE',
      'package/dist/index.js',
      'package/dist/index.d.ts',
      'package/dist/health/index.js',
      'package/dist/health/index.d.ts',
      'package/dist/cli.js',
    ]) {
      expect(listing, file).toContain(file);
    }
  });

  it('holds nothing else: no tests, sample, bench, TypeScript sources, CI or build caches', () => {
    const unexpected = listing.filter(
      (path) =>
        !['package/package.json', 'package/README.md', 'package/LICENSE'].includes(path) &&
        !/^package\/dist\/.+\.(js|d\.ts)$/.test(path),
    );
    expect(unexpected).toEqual([]);
    for (const path of listing) {
      expect(path).not.toMatch(
        /^package\/(test|sample|bench|lib|\.ci|\.run|\.bench-tmp|node_modules|coverage)\//,
      );
      expect(path).not.toMatch(/(?<!\.d)\.ts$|\.map$|\.tgz$|tsconfig|vitest/);
    }
  });

  it('has a manifest whose exports, bin and peers a user can rely on', () => {
    expect(packed.name).toBe('nestjs-ring-redis');
    expect(packed.type).toBe('module');
    expect(packed.license).toBe('MIT');
    expect(packed.engines?.node).toMatch(/^>=\s*20\.19/);
    expect(packed.files).toEqual(expect.arrayContaining(['dist', 'README.md', 'LICENSE']));

    // Every target of the exports map, main, types and bin is in the tarball.
    const targets = [packed.main ?? '', packed.types ?? '', ...Object.values(packed.bin ?? {})];
    for (const [subpath, target] of Object.entries(packed.exports)) {
      if (typeof target === 'string') targets.push(target);
      else targets.push(...Object.values(target));
      expect(['.', './health', './package.json']).toContain(subpath);
    }
    expect(Object.keys(packed.exports)).toEqual(expect.arrayContaining(['.', './health']));
    expect(packed.exports['.']).toMatchObject({ types: './dist/index.d.ts' });
    expect(packed.exports['./health']).toMatchObject({ types: './dist/health/index.d.ts' });
    for (const target of targets.filter(Boolean)) {
      expect(listing, target).toContain(`package/${target.replace(/^\.\//, '')}`);
    }
    expect(packed.bin).toEqual({ 'nestjs-ring-redis': './dist/cli.js' });

    // Nest, rxjs and reflect-metadata are the user's; Terminus only if they use ./health.
    for (const peer of [
      '@nestjs/common',
      '@nestjs/core',
      '@nestjs/terminus',
      'reflect-metadata',
      'rxjs',
    ]) {
      expect(packed.peerDependencies, peer).toHaveProperty([peer]);
      expect(packed.dependencies ?? {}, peer).not.toHaveProperty([peer]);
    }
    expect(packed.peerDependenciesMeta).toEqual({ '@nestjs/terminus': { optional: true } });
    expect(packed.dependencies).toHaveProperty(['ioredis']);
    // npm pack keeps devDependencies in the manifest, but nothing may hide scripts that run on
    // the user's install.
    for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) {
      expect(packed.scripts ?? {}, script).not.toHaveProperty([script]);
    }
  });

  describe('installed in a consumer project', () => {
    let consumer = '';
    let installed = '';

    beforeAll(async () => {
      consumer = join(work, 'consumer');
      await mkdir(consumer);
      await writeFile(
        join(consumer, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2),
      );
      const install = await run(
        'npm',
        [
          'install',
          tarball,
          ...CONSUMER_DEPENDENCIES,
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
        ],
        { cwd: consumer, timeoutMs: 180_000 },
      );
      expect(install.code, describeRun('npm install', install)).toBe(0);
      installed = join(consumer, 'node_modules', 'nestjs-ring-redis');
      // The consumer's own copy, not a link back to this repository.
      expect(existsSync(join(installed, 'dist', 'index.js'))).toBe(true);
      expect(existsSync(join(installed, 'lib'))).toBe(false);
    }, 200_000);

    it('ships no import that cannot resolve, and a root that never loads Terminus', async () => {
      const files = (await walk(installed)).filter((f) => /\.(js|d\.ts)$/.test(f));
      const sources = new Map<string, string>();
      for (const file of files) sources.set(file, await readFile(join(installed, file), 'utf8'));

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

      // Walk the graph from the root entry: @nestjs/terminus must not be reachable, or users
      // without it could not import the package at all.
      const seen = new Set<string>();
      const bare = new Set<string>();
      const visit = (file: string) => {
        if (seen.has(file)) return;
        seen.add(file);
        const source = sources.get(file);
        expect(source, file).toBeDefined();
        for (const spec of specifiers(source!)) {
          if (spec.startsWith('.'))
            visit(relative(installed, resolve(installed, dirname(file), spec)));
          else bare.add(spec);
        }
      };
      visit('dist/index.js');
      // The walk did reach the engine and the Nest layer.
      expect(seen.size).toBeGreaterThan(10);
      expect([...bare]).toEqual(expect.arrayContaining(['@nestjs/common', 'ioredis', 'rxjs']));
      expect([...bare].filter((s) => s.startsWith('@nestjs/terminus'))).toEqual([]);
      // Whatever the root does import is declared.
      const declared = new Set([
        ...Object.keys(packed.dependencies ?? {}),
        ...Object.keys(packed.peerDependencies ?? {}),
      ]);
      for (const spec of bare) {
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
      await writeFile(join(consumer, 'app.mjs'), CONSUMER_APP);
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
});
