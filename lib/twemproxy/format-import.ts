import type { TwemproxyImport } from './import-result.js';
import { tsComment, tsIdentifier, tsKey, tsLiteral } from './ts-literal.js';
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
  const header = [
    `nutcracker pool ${JSON.stringify(result.pool)}, imported by \`nestjs-ring-redis from-twemproxy\`.`,
  ];
  if (result.warnings.length > 0) {
    header.push('', 'Not carried over:', ...result.warnings.map((w) => `- ${w}`));
  }
  const usage = [
    'As a RingRedisModule group:',
    `  const { nodes, ...options } = ${id};`,
    `  RingRedisModule.forRoot({ groups: { ${tsKey(result.pool)}: nodes }, groupOptions: { ${tsKey(result.pool)}: options } })`,
  ];
  return [
    ...header.map(tsComment),
    "import type { RingDictOptions } from 'nestjs-ring-redis';",
    '',
    `export const ${id} = ${tsLiteral(result.group, '')} satisfies RingDictOptions;`,
    '',
    ...usage.map(tsComment),
    '',
  ].join('\n');
}
