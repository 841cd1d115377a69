/**
 * Durations in config: `90s`, `5m`, `1h`, `2d`, or combinations such as `1h30m`.
 * Returned in whole seconds, because every lifetime mintgate handles (token TTLs, key phases)
 * is a JWT NumericDate difference.
 */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(?:\d+[smhd])+$/;

/** Parses `90s` / `5m` / `1h` / `1h30m` into seconds; throws on anything else. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) {
    throw new Error(`"${text}" is not a duration (use e.g. 90s, 5m, 1h)`);
  }
  let seconds = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhd])/g)) {
    seconds += Number(amount) * UNIT_SECONDS[unit as string]!;
  }
  if (!Number.isSafeInteger(seconds)) throw new Error(`"${text}" is too long`);
  return seconds;
}

/** Formats seconds back into the shortest exact config form (`300` -> `5m`). */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}
