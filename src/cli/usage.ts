/** A mistake in how a command was called (exit 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}
