// openapi.yaml is the published contract of the broker's HTTP API: it must be a valid OpenAPI 3.1
// document, describe exactly the endpoints that are built, use one error shape, and carry
// examples that match its own schemas. assertMatchesOpenApi (test/support/openapi.ts) must
// accept what the document allows and reject what it does not.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import pino from 'pino';
import { createBrokerApp } from '../../src/broker/app.js';
import { buildBrokerConfig } from '../../src/config/broker.js';
import { devConfig } from '../../src/config/dev.js';
import { InMemoryKeystoreRepository } from '../../src/keys/keystore.js';
import { createBrokerContext } from '../../src/main.js';
import { parse } from 'yaml';
import {
  OPENAPI_PATH,
  assertMatchesOpenApi,
  createOpenApiValidator,
  openApiDocument,
  openApiOperations,
  openApiSchemaErrors,
  resolvePointer,
  type OpenApiDocument,
} from '../support/openapi.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const OAUTH_ERROR_REF = '#/components/schemas/OAuthError';

const doc = openApiDocument();

function deref(node: unknown): unknown {
  let n = node;
  for (let i = 0; i < 10 && isObject(n) && typeof n.$ref === 'string'; i++) n = resolvePointer(doc, n.$ref);
  return n;
}

function walk(node: unknown, visit: (n: Json, at: string) => void, at = '#'): void {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, visit, `${at}/${i}`));
  else if (isObject(node)) {
    visit(node, at);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
  }
}

function operation(method: string, path: string): Json {
  const op = (doc.paths?.[path] as Json | undefined)?.[method.toLowerCase()];
  assert.ok(isObject(op), `${method} ${path} is described`);
  return op;
}

function usesOAuthError(schema: unknown): boolean {
  let found = false;
  walk(schema, (n) => {
    if (n.$ref === OAUTH_ERROR_REF) found = true;
  });
  return found;
}

function responseSchema(response: unknown): unknown {
  const r = deref(response);
  if (!isObject(r) || !isObject(r.content)) return undefined;
  const media = r.content['application/json'];
  return isObject(media) ? media.schema : undefined;
}

function tags(op: Json): string[] {
  return Array.isArray(op.tags) ? (op.tags as string[]) : [];
}

const goodToken = {
  access_token: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln',
  issued_token_type: ACCESS_TOKEN,
  token_type: 'Bearer',
  expires_in: 300,
  scope: 'inference:invoke',
};

describe('openapi.yaml: the document', () => {
  it('parses as YAML and is OpenAPI 3.1', () => {
    const parsed: unknown = parse(readFileSync(OPENAPI_PATH, 'utf8'));
    assert.ok(isObject(parsed));
    assert.match(String(parsed.openapi), /^3\.1\.\d+$/);
    assert.ok(isObject(parsed.info) && typeof parsed.info.title === 'string' && typeof parsed.info.version === 'string');
    assert.ok(isObject(parsed.paths));
  });

  it('resolves every $ref, and only local ones', () => {
    const broken: string[] = [];
    let count = 0;
    walk(doc, (n, at) => {
      if (typeof n.$ref !== 'string') return;
      count++;
      if (!n.$ref.startsWith('#/') || resolvePointer(doc, n.$ref) === undefined) broken.push(`${at}: ${n.$ref}`);
    });
    assert.ok(count > 20, `expected many $refs, found ${count}`);
    assert.deepEqual(broken, []);
  });

  it('compiles every component schema as JSON Schema 2020-12', () => {
    const schemas = doc.components?.schemas ?? {};
    for (const name of [
      'TokenExchangeRequest',
      'TokenResponse',
      'OAuthError',
      'IntrospectionResponse',
      'Revocation',
      'RevocationRequest',
      'KeyList',
      'ServerMetadata',
      'Jwks',
      'Readiness',
    ]) {
      assert.ok(isObject(schemas[name]), `components/schemas/${name} exists`);
    }
    for (const name of Object.keys(schemas)) {
      assert.doesNotThrow(() => openApiSchemaErrors(`#/components/schemas/${name}`, null), name);
    }
  });

  it('describes exactly the routes the broker serves (dev mode, so /dev routes too)', async () => {
    const got = openApiOperations()
      .map((o) => `${o.method} ${o.path}`)
      .sort();
    const config = buildBrokerConfig(devConfig('http://127.0.0.1:1'), { env: { LOG_LEVEL: 'silent' }, dev: true });
    const ctx = await createBrokerContext(config, { keystore: new InMemoryKeystoreRepository(), rotationTimer: false, log: pino({ level: 'silent' }) });
    try {
      const served = expressRoutes(createBrokerApp(ctx)).sort();
      assert.deepEqual(got, served);
    } finally {
      await ctx.store.close();
    }
  });

  it('gives every operation a unique operationId, a tag, a summary and described responses', () => {
    const ids = new Set<string>();
    for (const { method, path } of openApiOperations()) {
      const op = operation(method, path);
      assert.equal(typeof op.operationId, 'string', `${method} ${path} operationId`);
      assert.ok(!ids.has(op.operationId as string), `duplicate operationId ${String(op.operationId)}`);
      ids.add(op.operationId as string);
      assert.ok(tags(op).length > 0, `${method} ${path} has a tag`);
      assert.equal(typeof op.summary, 'string', `${method} ${path} summary`);
      assert.ok(isObject(op.responses) && Object.keys(op.responses).length > 0);
      for (const [status, r] of Object.entries(op.responses)) {
        const resolved = deref(r);
        assert.ok(isObject(resolved) && typeof resolved.description === 'string', `${method} ${path} ${status} description`);
      }
    }
  });

  it('gives every non-health, non-discovery, non-dev operation a 4xx OAuthError response', () => {
    for (const { method, path } of openApiOperations()) {
      const op = operation(method, path);
      if (tags(op).some((t) => ['health', 'discovery', 'dev'].includes(t))) continue;
      const has4xx = Object.entries(op.responses as Json).some(
        ([status, r]) => /^4\d\d$/.test(status) && usesOAuthError(responseSchema(r)),
      );
      assert.ok(has4xx, `${method} ${path} has a 4xx response whose body is an OAuthError`);
    }
  });

  it('uses OAuthError for every error response except readiness', () => {
    for (const { method, path } of openApiOperations()) {
      if (path === '/readyz') continue;
      const op = operation(method, path);
      for (const [status, r] of Object.entries(op.responses as Json)) {
        if (!/^[45]\d\d$/.test(status)) continue;
        assert.ok(usesOAuthError(responseSchema(r)), `${method} ${path} ${status} uses OAuthError`);
      }
    }
    assert.ok(usesOAuthError(responseSchema(doc.components?.responses?.NotFound)));
    assert.ok(usesOAuthError(responseSchema(doc.components?.responses?.ServerError)));
  });

  it('protects introspection and /admin with bearerAuth and leaves the rest open', () => {
    const scheme = doc.components?.securitySchemes?.bearerAuth;
    assert.ok(isObject(scheme));
    assert.equal(scheme.type, 'http');
    assert.equal(scheme.scheme, 'bearer');
    for (const perm of ['mintgate:admin', 'mintgate:introspect', 'mintgate:proxy', 'audit:read', 'MINTGATE_ADMIN_TOKEN']) {
      assert.ok(String(scheme.description).includes(perm), `bearerAuth description names ${perm}`);
    }
    for (const { method, path } of openApiOperations()) {
      const op = operation(method, path);
      const bearer = Array.isArray(op.security) && op.security.some((s) => isObject(s) && 'bearerAuth' in s);
      const needsAuth = path.startsWith('/admin/') || path === '/oauth2/introspect';
      assert.equal(bearer, needsAuth, `${method} ${path} bearerAuth`);
      if (needsAuth) {
        assert.ok('401' in (op.responses as Json) && '403' in (op.responses as Json), `${method} ${path} 401/403`);
      }
    }
    assert.equal(doc.security, undefined, 'no global security requirement');
  });

  it('marks the dev routes as dev mode only', () => {
    for (const { method, path } of openApiOperations()) {
      const op = operation(method, path);
      const dev = path.startsWith('/dev/');
      assert.equal(tags(op).includes('dev'), dev, `${method} ${path} dev tag`);
      if (dev) {
        assert.match(`${String(op.summary)} ${String(op.description)}`, /dev mode only/i);
        assert.ok('404' in (op.responses as Json), `${method} ${path} answers 404 outside dev mode`);
      }
    }
  });

  it('pins the token endpoint request: grant type, token types, limits', () => {
    const req = doc.components?.schemas?.TokenExchangeRequest as Json;
    const props = req.properties as Json;
    assert.deepEqual([...(req.required as string[])].sort(), ['grant_type', 'subject_token', 'subject_token_type']);
    assert.equal((props.grant_type as Json).const, TOKEN_EXCHANGE);
    assert.equal((props.subject_token as Json).maxLength, 8192);
    const types = (deref(props.subject_token_type) as Json).enum as string[];
    assert.deepEqual([...types].sort(), [
      ACCESS_TOKEN,
      'urn:ietf:params:oauth:token-type:id_token',
      'urn:ietf:params:oauth:token-type:jwt',
    ]);
    assert.equal((props.expires_in as Json).type, 'integer');
    assert.equal((props.expires_in as Json).minimum, 1);
    for (const p of ['audience', 'resource', 'scope', 'requested_token_type', 'client_id']) assert.ok(p in props, p);
    const body = (operation('POST', '/oauth2/token').requestBody as Json).content as Json;
    assert.ok('application/x-www-form-urlencoded' in body && 'application/json' in body);

    const errs = (v: unknown) => openApiSchemaErrors('#/components/schemas/TokenExchangeRequest', v);
    const ok = { grant_type: TOKEN_EXCHANGE, subject_token: 'a.b.c', subject_token_type: ACCESS_TOKEN };
    assert.deepEqual(errs(ok), []);
    assert.deepEqual(errs({ ...ok, audience: ['x', 'x'], scope: 'a b', expires_in: 60 }), []);
    assert.notDeepEqual(errs({ ...ok, grant_type: 'client_credentials' }), []);
    assert.notDeepEqual(errs({ ...ok, subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }), []);
    assert.notDeepEqual(errs({ ...ok, subject_token: 'x'.repeat(8193) }), []);
    assert.notDeepEqual(errs({ ...ok, expires_in: 0 }), []);
    assert.notDeepEqual(errs({ ...ok, scope: 'a  b' }), []);
  });

  it('pins the token endpoint responses, headers and error codes', () => {
    const responses = operation('POST', '/oauth2/token').responses as Json;
    assert.deepEqual(Object.keys(responses).sort(), ['200', '400', '413', '415', '429', '500', '503']);
    const ok = deref(responses['200']) as Json;
    assert.deepEqual(Object.keys(ok.headers as Json).sort(), ['Cache-Control', 'Pragma']);
    for (const status of ['429', '503']) {
      assert.ok('Retry-After' in ((deref(responses[status]) as Json).headers as Json), `${status} Retry-After`);
    }
    const errorOf = (status: number, error: string) => () =>
      assertMatchesOpenApi('POST', '/oauth2/token', status, { error, error_description: 'x' });
    for (const code of ['invalid_request', 'invalid_scope', 'invalid_target', 'unsupported_grant_type']) {
      assert.doesNotThrow(errorOf(400, code), code);
    }
    assert.throws(errorOf(400, 'invalid_grant'), /invalid_grant|allowed values/);
    assert.doesNotThrow(errorOf(413, 'invalid_request'));
    assert.doesNotThrow(errorOf(415, 'invalid_request'));
    assert.doesNotThrow(errorOf(429, 'slow_down'));
    assert.throws(errorOf(429, 'invalid_request'));
    assert.doesNotThrow(errorOf(503, 'temporarily_unavailable'));
  });

  it('pins the metadata: token-exchange only, no client authentication, the extension', () => {
    const ex = (deref(doc.components?.responses?.ServerMetadata) as Json).content as Json;
    const example = (ex['application/json'] as Json).example as Json;
    const issuer = example.issuer as string;
    assert.equal(example.token_endpoint, `${issuer}/oauth2/token`);
    assert.equal(example.jwks_uri, `${issuer}/jwks.json`);
    assert.equal(example.revocation_endpoint, `${issuer}/oauth2/revoke`);
    assert.equal(example.introspection_endpoint, `${issuer}/oauth2/introspect`);
    const errs = (v: unknown) => openApiSchemaErrors('#/components/schemas/ServerMetadata', v);
    assert.deepEqual(errs(example), []);
    assert.notDeepEqual(errs({ ...example, grant_types_supported: ['authorization_code'] }), []);
    assert.notDeepEqual(errs({ ...example, response_types_supported: ['code'] }), []);
    assert.notDeepEqual(errs({ ...example, token_endpoint_auth_methods_supported: ['client_secret_basic'] }), []);
    assert.notDeepEqual(errs({ ...example, id_token_signing_alg_values_supported: ['RS256'] }), []);
    const { jwks_uri: _omit, ...withoutJwks } = example;
    assert.notDeepEqual(errs(withoutJwks), []);
    const ext = ((doc.components?.schemas?.ServerMetadata as Json).properties as Json).subject_token_types_supported as Json;
    assert.match(String(ext.description), /extension/i);
  });

  it('has examples that match their own schemas', () => {
    let checked = 0;
    const examplesOf = (media: Json): unknown[] => [
      ...('example' in media ? [media.example] : []),
      ...(isObject(media.examples) ? Object.values(media.examples).map((e) => (deref(e) as Json).value) : []),
    ];
    for (const { method, path } of openApiOperations()) {
      const op = operation(method, path);
      const reqContent = isObject(op.requestBody) ? (deref(op.requestBody) as Json).content : undefined;
      if (isObject(reqContent)) {
        for (const [type, media] of Object.entries(reqContent)) {
          const pointer = `#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/requestBody/content/${type.replace(/\//g, '~1')}/schema`;
          for (const example of examplesOf(media as Json)) {
            assert.deepEqual(openApiSchemaErrors(pointer, example), [], `${method} ${path} request example (${type})`);
            checked++;
          }
        }
      }
      for (const [status, r] of Object.entries(op.responses as Json)) {
        const resolved = deref(r) as Json;
        if (!isObject(resolved.content)) continue;
        for (const media of Object.values(resolved.content)) {
          for (const example of examplesOf(media as Json)) {
            assertMatchesOpenApi(method, path, Number(status), example);
            checked++;
          }
        }
      }
    }
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      for (const example of (isObject(schema) && Array.isArray(schema.examples) ? schema.examples : []) as unknown[]) {
        assert.deepEqual(openApiSchemaErrors(`#/components/schemas/${name}`, example), [], `${name} example`);
        checked++;
      }
    }
    assert.ok(checked >= 20, `checked ${checked} examples`);
  });
});

describe('assertMatchesOpenApi', () => {
  it('accepts a correct token response and rejects one without access_token', () => {
    assertMatchesOpenApi('POST', '/oauth2/token', 200, goodToken);
    assertMatchesOpenApi('post', '/oauth2/token?x=1', 200, JSON.stringify(goodToken));
    const { access_token: _omit, ...missing } = goodToken;
    assert.throws(
      () => assertMatchesOpenApi('POST', '/oauth2/token', 200, missing),
      (err: unknown) => {
        assert.equal((err as Error).name, 'AssertionError');
        const message = (err as Error).message;
        assert.match(message, /POST \/oauth2\/token -> 200/);
        assert.match(message, /access_token/);
        return true;
      },
    );
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/token', 200, { ...goodToken, token_type: 'DPoP' }));
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/token', 200, { ...goodToken, refresh_token: 'r' }));
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/token', 200, { ...goodToken, expires_in: '300' }));
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/token', 200, 'not json'), /not JSON/);
  });

  it('rejects an error body with an extra field, and lists every violation', () => {
    assertMatchesOpenApi('POST', '/oauth2/token', 400, { error: 'invalid_request', error_description: 'no rule', error_uri: 'https://example.com/e' });
    assert.throws(
      () => assertMatchesOpenApi('POST', '/oauth2/token', 400, { error: 'invalid_request', message: 'x' }),
      /must NOT have additional properties: message/,
    );
    assert.throws(
      () => assertMatchesOpenApi('POST', '/oauth2/token', 400, { error: 'nope', detail: 1 }),
      (err: unknown) => {
        const message = (err as Error).message;
        assert.match(message, /detail/);
        assert.match(message, /allowed values/);
        return true;
      },
    );
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/token', 400, { error_description: 'no error' }), /required property 'error'/);
  });

  it('rejects statuses and operations the document does not describe', () => {
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/token', 418, { error: 'invalid_request' }), /status 418 is not described.*200/);
    assert.throws(() => assertMatchesOpenApi('GET', '/oauth2/token', 200, goodToken), /describes no operation GET \/oauth2\/token/);
    assert.throws(() => assertMatchesOpenApi('GET', '/nope', 200, {}), /describes no operation/);
    assertMatchesOpenApi('GET', '/nope', 404, { error: 'not_found' });
    assert.throws(() => assertMatchesOpenApi('GET', '/nope', 404, { error: 'missing' }));
  });

  it('checks introspection: exactly {active:false}, or the full active shape', () => {
    assertMatchesOpenApi('POST', '/oauth2/introspect', 200, { active: false });
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/introspect', 200, { active: false, scope: 'a' }));
    const active = {
      active: true,
      scope: 'inference:invoke',
      client_id: 'github-actions/model-release',
      token_type: 'Bearer',
      exp: 2,
      iat: 1,
      nbf: 1,
      sub: 'acme/models@refs/heads/main',
      aud: 'inference-gateway',
      iss: 'http://127.0.0.1:8080',
      jti: 'abc-123',
      job_id: '1-1',
      src: { iss: 'https://token.actions.githubusercontent.com', sub: 'repo:acme/models:ref:refs/heads/main' },
      act: { sub: 'parent', jti: 'parent-jti', act: { sub: 'grandparent', jti: 'gp-jti' } },
    };
    assertMatchesOpenApi('POST', '/oauth2/introspect', 200, active);
    const { job_id: _omit, ...noJob } = active;
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/introspect', 200, noJob));
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/introspect', 200, { ...active, aud: ['a', 'b'] }));
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/introspect', 200, { ...active, act: { sub: 'p' } }));
    assertMatchesOpenApi('POST', '/oauth2/introspect', 401, { error: 'invalid_request' });
    assertMatchesOpenApi('POST', '/oauth2/introspect', 401, { error: 'invalid_token' });
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/introspect', 401, { error: 'insufficient_scope' }));
    assertMatchesOpenApi('POST', '/oauth2/introspect', 403, { error: 'insufficient_scope' });
  });

  it('checks revocation: empty 200 at /oauth2/revoke, one selector in a Revocation', () => {
    assertMatchesOpenApi('POST', '/oauth2/revoke', 200, '');
    assertMatchesOpenApi('POST', '/oauth2/revoke', 200, undefined);
    assert.throws(() => assertMatchesOpenApi('POST', '/oauth2/revoke', 200, { ok: true }), /empty body/);
    const rev = { id: 'r1', jti: 'abc', reason: '', at: '2026-01-01T00:00:00Z', until: '2026-01-01T00:20:00Z' };
    assertMatchesOpenApi('POST', '/admin/revocations', 201, rev);
    assert.throws(() => assertMatchesOpenApi('POST', '/admin/revocations', 201, { ...rev, job: 'j' }));
    assert.throws(() => assertMatchesOpenApi('POST', '/admin/revocations', 201, { ...rev, at: 'yesterday' }), /date-time/);
    assert.throws(() => assertMatchesOpenApi('POST', '/admin/revocations', 201, { ...rev, reason: 'x'.repeat(257) }));
    const req = (v: unknown) => openApiSchemaErrors('#/components/schemas/RevocationRequest', v);
    assert.deepEqual(req({ sub: 's', reason: 'r' }), []);
    assert.notDeepEqual(req({ sub: 's', job: 'j' }), []);
    assert.notDeepEqual(req({ reason: 'r' }), []);
    assert.notDeepEqual(req({ jti: 'j', extra: 1 }), []);
  });

  it('checks keys, JWKS (no private members), health and readiness', () => {
    const key = {
      kid: 'k1',
      alg: 'ES256',
      state: 'current',
      created_at: '2026-01-01T00:00:00Z',
      activates_at: '2026-01-01T00:05:00Z',
      retires_at: '2026-01-02T00:05:00Z',
      expires_at: '2026-01-02T00:25:00Z',
    };
    assertMatchesOpenApi('GET', '/admin/keys', 200, { keys: [key] });
    assertMatchesOpenApi('POST', '/admin/keys/rotate', 200, { keys: [key, { ...key, kid: 'k2', state: 'next' }] });
    assert.throws(() => assertMatchesOpenApi('GET', '/admin/keys', 200, { keys: [{ ...key, state: 'active' }] }));
    const jwk = { kty: 'EC', kid: 'k1', alg: 'ES256', use: 'sig', crv: 'P-256', x: 'AA', y: 'BB' };
    assertMatchesOpenApi('GET', '/jwks.json', 200, { keys: [jwk] });
    assert.throws(() => assertMatchesOpenApi('GET', '/jwks.json', 200, { keys: [{ ...jwk, d: 'secret' }] }), /additional properties: d\b/);
    assert.throws(() => assertMatchesOpenApi('GET', '/jwks.json', 200, { keys: [{ ...jwk, use: 'enc' }] }));
    assert.throws(() => assertMatchesOpenApi('GET', '/jwks.json', 200, { keys: [{ kty: 'RSA', kid: 'r', alg: 'RS256', use: 'sig' }] }));
    assertMatchesOpenApi('GET', '/healthz', 200, { status: 'ok' });
    assertMatchesOpenApi('GET', '/readyz', 200, { status: 'ready' });
    assertMatchesOpenApi('GET', '/readyz', 503, { status: 'unready', reasons: ['store unreachable'] });
    assert.throws(() => assertMatchesOpenApi('GET', '/readyz', 503, { status: 'unready' }));
    assertMatchesOpenApi('GET', '/metrics', 200, '# HELP x y\n');
    assert.throws(() => assertMatchesOpenApi('GET', '/metrics', 200, { not: 'text' }));
  });

  it('matches path templates, literal paths first', () => {
    const synthetic: OpenApiDocument = {
      openapi: '3.1.0',
      paths: {
        '/admin/approvals/{id}': {
          get: { responses: { '200': { description: 'one', content: { 'application/json': { schema: { $ref: '#/components/schemas/One' } } } } } },
        },
        '/admin/approvals/pending': {
          get: { responses: { '200': { description: 'list', content: { 'application/json': { schema: { type: 'array' } } } } } },
        },
        '/admin/approvals/{id}/approve': {
          post: { responses: { '4XX': { description: 'err', content: { 'application/json': { schema: { $ref: '#/components/schemas/Err' } } } } } },
        },
      },
      components: {
        schemas: {
          One: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
          Err: { type: 'object', required: ['error'] },
        },
      },
    };
    const v = createOpenApiValidator(synthetic);
    assert.deepEqual(
      v.operations().map((o) => `${o.method} ${o.path}`).sort(),
      ['GET /admin/approvals/pending', 'GET /admin/approvals/{id}', 'POST /admin/approvals/{id}/approve'],
    );
    v.assertMatches('GET', '/admin/approvals/ap-123', 200, { id: 'ap-123' });
    assert.throws(() => v.assertMatches('GET', '/admin/approvals/ap-123', 200, []), /object/);
    v.assertMatches('GET', '/admin/approvals/pending', 200, []); // the literal path, not {id}
    v.assertMatches('POST', '/admin/approvals/ap-1/approve', 409, { error: 'conflict' }); // 4XX range
    assert.throws(() => v.assertMatches('POST', '/admin/approvals/ap-1/approve', 409, {}), /required property 'error'/);
    assert.throws(() => v.assertMatches('GET', '/admin/approvals/a/b', 200, { id: 'x' }), /describes no operation/);
    assert.throws(() => v.assertMatches('GET', '/admin/approvals/', 200, { id: 'x' }), /describes no operation/);
  });
});

/** Every `METHOD /path` an express app routes, nested routers included (express 5 router stack). */
function expressRoutes(app: { router: unknown }): string[] {
  type Layer = { route?: { path: string | string[]; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };
  const out: string[] = [];
  const walk = (stack: Layer[]): void => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods)) for (const path of paths) out.push(`${method.toUpperCase()} ${path.replace(/:(\w+)/g, '{$1}')}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app.router as { stack: Layer[] }).stack);
  return out;
}
