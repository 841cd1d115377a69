// Checks HTTP responses against openapi.yaml, so that tests catch drift between the running
// broker and its published contract.
//
//   assertMatchesOpenApi('POST', '/oauth2/token', res.status, await res.json());
//
// The document is loaded once. Paths may carry a query string; templates such as
// `/admin/approvals/{id}` match one segment per parameter, and literal paths win over templated
// ones (OpenAPI 3.1, Paths Object). Response lookup: the exact status, then `4XX`-style
// ranges, then `default`. A 404 for a path/method the document does not describe is checked
// against `components/responses/NotFound` (the broker's answer for unknown routes).
// Schemas are JSON Schema 2020-12 (ajv, formats from ajv-formats); `$ref`s resolve within the
// document, including responses and headers kept under `components`.
import { AssertionError } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

export const OPENAPI_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

const DOC_ID = 'urn:mintgate:openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

export interface OpenApiOperation {
  method: string; // upper case, e.g. "POST"
  path: string; // the path template as written in the document
}

export type OpenApiDocument = Record<string, unknown> & {
  openapi?: unknown;
  paths?: Record<string, Record<string, unknown>>;
  components?: Record<string, Record<string, unknown>>;
};

export interface OpenApiValidator {
  readonly document: OpenApiDocument;
  operations(): OpenApiOperation[];
  assertMatches(method: string, path: string, status: number, body: unknown): void;
  /** Violations of the schema at a JSON pointer into the document (`#/components/schemas/X`); [] when valid. */
  errorsAt(pointer: string, value: unknown): string[];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Resolves a local JSON pointer (`#/a/b`) in `doc`; undefined when it leads nowhere. */
export function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  const body = ref.slice(1);
  if (body === '') return doc;
  if (!body.startsWith('/')) return undefined;
  let node: unknown = doc;
  for (const raw of body.slice(1).split('/')) {
    const token = unescapePointer(decodeURIComponent(raw));
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      node = node[Number(token)];
    } else if (isObject(node)) {
      if (!Object.prototype.hasOwnProperty.call(node, token)) return undefined;
      node = node[token];
    } else {
      return undefined;
    }
    if (node === undefined) return undefined;
  }
  return node;
}

/** Follows `$ref` chains of OpenAPI objects (responses, headers); returns the object and its pointer. */
function deref(doc: OpenApiDocument, node: unknown, pointer: string): { node: unknown; pointer: string } {
  const seen = new Set<string>();
  while (isObject(node) && typeof node.$ref === 'string') {
    const ref = node.$ref;
    if (seen.has(ref)) throw new Error(`openapi.yaml: $ref cycle at ${ref}`);
    seen.add(ref);
    const target = resolvePointer(doc, ref);
    if (target === undefined) throw new Error(`openapi.yaml: unresolvable $ref ${ref} (at ${pointer})`);
    node = target;
    pointer = ref;
  }
  return { node, pointer };
}

function templateRegex(template: string): RegExp {
  const parts = template.split(/(\{[^}/]+\})/);
  const source = parts
    .map((p) => (/^\{[^}/]+\}$/.test(p) ? '([^/]+)' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

function isJsonMediaType(type: string): boolean {
  const base = type.split(';')[0]!.trim().toLowerCase();
  return base === 'application/json' || base.endsWith('+json');
}

function pickMediaType(content: Json): string | undefined {
  const types = Object.keys(content);
  return (
    types.find((t) => t.split(';')[0]!.trim().toLowerCase() === 'application/json') ??
    types.find(isJsonMediaType) ??
    types[0]
  );
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    if (text === undefined) return String(value);
    return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
  } catch {
    return String(value);
  }
}

function formatError(e: ErrorObject): string {
  const at = e.instancePath === '' ? '(body)' : e.instancePath;
  const params = e.params as Record<string, unknown>;
  let detail = '';
  if (e.keyword === 'additionalProperties') detail = `: ${String(params.additionalProperty)}`;
  else if (e.keyword === 'enum') detail = `: ${describe(params.allowedValues)}`;
  else if (e.keyword === 'const') detail = `: ${describe(params.allowedValue)}`;
  return `  - ${at} ${e.message ?? e.keyword}${detail}  [${e.schemaPath}]`;
}

/** A validator over an already-parsed OpenAPI 3.1 document (exported for tests of this helper). */
export function createOpenApiValidator(document: OpenApiDocument): OpenApiValidator {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormatsModule.default(ajv);
  // The whole document is registered under one id so that every `#/components/...` $ref in a
  // schema resolves exactly as it does in the file.
  ajv.addSchema({ ...document, $id: DOC_ID }, DOC_ID);
  const compiled = new Map<string, ValidateFunction>();

  const paths = isObject(document.paths) ? (document.paths as Record<string, Json>) : {};
  const templates = Object.keys(paths)
    .map((template) => ({ template, regex: templateRegex(template), params: (template.match(/\{/g) ?? []).length }))
    .sort((a, b) => a.params - b.params || b.template.length - a.template.length);

  function validatorAt(pointer: string): ValidateFunction {
    let fn = compiled.get(pointer);
    if (!fn) {
      const got = ajv.getSchema(`${DOC_ID}${pointer}`);
      if (!got) throw new Error(`openapi.yaml: no schema at ${pointer}`);
      fn = got;
      compiled.set(pointer, fn);
    }
    return fn;
  }

  function operations(): OpenApiOperation[] {
    const out: OpenApiOperation[] = [];
    for (const [path, item] of Object.entries(paths)) {
      if (!isObject(item)) continue;
      for (const m of METHODS) if (isObject(item[m])) out.push({ method: m.toUpperCase(), path });
    }
    return out;
  }

  function findOperation(method: string, path: string): { pointer: string; op: Json; template: string } | undefined {
    const m = method.toLowerCase();
    for (const { template, regex } of templates) {
      if (!regex.test(path)) continue;
      const item = paths[template];
      if (isObject(item) && isObject(item[m])) {
        return { pointer: `#/paths/${escapePointer(template)}/${m}`, op: item[m] as Json, template };
      }
    }
    return undefined;
  }

  function fail(message: string, actual: unknown, expected: unknown): never {
    throw new AssertionError({ message, actual, expected, operator: 'assertMatchesOpenApi' });
  }

  function assertMatches(method: string, rawPath: string, status: number, body: unknown): void {
    const path = rawPath.split(/[?#]/)[0] || '/';
    const label = `${method.toUpperCase()} ${path} -> ${status}`;
    const found = findOperation(method, path);

    let responsePointer: string;
    let response: unknown;
    if (!found) {
      const notFound = isObject(document.components?.responses) ? document.components.responses.NotFound : undefined;
      if (status === 404 && notFound !== undefined) {
        ({ node: response, pointer: responsePointer } = deref(document, notFound, '#/components/responses/NotFound'));
      } else {
        const known = operations().map((o) => `${o.method} ${o.path}`).join(', ');
        fail(`${label}: openapi.yaml describes no operation ${method.toUpperCase()} ${path} (known: ${known})`, { method, path }, known);
      }
    } else {
      const responses = isObject(found.op.responses) ? found.op.responses : {};
      const keys = Object.keys(responses);
      const key =
        keys.find((k) => k === String(status)) ??
        keys.find((k) => k.toUpperCase() === `${String(status)[0]}XX`) ??
        keys.find((k) => k === 'default');
      if (key === undefined) {
        fail(
          `${label}: status ${status} is not described for ${method.toUpperCase()} ${found.template} (described: ${keys.join(', ')})`,
          status,
          keys,
        );
      }
      ({ node: response, pointer: responsePointer } = deref(
        document,
        responses[key],
        `${found.pointer}/responses/${escapePointer(key)}`,
      ));
    }

    const content = isObject(response) && isObject(response.content) ? response.content : undefined;
    if (!content || Object.keys(content).length === 0) {
      if (body === undefined || body === null || body === '') return;
      fail(`${label}: openapi.yaml describes an empty body, got ${describe(body)}`, body, '');
    }
    const mediaType = pickMediaType(content)!;
    const media = content[mediaType];
    if (!isObject(media) || media.schema === undefined) return; // any body is fine
    let value = body;
    if (typeof body === 'string' && isJsonMediaType(mediaType)) {
      try {
        value = JSON.parse(body);
      } catch {
        fail(`${label}: expected a ${mediaType} body, got text that is not JSON: ${describe(body)}`, body, mediaType);
      }
    }
    const schemaPointer = `${responsePointer}/content/${escapePointer(mediaType)}/schema`;
    const validate = validatorAt(schemaPointer);
    if (validate(value)) return;
    const errors = (validate.errors ?? []).map(formatError);
    fail(
      `${label}: body does not match openapi.yaml (${schemaPointer}):\n${errors.join('\n')}\nbody: ${describe(value)}`,
      value,
      media.schema,
    );
  }

  function errorsAt(pointer: string, value: unknown): string[] {
    const validate = validatorAt(pointer);
    return validate(value) ? [] : (validate.errors ?? []).map(formatError);
  }

  return { document, operations, assertMatches, errorsAt };
}

let shared: OpenApiValidator | undefined;

/** The parsed openapi.yaml of this repository (loaded once). */
export function openApiDocument(): OpenApiDocument {
  return sharedValidator().document;
}

function sharedValidator(): OpenApiValidator {
  if (!shared) {
    const parsed: unknown = parse(readFileSync(OPENAPI_PATH, 'utf8'));
    if (!isObject(parsed)) throw new Error(`${OPENAPI_PATH}: not a YAML mapping`);
    shared = createOpenApiValidator(parsed as OpenApiDocument);
  }
  return shared;
}

/**
 * Throws an AssertionError, listing every violation, unless `body` is what openapi.yaml says
 * `method path` answers with `status`. `body` is the parsed JSON (a string is parsed when the
 * response is JSON), the text for text responses, and undefined/''/null for an empty body.
 */
export function assertMatchesOpenApi(method: string, path: string, status: number, body: unknown): void {
  sharedValidator().assertMatches(method, path, status, body);
}

/** Violations of the schema at `pointer` in openapi.yaml (e.g. `#/components/schemas/TokenResponse`). */
export function openApiSchemaErrors(pointer: string, value: unknown): string[] {
  return sharedValidator().errorsAt(pointer, value);
}

/** Every operation in openapi.yaml, e.g. `{ method: 'POST', path: '/oauth2/token' }`. */
export function openApiOperations(): OpenApiOperation[] {
  return sharedValidator().operations();
}
