/**
 * The group names this process has seen, so that `RingRedisModule` can turn an injection of
 * an undeclared group into a clear boot error instead of Nest's generic "can't resolve
 * dependencies".
 *
 * `@InjectRingDict(name)` records `name` when its class is defined; `forRoot` / `forRootAsync`
 * record the groups they declare. The module reads both when Nest compiles it (not when
 * `forRoot()` is called), so classes defined after the `forRoot()` call are seen too.
 */
const requested = new Set<string>();
const declared = new Set<string>();

/** Records a group name asked for by `@InjectRingDict`. */
export function recordRequestedRingGroup(name: string): void {
  requested.add(name);
}

/** Records the group names one `RingRedisModule` declares. */
export function recordDeclaredRingGroups(names: readonly string[]): void {
  for (const name of names) declared.add(name);
}

/**
 * Names injected somewhere but declared by no `RingRedisModule` of this process. Names some
 * other instance declares are left out: an explaining provider for them could shadow the real
 * one (a local instance imported next to a global one that declares the group).
 */
export function undeclaredRingGroups(): string[] {
  return [...requested].filter((name) => !declared.has(name));
}
