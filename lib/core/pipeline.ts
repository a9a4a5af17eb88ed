/** A pipeline's replies in order; the first error among them is thrown as it is. */
export async function execPipeline(
  pending: Promise<[error: Error | null, result: unknown][] | null>,
): Promise<unknown[]> {
  const replies = (await pending) ?? [];
  const failed = replies.find(([error]) => error !== null);
  if (failed?.[0]) throw failed[0];
  return replies.map(([, result]) => result);
}
