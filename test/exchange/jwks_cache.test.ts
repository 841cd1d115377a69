/**
 * JwksCache against real HTTP: the local issuer (discovery, JWKS, outages, redirects, delays)
 * and, where the issuer cannot misbehave in the needed way, a few lines of node:http. Time is
 * an injected clock, so cooldowns and cache ages are exercised without sleeping.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { errors as joseErrors, jwtVerify, type JWK } from 'jose';
import { JwksCache, KeysUnavailable, type JwksCacheOptions, type JwksSource } from '../../src/exchange/assertions/jwks_cache.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';

interface Served {
  url: string;
  hits: string[];
  close(): Promise<void>;
}

/** A throwaway HTTP server on 127.0.0.1 that records each request path. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '/');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

/** Settles when `cond` holds (background refreshes), or fails after ~1 s. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(cond(), what);
}

const isKeysUnavailable = (transient: boolean) => (err: unknown) => {
  assert.ok(err instanceof KeysUnavailable, `expected KeysUnavailable, got ${String(err)}`);
  assert.equal(err.transient, transient, `transient should be ${transient}: ${err.message}`);
  return true;
};

describe('JwksCache', () => {
  let idp: LocalIssuer;
  let t: number;
  const now = (): number => t;
  const cache = (opts: JwksCacheOptions = {}): JwksCache => new JwksCache({ now, ...opts });
  const byDiscovery = (): JwksSource => ({ issuer: idp.issuer });
  const byUri = (): JwksSource => ({ issuer: idp.issuer, jwks_uri: idp.jwksUri });
  const verify = async (c: JwksCache, source: JwksSource, token: string) =>
    jwtVerify(token, await c.resolver(source), { issuer: idp.issuer, currentDate: new Date(t) });

  beforeEach(async () => {
    t = Date.now();
    idp = await startLocalIssuer({ clock: now });
  });
  afterEach(async () => {
    await idp.close();
  });

  it('discovers the JWKS from {issuer}/.well-known/openid-configuration, then serves from memory', async () => {
    const c = cache();
    const { payload } = await verify(c, byDiscovery(), await idp.github());
    assert.equal(payload.iss, idp.issuer);
    assert.deepEqual(idp.fetches, { discovery: 1, jwks: 1 });
    await verify(c, byDiscovery(), await idp.github());
    assert.deepEqual(idp.fetches, { discovery: 1, jwks: 1 }, 'cached');
  });

  it('uses a configured jwks_uri without discovery', async () => {
    await verify(cache(), { issuer: idp.issuer, jwks_uri: idp.kubernetesJwksUri }, await idp.kubernetes());
    assert.deepEqual(idp.fetches, { discovery: 0, jwks: 1 });
  });

  it('makes one fetch for 20 concurrent first requests', async () => {
    idp.setDelay(50); // keep the first fetch in flight while the others arrive
    const c = cache();
    const token = await idp.github();
    const results = await Promise.all(Array.from({ length: 20 }, () => verify(c, byDiscovery(), token)));
    assert.equal(results.length, 20);
    assert.deepEqual(idp.fetches, { discovery: 1, jwks: 1 });
  });

  it('refetches on an unknown kid at most once per cooldown', async () => {
    const c = cache({ cooldownMs: 1000 });
    await verify(c, byUri(), await idp.github());
    assert.equal(idp.fetches.jwks, 1);

    await idp.rotate();
    const rotated = await idp.github();
    // Within the cooldown of the first fetch: no refetch, so the new kid is unknown.
    await assert.rejects(verify(c, byUri(), rotated), joseErrors.JWKSNoMatchingKey);
    assert.equal(idp.fetches.jwks, 1);

    t += 1001;
    await verify(c, byUri(), rotated);
    assert.equal(idp.fetches.jwks, 2, 'one refetch found the rotated key');

    const unknown = async (i: number) => idp.rawSign({ alg: 'RS256', kid: `made-up-${i}` }, { iss: idp.issuer, sub: 's', exp: Math.floor(t / 1000) + 60 }, 'key');
    const burst = async () => Promise.allSettled([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(async (i) => verify(c, byUri(), await unknown(i))));
    for (const r of await burst()) assert.equal(r.status, 'rejected');
    assert.equal(idp.fetches.jwks, 2, 'made-up kids within the cooldown fetch nothing');

    t += 1001;
    for (const r of await burst()) assert.equal(r.status, 'rejected');
    assert.equal(idp.fetches.jwks, 3, 'ten made-up kids after the cooldown share one refetch');
  });

  it('keeps serving stale keys while the IdP is down', async () => {
    const errors: string[] = [];
    const c = cache({ maxAgeMs: 1000, cooldownMs: 1000, onFetchError: (_issuer, err) => errors.push(err.message) });
    await verify(c, byUri(), await idp.github());
    idp.setDown(true);
    t += 2000; // older than maxAgeMs: a background refresh is attempted and fails
    await verify(c, byUri(), await idp.github());
    await eventually(() => idp.fetches.jwks === 2 && errors.length === 1, 'a refresh was attempted and reported');
    assert.match(errors[0]!, /HTTP 503/);
    await verify(c, byUri(), await idp.github());
  });

  it('reports an IdP that was never reachable as transient, and asks it at most once a second', async () => {
    idp.setDown(true);
    const c = cache();
    await assert.rejects(c.resolver(byUri()), isKeysUnavailable(true));
    await assert.rejects(c.resolver(byUri()), isKeysUnavailable(true));
    assert.equal(idp.fetches.jwks, 1, 'the second request within 1 s did not fetch');
    t += 1001;
    idp.setDown(false);
    await verify(c, byUri(), await idp.github());
    assert.equal(idp.fetches.jwks, 2);
  });

  it('times out a slow IdP (timeoutMs)', async () => {
    idp.setDelay(2000);
    const started = Date.now();
    await assert.rejects(cache({ timeoutMs: 100 }).resolver(byUri()), isKeysUnavailable(true));
    assert.ok(Date.now() - started < 1500, `gave up after ${Date.now() - started} ms`);
  });

  it('refuses a JWKS over maxBytes (declared by content-length), leaving no error behind', async () => {
    // The discarded body once surfaced as an uncaught RequestAbortedError: a crash on demand.
    const uncaught: unknown[] = [];
    const listener = (err: unknown): number => uncaught.push(err);
    process.on('uncaughtException', listener);
    try {
      idp.setJwksBody(JSON.stringify({ keys: idp.jwks().keys, padding: 'x'.repeat(10_000) }));
      await assert.rejects(cache({ maxBytes: 4096 }).resolver(byUri()), isKeysUnavailable(false));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', listener);
    }
  });

  it('refuses a JWKS over maxBytes when streamed without content-length', async () => {
    const keys = idp.jwks().keys;
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no length up front
      res.write(`{"keys":${JSON.stringify(keys)},"padding":"`);
      for (let i = 0; i < 10; i++) res.write('x'.repeat(1024));
      res.end('"}');
    });
    try {
      await assert.rejects(cache({ maxBytes: 4096 }).resolver({ issuer: idp.issuer, jwks_uri: `${server.url}/jwks` }), isKeysUnavailable(false));
    } finally {
      await server.close();
    }
  });

  it('refuses a JWKS with more than maxKeys keys', async () => {
    const real = idp.jwks().keys[0]!;
    idp.setJwksBody(JSON.stringify({ keys: [real, { ...real, kid: 'b' }, { ...real, kid: 'c' }] }));
    await assert.rejects(cache({ maxKeys: 2 }).resolver(byUri()), isKeysUnavailable(false));
    idp.setJwksBody(JSON.stringify({ keys: [real, { ...real, kid: 'b' }] }));
    t += 1001;
    await verify(cache({ maxKeys: 2 }), byUri(), await idp.github());
  });

  it('follows no redirect (discovery or JWKS)', async () => {
    const attacker = await serve((_req, res) => json(res, 200, { keys: [] }));
    try {
      idp.setRedirect(`${attacker.url}/keys`);
      await assert.rejects(cache().resolver(byDiscovery()), isKeysUnavailable(false));
      await assert.rejects(cache().resolver(byUri()), isKeysUnavailable(false));
      assert.deepEqual(attacker.hits, [], 'the redirect target was never fetched');
      assert.deepEqual(idp.fetches, { discovery: 1, jwks: 1 });
    } finally {
      await attacker.close();
    }
  });

  it('refuses a discovery document whose issuer is not exactly the configured one', async () => {
    // The configured issuer has a trailing slash; the document (rightly) names it without.
    await assert.rejects(cache().resolver({ issuer: `${idp.issuer}/` }), isKeysUnavailable(false));
    assert.deepEqual(idp.fetches, { discovery: 1, jwks: 0 });

    // A document that names another issuer: its jwks_uri (the attacker's) is never fetched.
    const attacker = await serve((_req, res) => json(res, 200, { keys: [] }));
    const liar = await serve((_req, res) => json(res, 200, { issuer: 'https://token.actions.githubusercontent.com', jwks_uri: `${attacker.url}/jwks` }));
    try {
      await assert.rejects(cache().resolver({ issuer: liar.url }), isKeysUnavailable(false));
      assert.deepEqual(liar.hits, ['/.well-known/openid-configuration']);
      assert.deepEqual(attacker.hits, []);
    } finally {
      await Promise.all([attacker.close(), liar.close()]);
    }
  });

  it('never fetches for static_jwks (the dev issuer)', async () => {
    const c = cache();
    const source: JwksSource = { issuer: idp.issuer, static_jwks: idp.jwks() };
    await verify(c, source, await idp.github());
    const unknown = await idp.rawSign({ alg: 'RS256', kid: 'nope' }, { iss: idp.issuer, sub: 's', exp: Math.floor(t / 1000) + 60 }, 'key');
    t += 60_000;
    await assert.rejects(verify(c, source, unknown), joseErrors.JWKSNoMatchingKey);
    assert.deepEqual(idp.fetches, { discovery: 0, jwks: 0 });
  });

  it('keeps only public signature keys that import (private, oct, enc, malformed and weak keys are dropped)', async () => {
    const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const real = idp.jwks().keys[0]!;
    idp.setJwksBody(
      JSON.stringify({
        keys: [
          { ...(attacker.privateKey.export({ format: 'jwk' }) as JWK), kid: 'private', alg: 'RS256' },
          { kty: 'oct', k: Buffer.alloc(32, 7).toString('base64url'), kid: 'oct', alg: 'HS256' },
          { ...(attacker.publicKey.export({ format: 'jwk' }) as JWK), kid: 'enc', use: 'enc' },
          { kty: 'RSA', kid: 'malformed', alg: 'RS256' },
          { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', kid: 'off-curve' },
          { ...(weak.publicKey.export({ format: 'jwk' }) as JWK), kid: 'weak', alg: 'RS256' },
          'not-an-object',
          real,
        ],
      }),
    );
    const dropped: Array<[string | undefined, string]> = [];
    const c = cache({ onKeyDropped: (_issuer, kid, reason) => dropped.push([kid, reason]) });
    await verify(c, byUri(), await idp.github());
    assert.deepEqual(
      dropped.map(([kid]) => kid),
      ['private', 'oct', 'enc', 'malformed', 'off-curve', 'weak', undefined],
    );
    const resolver = await c.resolver(byUri());
    // (jose's key sets refuse HS* outright; dropping oct keys is defence in depth.)
    for (const [kid, alg] of [['private', 'RS256'], ['oct', 'HS256'], ['enc', 'RS256'], ['malformed', 'RS256'], ['weak', 'RS256']] as const) {
      await assert.rejects(
        Promise.resolve().then(() => resolver({ alg, kid }, { payload: '', signature: '' })),
        (err) => err instanceof joseErrors.JOSEError && !(err instanceof KeysUnavailable),
        `kid ${kid} must not resolve`,
      );
    }
  });

  describe('tells an outage (transient) from a refusal', () => {
    const cases: Array<{ name: string; respond: (res: ServerResponse) => void; transient: boolean }> = [
      { name: 'HTTP 500', respond: (res) => json(res, 500, {}), transient: true },
      { name: 'HTTP 503', respond: (res) => json(res, 503, {}), transient: true },
      { name: 'HTTP 429', respond: (res) => json(res, 429, {}), transient: true },
      { name: 'HTTP 404', respond: (res) => json(res, 404, {}), transient: false },
      { name: 'HTTP 301', respond: (res) => res.writeHead(301, { location: 'http://127.0.0.1:1/' }).end(), transient: false },
      { name: 'a body that is not JSON', respond: (res) => json(res, 200, '<html>'), transient: false },
      { name: 'JSON that is not a JWK Set', respond: (res) => json(res, 200, { keys: 'all of them' }), transient: false },
      { name: 'a connection dropped mid-answer', respond: (res) => res.socket?.destroy(), transient: true },
    ];
    let server: Served;
    let respond: (res: ServerResponse) => void;
    beforeEach(async () => {
      server = await serve((_req, res) => respond(res));
    });
    afterEach(async () => server.close());

    for (const c of cases) {
      it(`${c.name}: transient=${c.transient}`, async () => {
        respond = c.respond;
        await assert.rejects(cache().resolver({ issuer: 'https://idp.example', jwks_uri: `${server.url}/jwks` }), isKeysUnavailable(c.transient));
      });
    }
  });
});
