/**
 * The route table: first match wins, no match is a refusal (deny by default). Paths are matched
 * after normalisation (percent-decoding of unreserved characters, dot segments resolved), and the
 * normalised path is what goes upstream, so the route that was checked is the resource served:
 * `/v1/chat/completions/../../secrets/x` is `/secrets/x` for the table and for the model server.
 */
import type { RouteConfig } from '../config/proxy.js';
import type { MaskPolicy } from './mask/index.js';

export interface Route extends RouteConfig {
  /** Pattern segments; `*` one segment, a final `**` the rest. */
  readonly segments: readonly string[];
  /**
   * `mask` and `mask_fields` as one policy, or null when the route masks nothing. One object
   * for the route's life: the maskers remember per policy object what they learnt (keys).
   */
  readonly maskPolicy: MaskPolicy | null;
}

export class RouteTable {
  private readonly routes: readonly Route[];

  constructor(routes: readonly RouteConfig[]) {
    this.routes = routes.map((r) => ({
      ...r,
      segments: splitPath(r.path),
      maskPolicy: r.mask.length > 0 || r.mask_fields.length > 0 ? Object.freeze({ types: r.mask, fields: r.mask_fields }) : null,
    }));
  }

  /** The first route matching `method` and the normalised `path`, or undefined. */
  match(method: string, path: string): Route | undefined {
    const segments = splitPath(path);
    for (const route of this.routes) {
      if (route.method !== undefined && route.method !== method) continue;
      if (segmentsMatch(route.segments, segments)) return route;
    }
    return undefined;
  }
}

function splitPath(path: string): string[] {
  return path.split('/').slice(1);
}

function segmentsMatch(pattern: readonly string[], path: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === '**' && i === pattern.length - 1) return true;
    const s = path[i];
    if (s === undefined) return false;
    if (p === '*') {
      if (s === '') return false;
      continue;
    }
    if (p !== s) return false;
  }
  return pattern.length === path.length;
}

/** The path could not be normalised safely (an encoded slash, a NUL, bad percent-encoding). */
export class UnsafePath extends Error {
  override name = 'UnsafePath';
}

const UNRESERVED = /%(2[DdEe]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])/g;

/**
 * RFC 3986 normalisation of a request path (no query): percent-encoded unreserved characters
 * decoded (so `%2e%2e` is `..`), dot segments removed. An encoded `/`, `\` or NUL is refused:
 * servers disagree on whether it separates segments, and the table must see what upstream sees.
 */
export function normalizePath(rawPath: string): string {
  if (!rawPath.startsWith('/')) throw new UnsafePath('the path must start with /');
  if (/%(2[Ff]|5[Cc]|00)/.test(rawPath) || rawPath.includes('\\')) throw new UnsafePath('encoded slash, backslash or NUL in the path');
  if (/%(?![0-9A-Fa-f]{2})/.test(rawPath)) throw new UnsafePath('bad percent-encoding in the path');
  const decoded = rawPath.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  const out: string[] = [];
  const segments = decoded.split('/').slice(1);
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '.') {
      if (last) out.push('');
    } else if (segment === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(segment);
    }
  });
  return `/${out.join('/')}`;
}
