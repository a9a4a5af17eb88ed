export * from './core/index.js';
export { formatTwemproxyImport, type TwemproxyImportFormat } from './twemproxy/format-import.js';
export {
  fromTwemproxy,
  type FromTwemproxyOptions,
  type TwemproxyGroupConfig,
  type TwemproxyImport,
} from './twemproxy/from-twemproxy.js';
export { TwemproxyConfigError } from './twemproxy/twemproxy-config-error.js';
export * from './nest/index.js';
