/** Compiles into `.run/` without tearing files a running process may load; tsc's status. */
export function compileRun(options?: { quiet?: boolean }): number;
