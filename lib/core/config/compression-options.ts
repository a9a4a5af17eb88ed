import {
  COMPRESSION_LEVELS,
  zstdFunctions,
  type RingCompressionOptions,
} from '../codec-compression.js';
import { RingConfigError } from '../errors.js';
import { checkOption, rejectUnknownOptions } from './option-checks.js';

export type { RingCompressionOptions } from '../codec-compression.js';

const FIELDS: ReadonlySet<string> = new Set(['threshold', 'algorithm', 'level']);

/** Checks the `compression` option; answers it, or undefined when it is off. */
export function checkCompression(
  option: unknown,
  where: string,
): RingCompressionOptions | undefined {
  if (option === undefined || option === false) return undefined;
  checkOption(
    option !== null && typeof option === 'object' && !Array.isArray(option),
    where,
    'compression',
    '{ threshold, algorithm?, level? } or false',
    option,
  );
  const at = `${where}compression.`;
  rejectUnknownOptions(option as object, FIELDS, at.slice(0, -1) + ': ');
  const { threshold, algorithm = 'gzip', level } = option as Partial<RingCompressionOptions>;
  checkOption(
    Number.isSafeInteger(threshold) && (threshold as number) >= 0,
    at,
    'threshold',
    'a whole number of bytes ≥ 0',
    threshold,
  );
  checkOption(
    algorithm === 'gzip' || algorithm === 'zstd',
    at,
    'algorithm',
    "'gzip' or 'zstd'",
    algorithm,
  );
  if (algorithm === 'zstd' && !zstdFunctions()) {
    throw new RingConfigError(
      `${at}algorithm: 'zstd' needs Node 22.15 or later (this is ${process.version}); use 'gzip'`,
    );
  }
  const levels = COMPRESSION_LEVELS[algorithm];
  checkOption(
    level === undefined || (Number.isInteger(level) && level >= levels.min && level <= levels.max),
    at,
    'level',
    `an integer from ${levels.min} to ${levels.max} for ${algorithm}`,
    level,
  );
  return { threshold: threshold as number, algorithm, level };
}
