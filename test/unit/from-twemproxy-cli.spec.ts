import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli, USAGE, type CliIo } from '../../lib/cli.js';
import { formatTwemproxyImport } from '../../lib/twemproxy/format-import.js';
import { fromTwemproxy } from '../../lib/twemproxy/from-twemproxy.js';
import { SAMPLE } from '../helpers/twemproxy-sample.js';

/**
 * A twemproxy import printed: formatTwemproxyImport's JSON and TypeScript, and the
 * `nestjs-ring-redis from-twemproxy` command that prints them — its usage, exit codes and
 * messages, and a reader that leaves early. What the import reads is in from-twemproxy.spec.ts.
 */

describe('formatTwemproxyImport', () => {
  it('prints JSON that parses back to the group', () => {
    const result = fromTwemproxy(SAMPLE, { pool: 'alpha' });
    expect(JSON.parse(formatTwemproxyImport(result, 'json'))).toEqual(result.group);
  });

  it('prints a TypeScript module with the warnings as comments', () => {
    const result = fromTwemproxy(SAMPLE, { pool: 'beta' });
    const ts = formatTwemproxyImport(result, 'ts');
    expect(ts).toContain("import type { RingDictOptions } from 'nestjs-ring-redis';");
    expect(ts).toContain('export const beta = {');
    expect(ts).toContain(
      [
        "    '10.0.0.1:6379': {",
        '      capacity: 29,',
        "      connection: 'redis://10.0.0.1:6379',",
        '    },',
      ].join('\n'),
    );
    expect(ts).toContain("  distribution: 'ketama',");
    expect(ts).toContain("  hashFunction: 'fnv1a_64',");
    expect(ts).toContain('} satisfies RingDictOptions;');
    expect(ts).toMatch(/^\/\/ - auto_eject_hosts: /m);
    expect(ts).toContain('groupOptions: { beta: options }');
  });

  it('escapes strings and names the constant after the pool', () => {
    const result = fromTwemproxy(`my-pool.v2:
  redis: true
  redis_auth: "it's \\\\ secret"
  servers: ["h:1:1 node'1"]
`);
    const ts = formatTwemproxyImport(result, 'ts');
    expect(ts).toContain('export const myPoolV2 = {');
    expect(ts).toContain("'node\\'1': {");
    expect(ts).toContain("password: 'it\\'s \\\\ secret',");
    const numeric = formatTwemproxyImport(
      fromTwemproxy('1:\n  redis: true\n  servers: ["h:1:1"]\n'),
      'ts',
    );
    expect(numeric).toContain('export const pool_1 = {');
    // Names a module cannot bind: a keyword, and the two strict mode refuses.
    for (const pool of ['class', 'eval', 'arguments']) {
      const ts = formatTwemproxyImport(
        fromTwemproxy(`${pool}:\n  redis: true\n  servers: ["h:1:1"]\n`),
        'ts',
      );
      expect(ts).toContain(`export const ${pool}Pool = {`);
    }
  });

  it('keeps line terminators in pool names and warnings from ending their comments', async () => {
    // A pool, an unknown option and a server named with U+2028, U+2029 and a newline.
    const result = fromTwemproxy(`"a\\u2028b":
  redis: true
  timeout: 400
  "x\\u2029y\\nz": 1
  servers: ["h:1:1 s\\u2028t"]
`);
    const ts = formatTwemproxyImport(result, 'ts');
    expect(ts).toMatch(/^\/\/ nutcracker pool "a\\u2028b", imported /m);
    expect(ts).toMatch(/^\/\/ - x\\u2029y\\u000az: unknown /m);
    expect(ts).toMatch(/^\/\/ {3}RingRedisModule\.forRoot\(\{ groups: \{ 'a\\u2028b': nodes/m);
    expect(await compileErrors(ts)).toBe('');
  }, 20_000);
});

/** What tsc reports on `source` as a module, with `nestjs-ring-redis` declared. */
async function compileErrors(source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ring-ts-'));
  try {
    await writeFile(join(dir, 'group.ts'), source);
    await writeFile(
      join(dir, 'ring.d.ts'),
      "declare module 'nestjs-ring-redis' { export type RingDictOptions = object; }\n",
    );
    const tsc = fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url));
    const args = ['--noEmit', '--strict', '--module', 'preserve', '--target', 'es2023'];
    const { stdout, error } = spawnSync(process.execPath, [tsc, ...args, 'group.ts', 'ring.d.ts'], {
      cwd: dir,
      encoding: 'utf8',
    });
    if (error) throw error;
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('nestjs-ring-redis from-twemproxy (CLI)', () => {
  function run(argv: string[], files: Record<string, string> = {}) {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
      readFile: (path) => {
        if (!Object.hasOwn(files, path)) {
          throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
        }
        return files[path];
      },
    };
    const code = runCli(argv, io);
    return { code, stdout, stderr };
  }

  it('exits quietly when its reader leaves early (| head -1)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ring-cli-'));
    try {
      const servers = Array.from(
        { length: 20_000 },
        (_, i) => `   - 10.0.${i >> 8}.${i & 255}:6379:1`,
      );
      const file = join(dir, 'big.yml');
      await writeFile(
        file,
        `p:\n  redis: true\n  timeout: 400\n  servers:\n${servers.join('\n')}\n`,
      );
      const cli = fileURLToPath(new URL('../../.run/lib/cli.js', import.meta.url));
      const child = spawn(process.execPath, [cli, 'from-twemproxy', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // The reader takes one chunk and leaves, as `head -1` does.
      child.stdout.once('data', () => child.stdout.destroy());
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).not.toMatch(/EPIPE|Error/);
      expect(code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('exits 2 on a file that is not UTF-8, as nutcracker refuses it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ring-cli-'));
    try {
      const file = join(dir, 'latin1.yml');
      // A Latin-1 é in a server's name: decoded leniently, it became another name (U+FFFD).
      const yaml = 'p:\n  redis: true\n  timeout: 400\n  servers:\n   - 10.0.0.1:6379:1 caf\xe9\n';
      await writeFile(file, Buffer.from(yaml, 'latin1'));
      const cli = fileURLToPath(new URL('../../.run/lib/cli.js', import.meta.url));
      const child = spawn(process.execPath, [cli, 'from-twemproxy', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect({ code, out }).toEqual({
        code: 2,
        out: `nestjs-ring-redis: cannot read ${file}: not UTF-8 text\n`,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints usage and exits 2 with no arguments; --help exits 0', () => {
    expect(run([])).toEqual({ code: 2, stdout: '', stderr: USAGE });
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(USAGE);
  });

  it('prints the group as JSON, warnings on stderr', () => {
    const { code, stdout, stderr } = run(['from-twemproxy', 'nc.yml', '--pool', 'alpha'], {
      'nc.yml': SAMPLE,
    });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(fromTwemproxy(SAMPLE, { pool: 'alpha' }).group);
    expect(stderr).toMatch(/^warning: listen: /m);
    expect(stderr.trim().split('\n')).toHaveLength(4);
  });

  it('prints TypeScript with --ts', () => {
    const { code, stdout } = run(['from-twemproxy', '--ts', 'nc.yml', '--pool=beta'], {
      'nc.yml': SAMPLE,
    });
    expect(code).toBe(0);
    expect(stdout).toContain('export const beta = {');
  });

  it('exits 2 with a clear message on a missing file, bad YAML, or an unknown pool', () => {
    const missing = run(['from-twemproxy', 'nope.yml']);
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toBe('nestjs-ring-redis: cannot read nope.yml: no such file\n');

    const bad = run(['from-twemproxy', 'bad.yml'], { 'bad.yml': 'a: [\n' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^nestjs-ring-redis: bad\.yml: invalid YAML/);

    const pool = run(['from-twemproxy', 'nc.yml', '--pool', 'zeta'], { 'nc.yml': SAMPLE });
    expect(pool.code).toBe(2);
    expect(pool.stderr).toMatch(/unknown pool "zeta"; the config defines: alpha, beta/);

    const ambiguous = run(['from-twemproxy', 'nc.yml'], { 'nc.yml': SAMPLE });
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/--pool NAME/);
  });

  it('exits 2 on bad usage', () => {
    for (const argv of [
      ['frobnicate'],
      ['from-twemproxy'],
      ['from-twemproxy', 'a.yml', 'b.yml'],
      ['from-twemproxy', 'a.yml', '--frob'],
      ['from-twemproxy', 'a.yml', '--pool'],
    ]) {
      const result = run(argv, { 'a.yml': SAMPLE });
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('Usage:');
    }
  });
});
