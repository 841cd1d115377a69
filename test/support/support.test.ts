// Exercises the test-support servers for real (sockets, HTTP, signatures), so a broken helper
// fails here rather than as a confusing failure in some broker or proxy test.
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  compactVerify,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
  type JWK,
} from 'jose';

import { startLocalIssuer, type LocalIssuer, type RawSigner } from './local_issuer.js';
import { startOidcProvider, type RunningOidcProvider } from './oidc_provider.js';
import { freePort } from './ports.js';
import { pingRedis, redisTestOptions, startRedis } from './redis.js';

const GITHUB_STRING_CLAIMS = [
  'actor', 'actor_id', 'base_ref', 'head_ref', 'event_name', 'ref', 'ref_type', 'ref_protected',
  'sha', 'repository', 'repository_id', 'repository_owner', 'repository_owner_id',
  'repository_visibility', 'enterprise', 'enterprise_id', 'run_id', 'run_number', 'run_attempt',
  'runner_environment', 'workflow', 'workflow_ref', 'workflow_sha', 'job_workflow_ref',
  'job_workflow_sha',
] as const;

const GITLAB_CLAIMS = [
  'namespace_id', 'namespace_path', 'project_id', 'project_path', 'project_visibility', 'user_id',
  'user_login', 'user_email', 'pipeline_id', 'pipeline_source', 'job_id', 'ref', 'ref_type',
  'ref_path', 'ref_protected', 'sha', 'runner_id', 'runner_environment', 'ci_config_ref_uri',
  'ci_config_sha',
] as const;

function segments(jws: string): string[] {
  const parts = jws.split('.');
  assert.equal(parts.length, 3, `not a 3-part compact JWS: ${jws.slice(0, 60)}`);
  return parts;
}

describe('freePort', () => {
  it('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('local issuer', () => {
  let idp: LocalIssuer;
  before(async () => {
    idp = await startLocalIssuer();
  });
  after(async () => {
    await idp.close();
  });

  async function discover(): Promise<{ issuer: string; jwks_uri: string; id_token_signing_alg_values_supported: string[] }> {
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    return (await res.json()) as { issuer: string; jwks_uri: string; id_token_signing_alg_values_supported: string[] };
  }

  it('serves discovery pointing at the GitHub-style JWKS path', async () => {
    const doc = await discover();
    assert.equal(doc.issuer, idp.issuer);
    assert.equal(doc.jwks_uri, `${idp.issuer}/.well-known/jwks`);
    assert.deepEqual(doc.id_token_signing_alg_values_supported, ['RS256']);
    const jwks = (await (await fetch(doc.jwks_uri)).json()) as { keys: JWK[] };
    assert.deepEqual(jwks, idp.jwks());
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]?.kid, idp.kid);
    assert.equal(jwks.keys[0]?.d, undefined, 'private part must not be published');
    const k8s = (await (await fetch(idp.kubernetesJwksUri)).json()) as { keys: JWK[] };
    assert.deepEqual(k8s, jwks);
  });

  it('mints GitHub tokens that verify against the remote JWKS', async () => {
    const jwks = createRemoteJWKSet(new URL((await discover()).jwks_uri));
    const token = await idp.github();
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: idp.issuer,
      audience: 'mintgate',
      algorithms: ['RS256'],
      typ: 'JWT',
      requiredClaims: ['iat', 'nbf', 'exp', 'jti', 'sub'],
    });
    assert.deepEqual(protectedHeader, { alg: 'RS256', typ: 'JWT', kid: idp.kid });
    assert.equal(payload.sub, 'repo:acme/models:ref:refs/heads/main');
    assert.equal(payload.aud, 'mintgate');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300);
    for (const claim of GITHUB_STRING_CLAIMS) {
      assert.equal(typeof payload[claim], 'string', `${claim} must be a string`);
    }
  });

  it('derives the GitHub sub from overrides and escapes ":"', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ref: 'refs/tags/v1' }, 'repo:acme/models:ref:refs/tags/v1'],
      [{ environment: 'prod' }, 'repo:acme/models:environment:prod'],
      [{ environment: 'a:b' }, 'repo:acme/models:environment:a%3Ab'],
      [{ event_name: 'pull_request' }, 'repo:acme/models:pull_request'],
      [{ sub: 'custom' }, 'custom'],
    ];
    for (const [claims, sub] of cases) {
      assert.equal(decodeJwt(await idp.github(claims)).sub, sub, JSON.stringify(claims));
    }
  });

  it('mints GitLab tokens that verify', async () => {
    const token = await idp.gitlab({ aud: 'https://mintgate.example' });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(idp.jwksUri)), {
      issuer: idp.issuer,
      audience: 'https://mintgate.example',
      algorithms: ['RS256'],
    });
    assert.equal(payload.sub, 'project_path:acme/models:ref_type:branch:ref:main');
    for (const claim of GITLAB_CLAIMS) assert.ok(claim in payload, `missing ${claim}`);
    assert.equal(payload.project_path, 'acme/models');
    assert.equal(typeof payload.pipeline_id, 'string');
    assert.equal(typeof payload.runner_id, 'number');
    const tag = decodeJwt(await idp.gitlab({ ref: 'v1.0', ref_type: 'tag' }));
    assert.equal(tag.sub, 'project_path:acme/models:ref_type:tag:ref:v1.0');
  });

  it('mints Kubernetes tokens that verify against /openid/v1/jwks', async () => {
    const token = await idp.kubernetes({ 'kubernetes.io': { namespace: 'ci', pod: null } });
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(idp.kubernetesJwksUri)), {
      issuer: idp.issuer,
      audience: 'mintgate',
      algorithms: ['RS256'],
      requiredClaims: ['iat', 'nbf', 'exp'],
    });
    assert.deepEqual(protectedHeader, { alg: 'RS256', kid: idp.kid }, 'the API server sends no typ');
    assert.deepEqual(payload.aud, ['mintgate']);
    assert.equal(payload.sub, 'system:serviceaccount:ci:trainer');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);
    const k8s = payload['kubernetes.io'] as Record<string, unknown>;
    assert.equal(k8s.namespace, 'ci');
    assert.equal(k8s.pod, undefined, 'null removes a nested default');
    assert.deepEqual(Object.keys(k8s.serviceaccount as object).sort(), ['name', 'uid']);
  });

  it('applies sign() defaults and lets null leave one out', async () => {
    const before = Math.floor(Date.now() / 1000);
    const full = decodeJwt(await idp.sign({ sub: 'x' }));
    assert.equal(full.iss, idp.issuer);
    assert.match(String(full.jti), /^[0-9a-f-]{36}$/);
    assert.ok((full.iat ?? 0) >= before && full.nbf === full.iat && full.exp === (full.iat ?? 0) + 300);
    const bare = decodeJwt(await idp.sign({ sub: 'x', jti: null, exp: null, iat: 5 }));
    assert.deepEqual(Object.keys(bare).sort(), ['iat', 'iss', 'nbf', 'sub']);
    assert.equal(bare.iat, 5);
    const header = decodeProtectedHeader(await idp.sign({}, { typ: 'at+jwt', kid: 'other' }));
    assert.deepEqual(header, { alg: 'RS256', typ: 'at+jwt', kid: 'other' });
  });

  it('rotates keys, publishing old and new, and drops old ones', async () => {
    const oldKid = idp.kid;
    const oldToken = await idp.github();
    const newKid = await idp.rotate();
    assert.notEqual(newKid, oldKid);
    assert.equal(idp.kid, newKid);
    const newToken = await idp.github();
    assert.deepEqual(idp.jwks().keys.map((k) => k.kid), [oldKid, newKid]);
    // A fresh remote set, so nothing cached from earlier tests hides the new key.
    const fresh = createRemoteJWKSet(new URL(idp.jwksUri));
    for (const [token, kid] of [[oldToken, oldKid], [newToken, newKid]] as const) {
      const { protectedHeader } = await jwtVerify(token, fresh, { issuer: idp.issuer, audience: 'mintgate' });
      assert.equal(protectedHeader.kid, kid);
    }
    idp.dropOldKeys();
    assert.deepEqual(idp.jwks().keys.map((k) => k.kid), [newKid]);
    await assert.rejects(jwtVerify(oldToken, createLocalJWKSet(idp.jwks())), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
    await jwtVerify(newToken, createLocalJWKSet(idp.jwks()));
  });

  it('counts fetches and answers 503 everywhere while down', async () => {
    idp.fetches.discovery = 0;
    idp.fetches.jwks = 0;
    idp.setDown(true);
    try {
      for (const url of [idp.discoveryUrl, idp.jwksUri, idp.kubernetesJwksUri, `${idp.issuer}/nope`]) {
        const res = await fetch(url);
        await res.arrayBuffer();
        assert.equal(res.status, 503, url);
      }
    } finally {
      idp.setDown(false);
    }
    assert.deepEqual(idp.fetches, { discovery: 1, jwks: 2 });
    assert.equal((await fetch(idp.jwksUri)).status, 200);
    assert.equal((await fetch(`${idp.issuer}/nope`)).status, 404);
  });

  it('redirects discovery and JWKS when told to', async () => {
    idp.setRedirect('http://127.0.0.1:9/evil-jwks');
    try {
      for (const url of [idp.discoveryUrl, idp.jwksUri]) {
        const res = await fetch(url, { redirect: 'manual' });
        assert.equal(res.status, 302);
        assert.equal(res.headers.get('location'), 'http://127.0.0.1:9/evil-jwks');
      }
    } finally {
      idp.setRedirect(null);
    }
    assert.equal((await fetch(idp.jwksUri, { redirect: 'manual' })).status, 200);
  });

  it('serves an overridden JWKS body and a delay', async () => {
    const giant = JSON.stringify({ keys: Array.from({ length: 2000 }, (_, i) => ({ kty: 'oct', kid: String(i), k: 'AA' })) });
    idp.setJwksBody(giant);
    try {
      assert.equal(await (await fetch(idp.kubernetesJwksUri)).text(), giant);
    } finally {
      idp.setJwksBody(null);
    }
    assert.deepEqual(await (await fetch(idp.jwksUri)).json(), idp.jwks());
    idp.setDelay(150);
    try {
      const started = Date.now();
      await (await fetch(idp.discoveryUrl)).arrayBuffer();
      assert.ok(Date.now() - started >= 140, 'delay applied');
    } finally {
      idp.setDelay(0);
    }
  });

  describe('rawSign', () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cases: Array<{ name: string; header: Record<string, unknown> | string; payload: Record<string, unknown> | string; signer: RawSigner; check: (jws: string, parts: string[]) => void | Promise<void> }> = [
      {
        name: 'alg none, empty signature',
        header: { alg: 'none', typ: 'JWT' },
        payload: { sub: 'admin' },
        signer: 'none',
        check: (_jws, parts) => assert.equal(parts[2], ''),
      },
      {
        name: 'honest RS256 verifies with the published key',
        header: { alg: 'RS256' },
        payload: { sub: 'a' },
        signer: 'rsa',
        check: async (jws) => {
          await compactVerify(jws, createPublicKey(idp.publicPem()));
        },
      },
      {
        name: 'alg none header carrying a real RS256 signature',
        header: { alg: 'none' },
        payload: { sub: 'a' },
        signer: 'rsa',
        check: (_jws, parts) => {
          const input = Buffer.from(`${parts[0]}.${parts[1]}`);
          assert.ok(cryptoVerify('sha256', input, createPublicKey(idp.publicPem()), Buffer.from(parts[2] ?? '', 'base64url')));
        },
      },
      {
        name: 'ES256 psychic signature (64 zero bytes)',
        header: { alg: 'ES256' },
        payload: { sub: 'admin' },
        signer: { zeroSignature: 64 },
        check: (_jws, parts) => assert.deepEqual(Buffer.from(parts[2] ?? '', 'base64url'), Buffer.alloc(64)),
      },
      {
        name: 'duplicate claims via a pre-serialised payload',
        header: { alg: 'RS256' },
        payload: '{"sub":"a","sub":"admin"}',
        signer: 'rsa',
        check: (_jws, parts) => assert.equal(Buffer.from(parts[1] ?? '', 'base64url').toString(), '{"sub":"a","sub":"admin"}'),
      },
      {
        name: 'duplicate header keys via a pre-serialised header',
        header: '{"alg":"RS256","alg":"none"}',
        payload: { sub: 'a' },
        signer: { raw: Buffer.from([1, 2, 3]) },
        check: (_jws, parts) => {
          assert.equal(Buffer.from(parts[0] ?? '', 'base64url').toString(), '{"alg":"RS256","alg":"none"}');
          assert.equal(parts[2], Buffer.from([1, 2, 3]).toString('base64url'));
        },
      },
      {
        name: 'b64=false carries the payload unencoded (RFC 7797)',
        header: { alg: 'RS256', b64: false, crit: ['b64'] },
        payload: '{"sub":"admin"}',
        signer: 'rsa',
        check: async (jws, parts) => {
          assert.equal(parts[1], '{"sub":"admin"}');
          // A plain JWS library honours it; a JWT verifier must not.
          await compactVerify(jws, createPublicKey(idp.publicPem()));
          await assert.rejects(jwtVerify(jws, createPublicKey(idp.publicPem())));
        },
      },
      {
        name: 'embedded attacker jwk, signed with the attacker key',
        header: { alg: 'ES256', jwk: attacker.publicKey.export({ format: 'jwk' }) },
        payload: { sub: 'admin' },
        signer: { privateKey: attacker.privateKey },
        check: async (jws) => {
          await compactVerify(jws, attacker.publicKey);
        },
      },
      {
        name: 'crit naming an unknown extension, jku, x5c and cty headers',
        header: { alg: 'RS256', crit: ['exp-ext'], 'exp-ext': 1, jku: 'http://127.0.0.1:9/jwks', x5c: ['AAAA'], cty: 'JWT' },
        payload: { sub: 'a' },
        signer: 'rsa',
        check: (_jws, parts) => {
          const header = JSON.parse(Buffer.from(parts[0] ?? '', 'base64url').toString()) as Record<string, unknown>;
          assert.deepEqual(header.crit, ['exp-ext']);
          assert.equal(header.cty, 'JWT');
        },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const jws = await idp.rawSign(c.header, c.payload, c.signer);
        await c.check(jws, segments(jws));
      });
    }

    it('HMACs with exactly the PEM text for the RS/HS confusion attack', async () => {
      const pem = idp.publicPem();
      assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
      const jws = await idp.rawSign({ alg: 'HS256' }, { sub: 'admin' }, { hmacSecret: Buffer.from(pem) });
      const [h, p, s] = segments(jws);
      assert.equal(s, createHmac('sha256', pem).update(`${h}.${p}`).digest('base64url'));
    });

    it('refuses a b64=false payload that contains "."', async () => {
      await assert.rejects(idp.rawSign({ alg: 'RS256', b64: false }, { iss: 'a.b' }, 'rsa'), TypeError);
    });
  });

  it('serves an ES256 issuer under a path prefix (GHES style)', async () => {
    const ghes = await startLocalIssuer({ alg: 'ES256', path: '/_services/token' });
    try {
      assert.match(ghes.issuer, /^http:\/\/127\.0\.0\.1:\d+\/_services\/token$/);
      const doc = (await (await fetch(`${ghes.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
      assert.equal(doc.issuer, ghes.issuer);
      const { protectedHeader } = await jwtVerify(await ghes.github(), createRemoteJWKSet(new URL(doc.jwks_uri)), {
        issuer: ghes.issuer,
        algorithms: ['ES256'],
      });
      assert.equal(protectedHeader.alg, 'ES256');
      assert.equal((await fetch(`http://127.0.0.1:${ghes.port}/.well-known/jwks`)).status, 404);
      const psychic = await ghes.rawSign({ alg: 'ES256', kid: ghes.kid }, { sub: 'x' }, { zeroSignature: 64 });
      await assert.rejects(jwtVerify(psychic, createLocalJWKSet(ghes.jwks())));
    } finally {
      await ghes.close();
    }
  });
});

describe('oidc-provider', () => {
  let op: RunningOidcProvider;
  before(async () => {
    op = await startOidcProvider();
  });
  after(async () => {
    await op.close();
  });

  it('issues RFC 9068 JWTs that verify via discovery + JWKS', async () => {
    const doc = (await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    assert.equal(doc.issuer, op.issuer);
    assert.equal(doc.jwks_uri, op.jwksUri);
    const token = await op.getToken({ scope: 'models:read unknown' });
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(doc.jwks_uri)), {
      issuer: op.issuer,
      audience: 'mintgate',
      algorithms: ['RS256'],
      typ: 'at+jwt',
      requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'client_id'],
    });
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(payload.aud, 'mintgate');
    assert.equal(payload.sub, op.clientId);
    assert.equal(payload.client_id, op.clientId);
    assert.equal(payload.scope, 'models:read', 'unknown scopes are dropped silently');
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 300);
    assert.equal(payload.nbf, undefined);
  });

  it('uses an absolute-URI resource verbatim as aud and refuses a bare one', async () => {
    assert.equal(decodeJwt(await op.getToken({ resource: 'urn:mintgate' })).aud, 'urn:mintgate');
    assert.equal(decodeJwt(await op.getToken({ audience: 'sts.example/a b' })).aud, 'sts.example/a b');
    await assert.rejects(op.getToken({ resource: 'mintgate' }), /invalid_target/);
  });
});

describe('startRedis', redisTestOptions(), () => {
  it('starts a private server that answers PING, survives kill+restart and stops', async () => {
    const redis = await startRedis({ args: ['--maxmemory', '8mb'] });
    assert.ok(redis, 'redisTestOptions did not skip, so redis-server must start');
    try {
      assert.notEqual(redis.port, 6379);
      assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
      assert.equal(await pingRedis(redis.port), true);
      redis.kill();
      // SIGKILL is asynchronous; wait for the port to go quiet.
      for (let i = 0; i < 40 && (await pingRedis(redis.port)); i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(await pingRedis(redis.port), false);
      await redis.restart();
      assert.equal(await pingRedis(redis.port), true);
    } finally {
      await redis.stop();
    }
    assert.equal(await pingRedis(redis.port), false);
    await redis.stop();
  });
});

describe('startRedis without redis-server on PATH', () => {
  function withEnv<T>(env: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    const set = (vars: Record<string, string | undefined>): void => {
      for (const [k, v] of Object.entries(vars)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    };
    set(env);
    return fn().finally(() => set(saved));
  }

  const empty = mkdtempSync(join(tmpdir(), 'mintgate-nopath-'));
  after(() => rmSync(empty, { recursive: true, force: true }));

  it('throws when MINTGATE_REQUIRE_REDIS=1, and does not skip', () =>
    withEnv({ PATH: empty, MINTGATE_REQUIRE_REDIS: '1' }, async () => {
      assert.deepEqual(redisTestOptions(), { skip: false });
      await assert.rejects(startRedis(), /Redis is required/);
    }));

  it('warns loudly and returns null otherwise, and skips', () =>
    withEnv({ PATH: empty, MINTGATE_REQUIRE_REDIS: undefined }, async () => {
      assert.equal(typeof redisTestOptions().skip, 'string');
      let captured = '';
      const write = process.stderr.write;
      process.stderr.write = ((chunk: string | Uint8Array) => {
        captured += String(chunk);
        return true;
      }) as typeof process.stderr.write;
      try {
        assert.equal(await startRedis(), null);
      } finally {
        process.stderr.write = write;
      }
      assert.match(captured, /WARNING: redis-server is not on PATH/);
    }));
});
