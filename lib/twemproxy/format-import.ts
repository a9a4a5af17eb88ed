import type { TwemproxyImport } from './import-result.js';
import { tsIdentifier, tsKey, tsLiteral } from './ts-literal.js';
import { TwemproxyConfigError } from './twemproxy-config-error.js';

/** How `formatTwemproxyImport` writes the result. */
export type TwemproxyImportFormat = 'json' | 'ts';

/**
 * The group config as text: `'json'` prints it as JSON (warnings are not part of it), `'ts'`
 * as a TypeScript module exporting a `RingDictOptions` constant, with the warnings as
 * comments and a line showing how to hand it to `RingRedisModule`.
 */
export function formatTwemproxyImport(
  result: TwemproxyImport,
  format: TwemproxyImportFormat = 'json',
): string {
  if (format === 'json') return `${JSON.stringify(result.group, null, 2)}\n`;
  if (format !== 'ts')
    throw new TwemproxyConfigError(`unknown output format ${JSON.stringify(format)}`);
  const id = tsIdentifier(result.pool);
  const lines = [
    `// nutcracker pool ${JSON.stringify(result.pool)}, imported by \`nestjs-ring-redis from-twemproxy\`.`,
  ];
  if (result.warnings.length > 0) {
    lines.push('//', '// Not carried over:');
    for (const w of result.warnings) lines.push(`// - ${w.replace(/[\r\n]+/g, ' ')}`);
  }
  lines.push(
    "import type { RingDictOptions } from 'nestjs-ring-redis';",
    '',
    `export const ${id} = ${tsLiteral(result.group, '')} satisfies RingDictOptions;`,
    '',
    '// As a RingRedisModule group:',
    `//   const { nodes, ...options } = ${id};`,
    `//   RingRedisModule.forRoot({ groups: { ${tsKey(result.pool)}: nodes }, groupOptions: { ${tsKey(result.pool)}: options } })`,
    '',
  );
  return lines.join('\n');
}
