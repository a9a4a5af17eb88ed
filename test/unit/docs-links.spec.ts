import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The Markdown documentation holds together: every relative link of the README, the docs pages,
 * the benchmark and sample READMEs and CONTRIBUTING points to a file of the repository, every
 * `#anchor` names a heading of the page it points to (GitHub's slugs), and the README stays a
 * front page. A moved page or a renamed heading fails here, not on a reader's click.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The front page may hold this many bytes at most (15 KB, counted as 15 000 bytes). */
const README_MAX_BYTES = 15_000;

/** Pages the README promises to link to. */
const REQUIRED_PAGES = [
  'docs/README.md',
  'docs/how-the-ring-works.md',
  'docs/ring-dict.md',
  'docs/failure-semantics.md',
  'docs/hinted-handoff.md',
  'docs/sentinel.md',
  'docs/nestjs-module.md',
  'docs/ring-cached.md',
  'docs/health-check.md',
  'docs/keyv-cache-manager.md',
  'docs/codecs-and-compression.md',
  'docs/events-and-logging.md',
  'docs/migrating-from-twemproxy.md',
  'docs/testing.md',
  'bench/README.md',
  'sample/README.md',
  'CONTRIBUTING.md',
];

/** The Markdown files whose links are checked, relative to `root`. */
function documentationFiles(root: string): string[] {
  const docs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .map((name) => `docs/${name}`)
    : [];
  const others = ['README.md', 'CONTRIBUTING.md', 'bench/README.md', 'sample/README.md'];
  return [...others.filter((file) => existsSync(join(root, file))), ...docs.sort()];
}

/**
 * The Markdown's lines outside fenced code blocks, each with its 1-based line number: a link or
 * a heading inside a code sample is not one.
 */
function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker !== undefined) {
      if (fence === undefined) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return;
    }
    if (fence === undefined) lines.push({ line: i + 1, text });
  });
  return lines;
}

/** A heading's text as GitHub renders it: no code ticks, links reduced to their text, no emphasis. */
function headingText(raw: string): string {
  return raw
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .replace(/\*/g, '')
    .trim();
}

/**
 * GitHub's anchor for a heading (github-slugger): lower case, every character that is not a
 * letter, a mark, a digit, `_`, `-` or a space dropped, spaces turned into hyphens.
 */
function githubSlug(heading: string): string {
  return headingText(heading)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a Markdown text, repeated headings numbered `-1`, `-2`… as GitHub does. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** A link found in a Markdown file. */
interface Link {
  line: number;
  target: string;
}

/** Inline links and images, and reference definitions, outside code. */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  const inline = /!?\[(?:[^[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g;
  for (const { line, text } of proseLines(markdown)) {
    // Code spans hold examples, not links: `[k, v]` followed by `(…)` is no link.
    const prose = text.replace(/(`+)[^`]*?\1/g, '');
    for (const match of prose.matchAll(inline)) links.push({ line, target: match[1] });
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(prose);
    if (definition) links.push({ line, target: definition[1] });
  }
  return links;
}

/** Links that leave the repository for the web (or mail) are not checked here. */
function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');
}

/**
 * What is wrong with one link of `file` (both relative to `root`), or undefined when it holds:
 * the file it names exists inside the repository, and its `#anchor` names a heading there.
 */
function problemOf(root: string, file: string, link: Link): string | undefined {
  if (isExternal(link.target)) return undefined;
  const hash = link.target.indexOf('#');
  const path = decodeURIComponent(hash === -1 ? link.target : link.target.slice(0, hash));
  const anchor = hash === -1 ? undefined : decodeURIComponent(link.target.slice(hash + 1));
  const where = `${file}:${link.line}: ${link.target}`;
  const target = path === '' ? join(root, file) : resolve(root, dirname(file), path);
  const inside = relative(root, target);
  if (inside.startsWith(`..${sep}`) || inside === '..') return `${where}: leaves the repository`;
  if (!existsSync(target)) return `${where}: no such file`;
  if (anchor === undefined) return undefined;
  if (!target.endsWith('.md') || statSync(target).isDirectory()) {
    // GitHub's line anchors on source files are the only others it can resolve.
    return /^L\d+(-L\d+)?$/.test(anchor)
      ? undefined
      : `${where}: an anchor into a non-Markdown file`;
  }
  if (!anchorsOf(readFileSync(target, 'utf8')).has(anchor)) {
    return `${where}: no heading "#${anchor}" in ${relative(root, target)}`;
  }
  return undefined;
}

/** Every broken link of `files` (relative to `root`), as `file:line: target: why`. */
function brokenLinks(root: string, files: readonly string[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    for (const link of linksOf(readFileSync(join(root, file), 'utf8'))) {
      const problem = problemOf(root, file, link);
      if (problem !== undefined) problems.push(problem);
    }
  }
  return problems;
}

describe('documentation links', () => {
  it('has every page the README links to', () => {
    const missing = REQUIRED_PAGES.filter((page) => !existsSync(join(ROOT, page)));
    expect(missing).toEqual([]);
  });

  it.each(documentationFiles(ROOT))('%s: every relative link and anchor resolves', (file) => {
    expect(brokenLinks(ROOT, [file])).toEqual([]);
  });

  it('checks a good number of links, so a parser that finds none cannot pass', () => {
    const files = documentationFiles(ROOT);
    const links = files.flatMap((file) => linksOf(readFileSync(join(ROOT, file), 'utf8')));
    expect(files.length).toBeGreaterThanOrEqual(REQUIRED_PAGES.length + 1);
    expect(links.filter((link) => !isExternal(link.target)).length).toBeGreaterThan(100);
  });

  it(`keeps README.md a front page of at most ${README_MAX_BYTES} bytes`, () => {
    expect(statSync(join(ROOT, 'README.md')).size).toBeLessThanOrEqual(README_MAX_BYTES);
  });
});

describe('documentation link checker', () => {
  const fixture = mkdtempSync(join(tmpdir(), 'docs-links-'));
  afterAll(() => rmSync(fixture, { recursive: true, force: true }));

  const write = (file: string, text: string): void => {
    mkdirSync(dirname(join(fixture, file)), { recursive: true });
    writeFileSync(join(fixture, file), text);
  };

  it('makes the anchors GitHub makes', () => {
    expect(githubSlug('`RingDict`: options and methods')).toBe('ringdict-options-and-methods');
    expect(githubSlug('6. `@RingCached` hit path')).toBe('6-ringcached-hit-path');
    expect(githubSlug('`clear({ force? })`')).toBe('clear-force-');
    expect(githubSlug('The [sample](sample/README.md) app')).toBe('the-sample-app');
    expect(githubSlug('Hash tag: `fnv1a_64` — Ünïcode')).toBe('hash-tag-fnv1a_64--ünïcode');
    expect([...anchorsOf('# A\n## Setup\n```\n# not a heading\n```\n## Setup\n')]).toEqual([
      'a',
      'setup',
      'setup-1',
    ]);
  });

  it('finds links in prose, not in code', () => {
    const links = linksOf(
      [
        'See [a](a.md), ![img](img.png) and [b](b.md#part "title").',
        'Not `[k, v](x.md)`, nor:',
        '```md',
        '[c](c.md)',
        '```',
        '[ref]: ref.md',
      ].join('\n'),
    );
    expect(links.map((link) => link.target)).toEqual(['a.md', 'img.png', 'b.md#part', 'ref.md']);
  });

  it('reports a missing file, a missing heading and a link out of the repository', () => {
    write('docs/page.md', '# Page\n\n## Known heading\n');
    write('img.png', '');
    write(
      'README.md',
      [
        '# Front',
        '[ok](docs/page.md#known-heading), [self](#front), [img](img.png), [web](https://example.com)',
        '[gone](docs/gone.md)',
        '[typo](docs/page.md#unknown-heading)',
        '[out](../elsewhere.md)',
        '[self typo](#fronts)',
      ].join('\n'),
    );
    expect(brokenLinks(fixture, ['README.md'])).toEqual([
      'README.md:3: docs/gone.md: no such file',
      'README.md:4: docs/page.md#unknown-heading: no heading "#unknown-heading" in docs/page.md',
      'README.md:5: ../elsewhere.md: leaves the repository',
      'README.md:6: #fronts: no heading "#fronts" in README.md',
    ]);
  });
});
