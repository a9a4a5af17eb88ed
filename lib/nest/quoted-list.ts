/** Names for a message: `"a", "b"`, or `none`. */
export function quotedList(names: readonly string[]): string {
  return names.length === 0 ? 'none' : names.map((n) => `"${n}"`).join(', ');
}
