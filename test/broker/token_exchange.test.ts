/**
 * The token endpoint end to end: a real broker, a local issuer signing GitHub Actions-, GitLab-
 * and Kubernetes-shaped tokens, and the minted token checked with jose against /jwks.json.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { ADMIN_TOKEN, startTestBroker, trustEntry, TT, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { assertMatchesOpenApi } from '../support/openapi.js';

describe('POST /oauth2/token', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;

  before(async () => {
    idp = await startLocalIssuer();
    broker = await startTestBroker({
      config: (brokerIssuer) => ({
        tokens: { default_ttl: '5m', max_ttl: '15m', clock_skew: '30s' },
        trust: [
          trustEntry(idp.issuer, {}, [
            {
              name: 'release',
              match: { repository: 'acme/models', ref: 'refs/heads/*' },
              condition: 'claims.run_attempt == "1"',
              subject: 'claims.repository + "@" + claims.ref',
              job: 'claims.run_id + "-" + claims.run_attempt',
              grant: { audiences: ['inference-gateway', 'eval-gateway'], scopes: ['inference:invoke', 'model:*'], max_ttl: '10m' },
            },
            {
              name: 'gitlab',
              match: { project_path: 'acme/*', ref_type: 'branch' },
              grant: { audiences: ['inference-gateway'], scopes: ['inference:invoke'] },
            },
            {
              name: 'k8s',
              match: { 'kubernetes.io.namespace': 'ml', 'kubernetes.io.serviceaccount.name': 'trainer' },
              subject: 'claims.sub',
              job: 'claims["kubernetes.io"].pod.uid',
              grant: { audiences: ['inference-gateway'], scopes: ['inference:invoke', 'model:llama-3-8b'] },
            },
            {
              // How an operators' pipeline gets admin rights: the broker itself as audience.
              name: 'operators',
              match: { repository: 'acme/ops' },
              grant: { audiences: [brokerIssuer], scopes: ['mintgate:admin', 'mintgate:introspect'] },
            },
          ]),
        ],
      }),
    });
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  it('mints an RFC 9068 token that verifies against /jwks.json', async () => {
    const assertion = await idp.github({ run_id: '1234', run_attempt: '1' });
    const res = await broker.exchange(assertion, { audience: 'inference-gateway', scope: 'inference:invoke model:llama-3-8b' });
    assert.equal(res.status, 200, res.text);
    assertMatchesOpenApi('POST', '/oauth2/token', 200, res.body);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers.pragma, 'no-cache');
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.issued_token_type, TT.accessToken);
    assert.equal(res.body.scope, 'inference:invoke model:llama-3-8b');
    assert.equal(res.body.expires_in, 300);

    const jwks = createRemoteJWKSet(new URL(`${broker.url}/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(res.body.access_token, jwks, {
      issuer: broker.url,
      audience: 'inference-gateway',
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.ok(protectedHeader.kid);
    assert.equal(payload.sub, 'acme/models@refs/heads/main');
    assert.equal(payload.aud, 'inference-gateway');
    assert.equal(payload.client_id, 'ci/release');
    assert.equal(payload.job_id, '1234-1');
    assert.equal(payload.scope, 'inference:invoke model:llama-3-8b');
    assert.match(payload.jti!, /^[A-Za-z0-9_=,.@+-]{2,64}$/);
    assert.equal(payload.exp! - payload.iat!, 300);
    assert.equal(payload.nbf, payload.iat);
    assert.deepEqual(payload.src, { iss: idp.issuer, sub: 'repo:acme/models:ref:refs/heads/main', jti: (payload.src as { jti: string }).jti });
    assert.equal(payload.act, undefined);
    const issued = broker.audit.events.find((e) => e.type === 'token.issued' && e.jti === payload.jti);
    assert.ok(issued, 'a token.issued audit event names the jti');
    assert.ok(!JSON.stringify(broker.audit.events).includes(res.body.access_token), 'audit never holds a token');
  });

  it('defaults to the first granted audience and every granted scope', async () => {
    const res = await broker.exchange(await idp.github({ run_id: '2' }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.scope, 'inference:invoke model:*');
    const [, payload] = res.body.access_token.split('.');
    assert.equal(JSON.parse(Buffer.from(payload, 'base64url').toString()).aud, 'inference-gateway');
  });

  it('admits GitLab- and Kubernetes-shaped tokens by their own rules', async () => {
    const gl = await broker.exchange(await idp.gitlab(), { subject_token_type: TT.idToken });
    assert.equal(gl.status, 200, gl.text);
    const k8sToken = await idp.kubernetes({ 'kubernetes.io': { namespace: 'ml', serviceaccount: { name: 'trainer', uid: 'sa-1' }, pod: { name: 'p', uid: 'pod-uid-7' } } });
    const k8s = await broker.exchange(k8sToken, { scope: 'model:llama-3-8b' });
    assert.equal(k8s.status, 200, k8s.text);
    const claims = JSON.parse(Buffer.from(k8s.body.access_token.split('.')[1], 'base64url').toString());
    assert.equal(claims.client_id, 'ci/k8s');
    assert.equal(claims.job_id, 'pod-uid-7');
    assert.equal(claims.sub, 'system:serviceaccount:ml:trainer');
  });

  it('clamps expires_in to the rule max_ttl', async () => {
    const res = await broker.exchange(await idp.github({ run_id: '3' }), { expires_in: '86400' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.expires_in, 600);
    const short = await broker.exchange(await idp.github({ run_id: '4' }), { expires_in: '60' });
    assert.equal(short.body.expires_in, 60);
  });

  const refusals: Array<[string, Record<string, string>, number, string]> = [
    ['a scope the rule does not grant', { scope: 'inference:invoke audit:read' }, 400, 'invalid_scope'],
    ['an audience the rule does not grant', { audience: 'billing' }, 400, 'invalid_target'],
    ['two audiences', { audience: 'inference-gateway', resource: 'eval-gateway' }, 400, 'invalid_target'],
    ['another grant type', { grant_type: 'client_credentials' }, 400, 'unsupported_grant_type'],
    ['an unknown subject token type', { subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, 400, 'invalid_request'],
    ['an actor token', { actor_token: 'x', actor_token_type: TT.jwt }, 400, 'invalid_request'],
    ['a negative expires_in', { expires_in: '-5' }, 400, 'invalid_request'],
    ['a fractional expires_in', { expires_in: '1.5' }, 400, 'invalid_request'],
    ['a refresh token request', { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, 400, 'invalid_request'],
  ];
  for (const [name, params, status, error] of refusals) {
    it(`refuses ${name} with ${status} ${error}`, async () => {
      const res = await broker.exchange(await idp.github({ run_id: `r-${name}` }), params);
      assert.equal(res.status, status, res.text);
      assert.equal(res.body.error, error);
      assertMatchesOpenApi('POST', '/oauth2/token', status, res.body);
    });
  }

  it('refuses a token no rule admits, and one whose condition fails', async () => {
    for (const token of [await idp.github({ repository: 'evil/models' }), await idp.github({ run_attempt: '2' })]) {
      const res = await broker.exchange(token);
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_request');
      assert.match(res.body.error_description, /no trust rule/);
    }
  });

  it('accepts an assertion once (replay), but lets a refused request be retried', async () => {
    const assertion = await idp.github({ run_id: 'replay-1' });
    const refused = await broker.exchange(assertion, { scope: 'admin:everything' });
    assert.equal(refused.body.error, 'invalid_scope');
    const first = await broker.exchange(assertion);
    assert.equal(first.status, 200, first.text);
    const second = await broker.exchange(assertion);
    assert.equal(second.status, 400);
    assert.equal(second.body.error, 'invalid_request');
    assert.match(second.body.error_description, /already been used/);
  });

  it('narrows a token into a child with act, never broader, never outliving its parent', async () => {
    const parentRes = await broker.exchange(await idp.github({ run_id: 'narrow' }), { expires_in: '120' });
    const parent = parentRes.body.access_token as string;
    const child = await broker.exchange(parent, { subject_token_type: TT.accessToken, scope: 'model:llama-3-8b', expires_in: '3600' });
    assert.equal(child.status, 200, child.text);
    assert.ok(child.body.expires_in <= 120);
    const jwks = createRemoteJWKSet(new URL(`${broker.url}/jwks.json`));
    const { payload } = await jwtVerify(child.body.access_token, jwks, { issuer: broker.url, audience: 'inference-gateway' });
    const parentClaims = (await jwtVerify(parent, jwks)).payload;
    assert.deepEqual(payload.act, { sub: parentClaims.sub, jti: parentClaims.jti });
    assert.equal(payload.job_id, parentClaims.job_id);
    assert.equal(payload.scope, 'model:llama-3-8b');
    assert.ok(payload.exp! <= parentClaims.exp!);

    const broader = await broker.exchange(parent, { subject_token_type: TT.accessToken, scope: 'inference:invoke model:* mintgate:admin' });
    assert.equal(broader.body.error, 'invalid_scope');
    const elsewhere = await broker.exchange(parent, { subject_token_type: TT.accessToken, audience: 'eval-gateway' });
    assert.equal(elsewhere.body.error, 'invalid_target');
    // A child of a child cannot widen back to the parent's scopes.
    const grandchild = await broker.exchange(child.body.access_token, { subject_token_type: TT.accessToken, scope: 'inference:invoke' });
    assert.equal(grandchild.body.error, 'invalid_scope');
    // A mintgate token is not an identity assertion: presented as one, it is refused.
    const asAssertion = await broker.exchange(parent, { subject_token_type: TT.jwt });
    assert.equal(asAssertion.body.error, 'invalid_request');
  });

  it('revoking a token revokes every token narrowed from it, not its parent', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const parent = (await broker.exchange(await idp.github({ run_id: 'family' }))).body.access_token as string;
    const child = (await broker.exchange(parent, { subject_token_type: TT.accessToken, scope: 'inference:invoke' })).body.access_token as string;
    const grandchild = (await broker.exchange(child, { subject_token_type: TT.accessToken })).body.access_token as string;
    assert.equal((await broker.postForm('/oauth2/revoke', { token: child })).status, 200);
    const active = async (token: string) => (await broker.postForm('/oauth2/introspect', { token }, auth)).body.active;
    assert.equal(await active(parent), true, 'the parent lives on');
    assert.equal(await active(child), false);
    assert.equal(await active(grandchild), false, 'a grandchild dies with its parent');
  });

  it('introspects, revokes (RFC 7009) and then refuses to narrow a revoked token', async () => {
    const res = await broker.exchange(await idp.github({ run_id: 'revoke-me' }));
    const token = res.body.access_token as string;
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const live = await broker.postForm('/oauth2/introspect', { token }, auth);
    assert.equal(live.status, 200);
    assert.equal(live.body.active, true);
    assert.equal(live.body.job_id, 'revoke-me-1');
    assertMatchesOpenApi('POST', '/oauth2/introspect', 200, live.body);

    const revoked = await broker.postForm('/oauth2/revoke', { token });
    assert.equal(revoked.status, 200);
    const dead = await broker.postForm('/oauth2/introspect', { token }, auth);
    assert.deepEqual(dead.body, { active: false });
    const narrow = await broker.exchange(token, { subject_token_type: TT.accessToken });
    assert.equal(narrow.body.error, 'invalid_request');

    for (const garbage of ['garbage', 'a.b.c', token.slice(0, -4) + 'AAAA']) {
      const r = await broker.postForm('/oauth2/revoke', { token: garbage });
      assert.equal(r.status, 200, 'RFC 7009 2.2: 200 for tokens that are not ours');
      const i = await broker.postForm('/oauth2/introspect', { token: garbage }, auth);
      assert.deepEqual(i.body, { active: false });
    }
    const missing = await broker.postForm('/oauth2/revoke', {});
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, 'invalid_request');
  });

  it('revokes by job and by subject through /admin/revocations, and refuses new exchanges for a revoked job', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const a = await broker.exchange(await idp.github({ run_id: 'job-x' }));
    const res = await broker.postJson('/admin/revocations', { job: 'job-x-1', reason: 'done' }, auth);
    assert.equal(res.status, 201, res.text);
    assertMatchesOpenApi('POST', '/admin/revocations', 201, res.body);
    assert.equal(res.body.job, 'job-x-1');
    const intro = await broker.postForm('/oauth2/introspect', { token: a.body.access_token }, auth);
    assert.equal(intro.body.active, false);
    const again = await broker.exchange(await idp.github({ run_id: 'job-x' }));
    assert.equal(again.status, 400);
    assert.match(again.body.error_description, /revoked/);

    const b = await broker.exchange(await idp.github({ repository: 'acme/models', ref: 'refs/heads/sub-test', run_id: 's1' }));
    const bySub = await broker.postJson('/admin/revocations', { sub: 'acme/models@refs/heads/sub-test' }, auth);
    assert.equal(bySub.status, 201);
    assert.equal((await broker.postForm('/oauth2/introspect', { token: b.body.access_token }, auth)).body.active, false);

    for (const bad of [{}, { jti: 'a', job: 'b' }, { jti: '' }, { jti: 'x', extra: 1 }, { jti: 5 }]) {
      const r = await broker.postJson('/admin/revocations', bad, auth);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.error, 'invalid_request');
    }
  });

  it('lets a mintgate token with aud = issuer and scope mintgate:admin use /admin, and nothing less', async () => {
    const noAuth = await broker.get('/admin/keys');
    assert.equal(noAuth.status, 401);
    assert.equal(noAuth.headers['www-authenticate'], 'Bearer realm="mintgate"');
    assertMatchesOpenApi('GET', '/admin/keys', 401, noAuth.body);
    const badAuth = await broker.get('/admin/keys', { authorization: 'Bearer nope' });
    assert.equal(badAuth.status, 401);
    assert.match(String(badAuth.headers['www-authenticate']), /error="invalid_token"/);
    assertMatchesOpenApi('GET', '/admin/keys', 401, badAuth.body);
    const basic = await broker.get('/admin/keys', { authorization: `Basic ${Buffer.from(`a:${ADMIN_TOKEN}`).toString('base64')}` });
    assert.equal(basic.status, 401);

    const asAdmin = await broker.get('/admin/keys', { authorization: `Bearer ${ADMIN_TOKEN}` });
    assert.equal(asAdmin.status, 200);
    assertMatchesOpenApi('GET', '/admin/keys', 200, asAdmin.body);

    // An ordinary job token (aud inference-gateway) is not an admin credential.
    const job = await broker.exchange(await idp.github({ run_id: 'not-admin' }));
    const jobAuth = await broker.get('/admin/keys', { authorization: `Bearer ${job.body.access_token}` });
    assert.equal(jobAuth.status, 401);
    const jobIntro = await broker.postForm('/oauth2/introspect', { token: 'x' }, { authorization: `Bearer ${job.body.access_token}` });
    assert.equal(jobIntro.status, 401);

    // An operator token: aud is the broker's issuer.
    const ops = await broker.exchange(await idp.github({ repository: 'acme/ops', run_id: 'ops' }), { audience: broker.url });
    assert.equal(ops.status, 200, ops.text);
    const opsAuth = { authorization: `Bearer ${ops.body.access_token}` };
    assert.equal((await broker.get('/admin/keys', opsAuth)).status, 200);

    // Narrowed to introspection only: introspect yes, admin no (403 insufficient_scope).
    const narrow = await broker.exchange(ops.body.access_token, { subject_token_type: TT.accessToken, scope: 'mintgate:introspect' });
    assert.equal(narrow.status, 200, narrow.text);
    const introAuth = { authorization: `Bearer ${narrow.body.access_token}` };
    const intro = await broker.postForm('/oauth2/introspect', { token: job.body.access_token }, introAuth);
    assert.equal(intro.status, 200);
    assert.equal(intro.body.active, true);
    const forbidden = await broker.get('/admin/keys', introAuth);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.error, 'insufficient_scope');
    assert.match(String(forbidden.headers['www-authenticate']), /error="insufficient_scope", scope="mintgate:admin"/);
    assertMatchesOpenApi('GET', '/admin/keys', 403, forbidden.body);

    // Revoked, the operator token stops working at once.
    await broker.postForm('/oauth2/revoke', { token: ops.body.access_token });
    assert.equal((await broker.get('/admin/keys', opsAuth)).status, 401);
  });

  it('publishes RFC 8414 metadata at both well-known paths', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const res = await broker.get(path);
      assert.equal(res.status, 200);
      assertMatchesOpenApi('GET', path, 200, res.body);
      assert.equal(res.body.issuer, broker.url);
      assert.equal(res.body.token_endpoint, `${broker.url}/oauth2/token`);
      assert.ok(res.body.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'));
    }
    const jwks = await broker.get('/jwks.json');
    assert.match(String(jwks.headers['content-type']), /application\/jwk-set\+json/);
    assertMatchesOpenApi('GET', '/jwks.json', 200, jwks.body);
    for (const key of jwks.body.keys) {
      assert.equal(key.use, 'sig');
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.ok(!(member in key), `no private member ${member}`);
    }
    const minted = await broker.exchange(await idp.github({ run_id: 'kid' }));
    assert.ok(jwks.body.keys.some((k: { kid: string }) => k.kid === decodeProtectedHeader(minted.body.access_token).kid));
  });

  it('reports health, readiness and metrics', async () => {
    assert.deepEqual((await broker.get('/healthz')).body, { status: 'ok' });
    assert.deepEqual((await broker.get('/readyz')).body, { status: 'ready' });
    const metrics = await broker.get('/metrics');
    assert.match(metrics.text, /mintgate_exchanges_total\{outcome="issued"\} \d+/);
    assert.match(metrics.text, /mintgate_exchanges_total\{outcome="invalid_scope"\} \d+/);
    assert.match(metrics.text, /mintgate_exchange_duration_seconds_bucket/);
    const unknown = await broker.get('/nope');
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body.error, 'not_found');
  });
});
