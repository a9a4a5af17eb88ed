/**
 * What a user installs: `npm pack` (which builds through `prepack`), the tarball's contents,
 * maps and manifest, then installs of that tarball: into a consumer project that boots a tiny
 * Nest app importing `nestjs-ring-redis` and `nestjs-ring-redis/health` over real
 * redis-servers and runs the package's bin, and into one without any `@nestjs/*` package that
 * uses `nestjs-ring-redis/core` alone.
 *
 * The pack runs in a copy of the working tree (node_modules linked, not copied), so it neither
 * races another test run over `dist/` nor depends on a `dist/` left behind: like a fresh clone,
 * the copy has none until `prepack` builds it.
 */
import { existsSync } from 'node:fs';
import {
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCommand } from '../helpers/redis-command.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { describeRun, runCommand as run, type RunResult } from '../helpers/run-command.js';
import { CORE_APP, NEST_APP, RECORD_RESOLVE_HOOK } from './consumer-apps.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Top-level entries of the working tree the copy leaves out (build output, caches, VCS). */
const NOT_COPIED = new Set(['node_modules', '.git', 'dist', '.run', '.bench-tmp', 'coverage']);

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

/** The repository's address: the registry links to it, its README and its issues. */
const REPOSITORY = 'https://github.com/nestjs-ring-redis/nestjs-ring-redis';

/** The fields of the packed package.json this suite reads. */
interface PackedManifest {
  name: string;
  version: string;
  type?: string;
  license?: string;
  repository?: { type: string; url: string };
  homepage?: string;
  bugs?: { url?: string };
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

describe('npm pack, then install into a fresh consumer project', () => {
  let work = '';
  let tarball = '';
  let listing: string[] = [];
  /** The tarball unpacked: what the registry serves, before any install. */
  let unpacked = '';
  let packed: PackedManifest = { name: '', version: '', exports: {} };
  let fleet: RedisFleet | undefined;

  /** The tarball's files, as paths inside the package (without the `package/` prefix). */
  const files = () => listing.map((path) => path.replace(/^package\//, ''));

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

    unpacked = join(work, 'unpacked');
    await mkdir(unpacked);
    const untar = await run('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1'], {
      cwd: work,
      timeoutMs: 30_000,
    });
    expect(untar.code, describeRun('tar -x', untar)).toBe(0);
    packed = JSON.parse(await readFile(join(unpacked, 'package.json'), 'utf8')) as PackedManifest;
  }, 150_000);

  afterAll(async () => {
    await fleet?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds dist (ESM + .d.ts for ., ./core, ./health and ./keyv), the bin, package.json, README and LICENSE', () => {
    expect(basename(tarball)).toBe(`nestjs-ring-redis-${packed.version}.tgz`);
    for (const file of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/core/index.js',
      'dist/core/index.d.ts',
      'dist/health/index.js',
      'dist/health/index.d.ts',
      'dist/keyv/index.js',
      'dist/keyv/index.d.ts',
      'dist/cli.js',
    ]) {
      expect(files(), file).toContain(file);
    }
  });

  it('ships source maps and declaration maps whose sources are the TypeScript files it ships', async () => {
    const all = files();
    const compiled = all.filter((f) => /^dist\/.+\.(js|d\.ts)$/.test(f));
    expect(compiled.length).toBeGreaterThan(40);
    // Each compiled file names its map, and the map is there.
    for (const file of compiled) {
      expect(all, `${file}.map`).toContain(`${file}.map`);
      const text = await readFile(join(unpacked, file), 'utf8');
      expect(text.trimEnd().split('\n').at(-1), file).toBe(
        `//# sourceMappingURL=${basename(file)}.map`,
      );
    }
    const pointedAt = new Set<string>();
    const maps = all.filter((f) => f.endsWith('.map'));
    expect(maps).toHaveLength(compiled.length);
    for (const map of maps) {
      const parsed = JSON.parse(await readFile(join(unpacked, map), 'utf8')) as {
        version: number;
        file: string;
        sourceRoot?: string;
        sources: string[];
        mappings: string;
      };
      expect(parsed.version, map).toBe(3);
      expect(parsed.file, map).toBe(basename(map, '.map'));
      // A module of types alone compiles to `export {};`, with nothing to map.
      const typesOnly = (
        await readFile(join(unpacked, map.replace(/\.d\.ts\.map$|\.js\.map$/, '.js')), 'utf8')
      ).startsWith('export {};');
      expect(parsed.mappings.length > 0 || typesOnly, map).toBe(true);
      expect(parsed.sources.length, map).toBeGreaterThan(0);
      for (const source of parsed.sources) {
        // Resolved as a debugger or editor does: from the map's folder, through sourceRoot.
        const target = posix.normalize(
          posix.join(posix.dirname(map), parsed.sourceRoot ?? '', source),
        );
        expect(target, `${map} → ${source}`).toMatch(/^lib\/.+(?<!\.d)\.ts$/);
        expect(all, `${map} → ${source}`).toContain(target);
        pointedAt.add(target);
      }
    }
    // The sources shipped are exactly those the maps point at: lib/ mirrors dist/.
    expect(all.filter((f) => f.startsWith('lib/')).sort()).toEqual([...pointedAt].sort());
    expect(pointedAt).toContain('lib/core/index.ts');
  });

  it('holds nothing else: no tests, sample, bench, CI, configs or build caches', () => {
    const unexpected = files().filter(
      (path) =>
        !['package.json', 'README.md', 'LICENSE'].includes(path) &&
        !/^dist\/.+\.(js|d\.ts)(\.map)?$/.test(path) &&
        !/^lib\/.+(?<!\.d)\.ts$/.test(path),
    );
    expect(unexpected).toEqual([]);
    for (const path of files()) {
      expect(path).not.toMatch(
        /(^|\/)(test|tests|__tests__|sample|bench|\.ci|\.run|\.bench-tmp|node_modules|coverage)\//,
      );
      expect(path).not.toMatch(/\.(spec|test)\.|\.tgz$|tsconfig|vitest|fixture/);
    }
  });

  it('has a manifest whose exports, bin, peers and links a user can rely on', () => {
    expect(packed.name).toBe('nestjs-ring-redis');
    expect(packed.type).toBe('module');
    expect(packed.license).toBe('MIT');
    expect(packed.engines?.node).toMatch(/^>=\s*20\.19/);
    expect(packed.files).toEqual(expect.arrayContaining(['dist', 'lib', 'README.md', 'LICENSE']));
    expect(packed.repository).toEqual({ type: 'git', url: `git+${REPOSITORY}.git` });
    expect(packed.homepage).toBe(`${REPOSITORY}#readme`);
    expect(packed.bugs).toEqual({ url: `${REPOSITORY}/issues` });

    // Every target of the exports map, main, types and bin is in the tarball.
    const targets = [packed.main ?? '', packed.types ?? '', ...Object.values(packed.bin ?? {})];
    for (const [subpath, target] of Object.entries(packed.exports)) {
      if (typeof target === 'string') targets.push(target);
      else targets.push(...Object.values(target));
      expect(['.', './core', './health', './keyv', './package.json']).toContain(subpath);
    }
    expect(Object.keys(packed.exports)).toEqual(
      expect.arrayContaining(['.', './core', './health', './keyv']),
    );
    expect(packed.exports['.']).toMatchObject({ types: './dist/index.d.ts' });
    expect(packed.exports['./core']).toEqual({
      types: './dist/core/index.d.ts',
      default: './dist/core/index.js',
    });
    expect(packed.exports['./health']).toMatchObject({ types: './dist/health/index.d.ts' });
    expect(packed.exports['./keyv']).toMatchObject({ types: './dist/keyv/index.d.ts' });
    for (const target of targets.filter(Boolean)) {
      expect(files(), target).toContain(target.replace(/^\.\//, ''));
    }
    expect(packed.bin).toEqual({ 'nestjs-ring-redis': './dist/cli.js' });

    // Nest, rxjs and reflect-metadata are the user's; Terminus only if they use ./health, Keyv
    // only if they use ./keyv, the OpenTelemetry API only if they record metrics.
    for (const peer of [
      '@nestjs/common',
      '@opentelemetry/api',
      '@nestjs/core',
      '@nestjs/terminus',
      'keyv',
      'reflect-metadata',
      'rxjs',
    ]) {
      expect(packed.peerDependencies, peer).toHaveProperty([peer]);
      expect(packed.dependencies ?? {}, peer).not.toHaveProperty([peer]);
    }
    expect(packed.peerDependenciesMeta).toEqual({
      '@nestjs/terminus': { optional: true },
      '@opentelemetry/api': { optional: true },
      keyv: { optional: true },
    });
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
      ({ consumer, installed } = await installConsumer(work, 'consumer', [
        tarball,
        ...CONSUMER_DEPENDENCIES,
      ]));
    }, 200_000);

    it('ships no import that cannot resolve, a root that never loads Terminus, a core without Nest', async () => {
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
      ({ consumer, installed } = await installConsumer(work, 'core-consumer', [
        tarball,
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
