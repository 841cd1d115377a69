/** Logs never hold a token or a secret (CONTRACT section 8), even at debug level; request ids. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { ADMIN_TOKEN, startTestBroker, trustEntry, TT, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';
import { LogAuditSink } from '../../src/audit/sink.js';

describe('logging', () => {
  let idp: LocalIssuer;
  let broker: TestBroker;
  const lines: string[] = [];
  before(async () => {
    idp = await startLocalIssuer();
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = pino({ level: 'trace' }, sink);
    broker = await startTestBroker({
      config: { trust: [trustEntry(idp.issuer)] },
      overrides: { log, audit: new LogAuditSink(log) },
    });
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  it('logs jtis and reasons, never an assertion, a minted token or the admin secret', async () => {
    const secrets: string[] = [ADMIN_TOKEN];
    const assertion = await idp.github();
    secrets.push(assertion);
    const ok = await broker.exchange(assertion);
    assert.equal(ok.status, 200);
    const token = ok.body.access_token as string;
    secrets.push(token);
    await broker.exchange(assertion); // replay: refused and logged
    const bad = await idp.github({ aud: 'other' });
    secrets.push(bad);
    await broker.exchange(bad);
    await broker.exchange(token, { subject_token_type: TT.accessToken, scope: 'nope' });
    await broker.postForm('/oauth2/introspect', { token }, { authorization: `Bearer ${ADMIN_TOKEN}` });
    await broker.postForm('/oauth2/introspect', { token }, { authorization: `Bearer ${token}` });
    await broker.postForm('/oauth2/revoke', { token });
    await broker.postJson('/admin/revocations', { sub: 'x' }, { authorization: `Bearer ${ADMIN_TOKEN}` });
    await broker.get('/admin/keys', { authorization: `Bearer ${ADMIN_TOKEN}` });

    const all = lines.join('');
    assert.ok(lines.length > 10, 'the flow was logged');
    assert.match(all, new RegExp(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti), 'the jti is logged');
    for (const secret of secrets) {
      // Any of the three JWT segments would leak the token; the signature is the most telling.
      for (const part of secret.split('.')) assert.ok(part.length < 8 || !all.includes(part), 'a token or secret reached the log');
    }
  });

  it('keeps a plain X-Request-Id and replaces an unsafe one', async () => {
    const kept = await broker.get('/healthz', { 'x-request-id': 'ci-run-42.step-3' });
    assert.equal(kept.headers['x-request-id'], 'ci-run-42.step-3');
    const replaced = await broker.get('/healthz', { 'x-request-id': 'bad id\twith spaces' });
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });
});
