/**
 * Key rotation under a fake clock: the lifecycle next -> current -> retiring -> gone, and the
 * two promises of DESIGN "Signing keys": tokens minted before a rotation verify until they
 * expire, and a verifier that refreshes the JWKS every `publish_ahead` never meets an unknown kid.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { KeyManager } from '../../src/keys/key_manager.js';
import { FileKeystoreRepository, InMemoryKeystoreRepository } from '../../src/keys/keystore.js';
import { ADMIN_TOKEN, startTestBroker, trustEntry, type TestBroker } from '../support/broker.js';
import { startLocalIssuer, type LocalIssuer } from '../support/local_issuer.js';

const policy = { alg: 'ES256', rotate_every: 3600, publish_ahead: 300, retain_after: 1200 };

describe('KeyManager lifecycle', () => {
  it('publishes the next key publish_ahead before it signs, then retires and drops the old one', async () => {
    let now = Date.UTC(2026, 0, 1);
    const keys = new KeyManager(new InMemoryKeystoreRepository(), policy, () => now);
    await keys.init();
    const first = keys.signingKey().kid;
    assert.deepEqual(keys.statuses().map((k) => k.state), ['current']);

    now += (3600 - 300 - 1) * 1000;
    assert.equal(await keys.tick(), false, 'not yet time to publish');
    now += 1000;
    assert.equal(await keys.tick(), true);
    const states = keys.statuses();
    assert.deepEqual(states.map((k) => k.state), ['current', 'next']);
    assert.equal(states[1]!.activates_at - now, 300_000, 'signs after publish_ahead');
    assert.equal(keys.signingKey().kid, first, 'the next key does not sign yet');
    assert.equal(keys.publicJwks().keys.length, 2, 'but it is published');

    now += 300_000;
    assert.notEqual(keys.signingKey().kid, first, 'the new key signs at activation');
    assert.deepEqual(keys.statuses().map((k) => k.state), ['retiring', 'current']);
    now += 1_200_000 - 1;
    await keys.tick();
    assert.equal(keys.publicJwks().keys.length, 2, 'retiring key still published within retain_after');
    now += 1;
    await keys.tick();
    assert.deepEqual(keys.publicJwks().keys.map((k) => k.kid), [keys.signingKey().kid], 'gone after retain_after');
  });

  it('rotates on demand without signing early, and a second request changes nothing', async () => {
    let now = Date.UTC(2026, 0, 1);
    const keys = new KeyManager(new InMemoryKeystoreRepository(), policy, () => now);
    await keys.init();
    const before = keys.version;
    await keys.rotate();
    assert.equal(keys.version, before + 1);
    await keys.rotate();
    assert.equal(keys.version, before + 1, 'a waiting next key is not replaced');
    assert.deepEqual(keys.statuses().map((k) => k.state), ['current', 'next']);
    now += 300_000;
    assert.deepEqual(keys.statuses().map((k) => k.state), ['retiring', 'current']);
  });

  it('keeps private keys at rest with mode 0600 in a 0700 directory, and reloads them', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mintgate-keys-')), 'keys');
    const keys = new KeyManager(new FileKeystoreRepository(dir), policy);
    await keys.init();
    const file = join(dir, 'keystore.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.match(readFileSync(file, 'utf8'), /"d":/, 'the private key is there (and only there)');
    const again = new KeyManager(new FileKeystoreRepository(dir), policy);
    await again.init();
    assert.equal(again.signingKey().kid, keys.signingKey().kid);
    for (const jwk of again.publicJwks().keys) assert.ok(!('d' in jwk));
  });
});

describe('rotation seen from a verifier (fake clock, three rotations)', () => {
  let now = Date.now();
  const clock = () => now;
  let idp: LocalIssuer;
  let broker: TestBroker;

  before(async () => {
    idp = await startLocalIssuer({ clock });
    broker = await startTestBroker({
      now: clock,
      config: {
        tokens: { default_ttl: '15m', max_ttl: '15m', clock_skew: '30s' },
        keys: { rotate_every: '1h', publish_ahead: '5m', retain_after: '20m' },
        limits: { exchanges_per_subject_per_minute: 100000 },
        trust: [trustEntry(idp.issuer, {}, [{ name: 'any', grant: { audiences: ['gw'], scopes: ['s'], max_ttl: '15m' } }])],
      },
    });
  });
  after(async () => {
    await broker?.close();
    await idp?.close();
  });

  it('never meets an unknown kid, and every token verifies until it expires', async () => {
    const keys = broker.running.context.keys;
    const step = 30_000; // the broker's schedule runs at least this often
    const refreshEvery = 300_000; // the verifier refreshes its JWKS every publish_ahead
    let verifierKeys: JSONWebKeySet = (await broker.get('/jwks.json')).body;
    let lastRefresh = now;
    const live: Array<{ token: string; exp: number }> = [];
    const kidsSeen = new Set<string>();
    let manualRotationDone = false;

    for (let elapsed = 0; elapsed <= 3.5 * 3600_000; elapsed += step) {
      now += step;
      await keys.tick();
      if (!manualRotationDone && elapsed > 5400_000) {
        const r = await broker.postJson('/admin/keys/rotate', {}, { authorization: `Bearer ${ADMIN_TOKEN}` });
        assert.equal(r.status, 200);
        manualRotationDone = true;
      }
      if (now - lastRefresh >= refreshEvery) {
        verifierKeys = (await broker.get('/jwks.json')).body;
        lastRefresh = now;
      }
      const res = await broker.exchange(await idp.github({ run_id: String(elapsed) }));
      assert.equal(res.status, 200, res.text);
      live.push({ token: res.body.access_token, exp: now + res.body.expires_in * 1000 });
      kidsSeen.add(decodeProtectedHeader(res.body.access_token).kid!);

      const set = createLocalJWKSet(verifierKeys);
      for (const { token } of live.filter((t) => t.exp > now)) {
        await assert.doesNotReject(
          jwtVerify(token, set, { issuer: broker.url, audience: 'gw', currentDate: new Date(now) }),
          `token signed by ${decodeProtectedHeader(token).kid} fails at +${elapsed / 1000}s`,
        );
      }
    }
    assert.ok(kidsSeen.size >= 4, `expected at least four signing keys over 3.5 h, saw ${kidsSeen.size}`);
    assert.ok(keys.publicJwks().keys.length <= 3, 'old keys are dropped');
  });
});
