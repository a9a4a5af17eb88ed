/**
 * What `npm pack` (which builds through `prepack`) puts in the tarball a user installs: dist
 * with its source maps and declaration maps, the TypeScript they point at, the bin, README and
 * LICENSE and nothing else, and a manifest whose exports, peers and links a user can rely on.
 * The installs of that tarball are in pack-install.spec.ts; the pack itself, in a copy of the
 * working tree, in test/helpers/packed-tarball.ts.
 */
import { readFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { usePackedTarball } from '../helpers/packed-tarball.js';

/** The repository's address: the registry links to it, its README and its issues. */
const REPOSITORY = 'https://github.com/nestjs-ring-redis/nestjs-ring-redis';

const pack = usePackedTarball();
const { files } = pack;

describe('npm pack: the tarball and its manifest', () => {
  it('holds dist (ESM + .d.ts for ., ./core, ./health and ./keyv), the bin, package.json, README and LICENSE', () => {
    const { tarball, packed } = pack;
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
    const { unpacked } = pack;
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
    const { packed } = pack;
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
});
