/**
 * Interoperability with third-party OAuth software, unmodified: oidc-provider as a trusted
 * issuer (its JWT access tokens are the assertions), and openid-client performing the exchange
 * from discovery with its generic grant request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidcClient from 'openid-client';
import { startTestBroker, trustEntry, TT, type TestBroker } from '../support/broker.js';
import { startOidcProvider, type RunningOidcProvider } from '../support/oidc_provider.js';

describe('interop', () => {
  let op: RunningOidcProvider;
  let broker: TestBroker;

  before(async () => {
    op = await startOidcProvider();
    broker = await startTestBroker({
      config: {
        trust: [
          trustEntry(op.issuer, { name: 'oidc-provider', algorithms: ['RS256'] }, [
            {
              name: 'service',
              match: { client_id: op.clientId },
              subject: '"svc:" + claims.client_id',
              grant: { audiences: ['inference-gateway'], scopes: ['inference:invoke', 'model:*'] },
            },
          ]),
        ],
      },
    });
  });
  after(async () => {
    await broker?.close();
    await op?.close();
  });

  it('trusts oidc-provider through discovery and its JWKS', async () => {
    const assertion = await op.getToken();
    const res = await broker.exchange(assertion, { scope: 'inference:invoke' });
    assert.equal(res.status, 200, res.text);
    const { payload } = await jwtVerify(res.body.access_token, createRemoteJWKSet(new URL(`${broker.url}/jwks.json`)), {
      issuer: broker.url,
      audience: 'inference-gateway',
      typ: 'at+jwt',
    });
    assert.equal(payload.sub, `svc:${op.clientId}`);
    assert.equal(payload.client_id, 'oidc-provider/service');
    assert.equal((payload.src as { iss: string }).iss, op.issuer);
  });

  it('refuses an oidc-provider token issued for another audience', async () => {
    const res = await broker.exchange(await op.getToken({ resource: 'urn:someone-else' }));
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_request');
  });

  it('lets openid-client discover the broker and perform the exchange with its generic grant request', async () => {
    const config = await oidcClient.discovery(new URL(broker.url), 'ci-job', undefined, oidcClient.None(), {
      execute: [oidcClient.allowInsecureRequests], // the test broker speaks plain http on loopback
    });
    assert.equal(config.serverMetadata().token_endpoint, `${broker.url}/oauth2/token`);
    const tokens = await oidcClient.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', {
      subject_token: await op.getToken(),
      subject_token_type: TT.jwt,
      audience: 'inference-gateway',
      scope: 'model:llama-3-8b',
    });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.issued_token_type, TT.accessToken);
    assert.equal(tokens.scope, 'model:llama-3-8b');
    assert.ok(typeof tokens.expires_in === 'number' && tokens.expires_in > 0);
    await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!)), { issuer: broker.url });

    // Refusals surface through openid-client as protocol errors with our code.
    await assert.rejects(
      oidcClient.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:token-exchange', {
        subject_token: await op.getToken(),
        subject_token_type: TT.jwt,
        scope: 'mintgate:admin',
      }),
      (err: { error?: string }) => err.error === 'invalid_scope',
    );
  });
});
