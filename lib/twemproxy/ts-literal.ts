/*
 * Plain data and comments written as TypeScript source: single-quoted strings, bare keys
 * where they are valid identifiers, two-space indentation (what Prettier would leave as it is).
 */

const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await eval arguments'.split(
    ' ',
  ),
);

/** A JS identifier made of `name`: camelCased, `pool` when nothing usable is left. */
export function tsIdentifier(name: string): string {
  const words = name.split(/[^A-Za-z0-9_$]+/).filter(Boolean);
  let id = words.map((w, i) => (i === 0 ? w : w[0].toUpperCase() + w.slice(1))).join('');
  if (id === '' || /^[0-9]/.test(id)) id = `pool${id ? `_${id}` : ''}`;
  return RESERVED.has(id) ? `${id}Pool` : id;
}

/**
 * A `//` comment of `text`, its line terminators escaped as `\uXXXX`: any of them (U+2028
 * and U+2029 too, which JSON.stringify leaves as they are) would end the comment and turn
 * the rest of the text into code.
 */
export function tsComment(text: string): string {
  const escaped = text.replace(
    /[\n\r\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped === '' ? '//' : `// ${escaped}`;
}

/** A single-quoted TS string literal. */
function tsString(s: string): string {
  const body = JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
  return `'${body}'`;
}

/** An object key: bare when it is an identifier, quoted otherwise. */
export function tsKey(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : tsString(key);
}

/** A TS literal of plain data (strings, numbers, objects), two-space indented. */
export function tsLiteral(value: unknown, indent: string): string {
  if (typeof value === 'string') return tsString(value);
  if (typeof value === 'number') return String(value);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  const inner = `${indent}  `;
  const body = entries.map(([k, v]) => `${inner}${tsKey(k)}: ${tsLiteral(v, inner)},`);
  return `{\n${body.join('\n')}\n${indent}}`;
}
