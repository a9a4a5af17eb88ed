/** Result rows, their console rendering and the Markdown table of bench/README.md. */

export type Verdict = 'PASS' | 'MISS' | 'info';

/** One figure, printed next to its baseline with the ratio and the goal. */
export interface Row {
  /** The row's number in bench/README.md's table (1–6). */
  item: number;
  what: string;
  ours: string;
  baseline: string;
  ratio: string;
  goal: string;
  verdict: Verdict;
}

/** What a section hands back to the runner. */
export interface SectionResult {
  rows: Row[];
  /** Lines for the report that are not rows (e.g. why a section was skipped). */
  notes?: string[];
}

export function verdict(pass: boolean): Verdict {
  return pass ? 'PASS' : 'MISS';
}

/** `7.91 M ops/s`, `71.3 k ops/s`, `512 ops/s`: three significant digits. */
export function rate(perSecond: number, unit = 'ops/s'): string {
  if (perSecond >= 1e6) return `${sig(perSecond / 1e6)} M ${unit}`;
  if (perSecond >= 1e3) return `${sig(perSecond / 1e3)} k ${unit}`;
  return `${sig(perSecond)} ${unit}`;
}

/** A ratio as `37.6×`. */
export function times(ratio: number): string {
  return `${sig(ratio)}×`;
}

export function percent(fraction: number, digits = 2): string {
  return `${(fraction * 100).toFixed(digits)} %`;
}

/** Three significant digits, no exponent. */
export function sig(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

/** A plain-text table with aligned columns, for the console. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (cell ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function rowsTable(rows: readonly Row[]): string {
  return textTable(
    ['#', 'benchmark', 'ours', 'baseline', 'ratio', 'goal', 'result'],
    rows.map((r) => [String(r.item), r.what, r.ours, r.baseline, r.ratio, r.goal, r.verdict]),
  );
}

const escapeCell = (text: string) => text.replace(/\|/g, '\\|');

export function markdownTable(rows: readonly Row[]): string {
  const header = '| # | benchmark | ours | baseline | ratio | goal | result |';
  const rule = '|---|---|---|---|---|---|---|';
  const body = rows.map(
    (r) =>
      `| ${r.item} | ${[r.what, r.ours, r.baseline, r.ratio, r.goal, r.verdict]
        .map(escapeCell)
        .join(' | ')} |`,
  );
  return [header, rule, ...body].join('\n');
}

/** One contender's line in a load section's detail table. */
export function loadDetail(
  inFlight: number,
  name: string,
  samples: readonly { perSecond: number; cpuMicrosPerOp: number }[],
  median: { perSecond: number; cpuMicrosPerOp: number },
): string[] {
  return [
    String(inFlight),
    name,
    rate(median.perSecond),
    `${sig(median.cpuMicrosPerOp)} µs`,
    samples.map((s) => sig(s.perSecond / 1000)).join(' / ') + ' k',
  ];
}

export const LOAD_DETAIL_HEADER = [
  'in flight',
  'contender',
  'median',
  'client CPU/op',
  'rounds (ops/s)',
];
