/**
 * Trust rules, compiled once at load (octo-sts style): glob patterns become anchored regular
 * expressions, CEL expressions are parsed and type-checked, and any mistake stops start-up
 * naming the key. Per request, `decide` returns the first rule that admits the claims, with
 * the subject and job it computes, or null.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { JWK } from 'jose';
import { ConfigError, type TrustEntryConfig, type TrustRuleConfig } from '../config/broker.js';

/** The longest `subject` or `job_id` a rule may produce. */
const MAX_IDENTIFIER_LENGTH = 256;

type CelProgram = (context: Record<string, unknown>) => unknown;

interface ClaimMatcher {
  path: string;
  patterns: RegExp[];
}

export interface CompiledRule {
  name: string;
  /** `entry/rule`, the minted token's `client_id`. */
  clientId: string;
  matchers: ClaimMatcher[];
  condition: CelProgram | undefined;
  subject: CelProgram | undefined;
  job: CelProgram | undefined;
  grant: TrustRuleConfig['grant'];
}

export interface CompiledTrustEntry {
  name: string;
  issuer: string;
  jwks_uri: string | undefined;
  static_jwks: { keys: JWK[] } | undefined;
  audiences: ReadonlySet<string>;
  algorithms: string[];
  rules: CompiledRule[];
}

export interface RuleDecision {
  rule: CompiledRule;
  subject: string;
  /** Undefined when the rule has no `job` expression and the assertion has no `jti`. */
  job: string | undefined;
}

/** Why a matched rule could not produce an identity (the exchange is refused). */
export class RuleEvaluationError extends Error {
  override name = 'RuleEvaluationError';
}

const cel = new Environment({ unlistedVariablesAreDyn: false }).registerVariable('claims', 'map');

/** Compiles the configured trust entries; throws ConfigError naming the offending key. */
export function compileTrust(
  entries: readonly TrustEntryConfig[],
  staticKeys: Record<string, { keys: JWK[] }> = {},
): Map<string, CompiledTrustEntry> {
  const byIssuer = new Map<string, CompiledTrustEntry>();
  entries.forEach((entry, i) => {
    byIssuer.set(entry.issuer, {
      name: entry.name,
      issuer: entry.issuer,
      jwks_uri: entry.jwks_uri,
      static_jwks: staticKeys[entry.name],
      audiences: new Set(entry.audiences),
      algorithms: [...entry.algorithms],
      rules: entry.rules.map((rule, j) => compileRule(entry.name, rule, `trust[${i}].rules[${j}]`)),
    });
  });
  return byIssuer;
}

function compileRule(entryName: string, rule: TrustRuleConfig, at: string): CompiledRule {
  return {
    name: rule.name,
    clientId: `${entryName}/${rule.name}`,
    matchers: Object.entries(rule.match).map(([path, value]) => ({
      path,
      patterns: (Array.isArray(value) ? value : [value]).map(globToRegExp),
    })),
    condition: rule.condition === undefined ? undefined : compileCel(rule.condition, `${at}.condition`, ['bool', 'dyn']),
    subject: rule.subject === undefined ? undefined : compileCel(rule.subject, `${at}.subject`, ['string', 'dyn']),
    job: rule.job === undefined ? undefined : compileCel(rule.job, `${at}.job`, ['string', 'dyn']),
    grant: rule.grant,
  };
}

function compileCel(expression: string, at: string, types: string[]): CelProgram {
  let program;
  try {
    program = cel.parse(expression);
  } catch (err) {
    throw new ConfigError(`${at}: not a valid CEL expression: ${firstLine(err)}`);
  }
  const checked = program.check() as { valid: boolean; type?: string; error?: unknown };
  if (!checked.valid) throw new ConfigError(`${at}: ${firstLine(checked.error)}`);
  if (checked.type && !types.includes(checked.type)) {
    throw new ConfigError(`${at}: must evaluate to ${types[0]}, not ${checked.type}`);
  }
  return program as unknown as CelProgram;
}

const firstLine = (err: unknown): string => String((err as Error)?.message ?? err).split('\n')[0]!;

/** `refs/heads/*` -> /^refs\/heads\/.*$/s: `*` is any run of characters, everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

/**
 * Reads a claim by dotted path. Claim names may contain dots themselves (`kubernetes.io`), so
 * at each level the longest key that exists wins: `kubernetes.io.namespace` finds
 * `claims["kubernetes.io"].namespace`.
 */
export function readClaim(claims: unknown, path: string): unknown {
  const parts = path.split('.');
  const walk = (value: unknown, from: number): unknown => {
    if (from === parts.length) return value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    for (let end = parts.length; end > from; end--) {
      const key = parts.slice(from, end).join('.');
      if (Object.hasOwn(value, key)) {
        const found = walk((value as Record<string, unknown>)[key], end);
        if (found !== undefined) return found;
      }
    }
    return undefined;
  };
  return walk(claims, 0);
}

function matches(matcher: ClaimMatcher, claims: Record<string, unknown>): boolean {
  const value = readClaim(claims, matcher.path);
  const candidates = Array.isArray(value) ? value : [value];
  // A list claim matches when any element matches (CONTRACT section 3).
  return candidates.some(
    (v) =>
      (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') &&
      matcher.patterns.some((re) => re.test(String(v))),
  );
}

/** First rule whose `match` and `condition` hold. Evaluation errors count as "does not hold". */
export function decide(entry: CompiledTrustEntry, claims: Record<string, unknown>): RuleDecision | null {
  for (const rule of entry.rules) {
    if (!rule.matchers.every((m) => matches(m, claims))) continue;
    if (rule.condition) {
      let holds: unknown;
      try {
        holds = rule.condition({ claims });
      } catch {
        holds = false; // a claim the condition reads is missing: fail closed, try the next rule
      }
      if (holds !== true) continue;
    }
    const subject = rule.subject ? evaluateIdentifier(rule.subject, claims, 'subject') : (claims.sub as string);
    const job = rule.job
      ? evaluateIdentifier(rule.job, claims, 'job')
      : typeof claims.jti === 'string'
        ? claims.jti
        : undefined;
    return { rule, subject, job };
  }
  return null;
}

function evaluateIdentifier(program: CelProgram, claims: Record<string, unknown>, what: string): string {
  let value: unknown;
  try {
    value = program({ claims });
  } catch (err) {
    throw new RuleEvaluationError(`${what} expression failed: ${firstLine(err)}`);
  }
  if (typeof value === 'bigint' || typeof value === 'number') value = String(value);
  if (typeof value !== 'string' || value === '' || value.length > MAX_IDENTIFIER_LENGTH) {
    throw new RuleEvaluationError(`${what} expression gave no usable string`);
  }
  return value;
}
