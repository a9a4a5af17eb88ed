export * from './core/index.js';
export {
  formatTwemproxyImport,
  fromTwemproxy,
  TwemproxyConfigError,
  type FromTwemproxyOptions,
  type TwemproxyGroupConfig,
  type TwemproxyImport,
  type TwemproxyImportFormat,
} from './twemproxy/from-twemproxy.js';
export * from './nest/index.js';
