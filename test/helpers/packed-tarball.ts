/**
 * The tarball of the packaging suites (test/e2e/pack-*.spec.ts), as `npm pack` makes it for a
 * user: the pack runs in a copy of the working tree (node_modules linked, not copied), so it
 * neither races another test run over `dist/` nor depends on a `dist/` left behind: like a
 * fresh clone, the copy has none until `prepack` builds it. The tarball is also unpacked, as
 * the registry serves it, before any install.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect } from 'vitest';
import { describeRun, runCommand as run } from './run-command.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Top-level entries of the working tree the copy leaves out (build output, caches, VCS). */
const NOT_COPIED = new Set(['node_modules', '.git', 'dist', '.run', '.bench-tmp', 'coverage']);

/** The fields of the packed package.json the suites read. */
export interface PackedManifest {
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

export interface PackedTarball {
  /** The suite's temporary folder: the copy, the tarball, and whatever the suite adds. */
  readonly work: string;
  /** The tarball's path. */
  readonly tarball: string;
  /** The tarball unpacked: what the registry serves, before any install. */
  readonly unpacked: string;
  /** The packed package.json. */
  readonly packed: PackedManifest;
  /** The tarball's files, as paths inside the package (without the `package/` prefix). */
  files(): string[];
}

/**
 * Packs the working tree before the suite's first test (see above) and removes the suite's
 * temporary folder after its last.
 */
export function usePackedTarball(): PackedTarball {
  let work = '';
  let tarball = '';
  let listing: string[] = [];
  let unpacked = '';
  let packed: PackedManifest = { name: '', version: '', exports: {} };

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
    if (work) await rm(work, { recursive: true, force: true });
  });

  return {
    get work() {
      return work;
    },
    get tarball() {
      return tarball;
    },
    get unpacked() {
      return unpacked;
    },
    get packed() {
      return packed;
    },
    files: () => listing.map((path) => path.replace(/^package\//, '')),
  };
}
