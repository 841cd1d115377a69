/** What the Redis keystore tests share, on a standalone server and on a Cluster. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { KeyManager } from '../../src/keys/key_manager.js';
import { generateKey, type KeystoreDoc, type KeystoreRepository } from '../../src/keys/keystore.js';

/** A fresh 32-byte key-encryption key. */
export const kek = (): Uint8Array => new Uint8Array(randomBytes(32));

/** A keystore document at `version` holding `count` fresh ES256 keys. */
export async function docWith(version: number, count = 1): Promise<KeystoreDoc> {
  const keys = [];
  for (let i = 0; i < count; i++) keys.push(await generateKey('ES256', 1_700_000_000_000 + i, 1_700_000_000_000 + i));
  return { version, keys };
}

/** Two brokers on one shared keystore: a rotation at the first is picked up by the second. */
export async function assertSecondBrokerPicksUpRotation(repo: () => KeystoreRepository): Promise<void> {
  const policy = { alg: 'ES256', rotate_every: 86_400, publish_ahead: 300, retain_after: 1_200 };
  const first = new KeyManager(repo(), policy);
  const second = new KeyManager(repo(), policy);
  await first.init();
  await second.init();
  assert.deepEqual(second.publicJwks(), first.publicJwks());
  await first.rotate();
  assert.equal(await second.reload(), true);
  assert.equal(second.version, first.version);
  assert.deepEqual(second.publicJwks(), first.publicJwks());
  assert.equal(first.publicJwks().keys.length, 2);
}
