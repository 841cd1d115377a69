/**
 * What the broker's and the proxy's configs share: the error type, durations, reading a YAML
 * file strictly, turning schema issues into one message that names each key, and freezing.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A duration (`90s`, `5m`, `1h30m`) longer than 0, held in seconds. */
export const duration = z.string().transform((text, ctx) => {
  try {
    const seconds = parseDuration(text);
    if (seconds <= 0) throw new Error('must be longer than 0s');
    return seconds;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** Reads a YAML config file; a missing file, bad YAML or a repeated key is a ConfigError. */
export function readYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    // uniqueKeys (the default) makes a repeated key an error rather than a silent overwrite.
    return parseYaml(text, { uniqueKeys: true }) ?? {};
  } catch (err) {
    throw new ConfigError(`${path}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Parses `raw` with `schema`, or throws one ConfigError naming every offending key. */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const at = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') return `${[at, ...issue.keys].filter(Boolean).join('.')}: unknown key`;
    return `${at || '(top level)'}: ${issue.message}`;
  });
  throw new ConfigError(`${source}: ${lines.join('; ')}`);
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

/**
 * Freezes plain config data, deeply. Only arrays and plain objects: compiled values (byte
 * arrays, RE2 patterns that keep match state) are left as they are.
 */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && (Array.isArray(value) || Object.getPrototypeOf(value) === Object.prototype)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
