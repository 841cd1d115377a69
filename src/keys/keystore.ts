/**
 * The keystore: private signing keys at rest. node-jose generates the keys and holds the
 * at-rest format (private JWKs); panva/jose does all signing and verification (signer.ts).
 *
 * A key's lifecycle is derived from one timestamp, `activates_at`: keys sorted by it, the last
 * one already active signs (`current`), later ones are `next` (published, not signing), earlier
 * ones are `retiring` (published until their successor's `activates_at` + `retain_after`).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import nodeJose from 'node-jose';

/** One signing key as stored. Times are epoch milliseconds. */
export interface KeyRecord {
  kid: string;
  alg: string;
  created_at: number;
  activates_at: number;
  /** The private JWK (node-jose `toJSON(true)`). Never leaves the keystore or reaches a log. */
  jwk: Record<string, unknown>;
}

export interface KeystoreDoc {
  /** Bumped on every change, so replicas notice a rotation (DESIGN "Signing keys"). */
  version: number;
  keys: KeyRecord[];
}

/**
 * Where the keystore is kept: a directory (memory mode) or Redis (encrypted, shared by brokers).
 * `save` writes version N only over version N - 1 (none counts as 0) where several writers can
 * meet, and throws KeystoreVersionConflict when another writer got there first.
 */
export interface KeystoreRepository {
  load(): Promise<KeystoreDoc | null>;
  save(doc: KeystoreDoc): Promise<void>;
  /** The stored version, cheaply (without decrypting); null when nothing is stored. */
  loadVersion?(): Promise<number | null>;
}

/** Another broker changed the keystore first; reload it and try again. */
export class KeystoreVersionConflict extends Error {
  override name = 'KeystoreVersionConflict';
  constructor(
    readonly expected: number,
    readonly found: number,
  ) {
    super(`the keystore is at version ${found}, not ${expected}: another broker changed it; reload and retry`);
  }
}

/** Generates a private key for `alg` with node-jose; its kid is random, 16 bytes base64url. */
export async function generateKey(alg: string, now: number, activatesAt: number): Promise<KeyRecord> {
  const keystore = nodeJose.JWK.createKeyStore();
  const kid = randomBytes(16).toString('base64url');
  const props = { alg, use: 'sig', kid };
  const key =
    alg === 'ES256'
      ? await keystore.generate('EC', 'P-256', props)
      : alg === 'ES384'
        ? await keystore.generate('EC', 'P-384', props)
        : await keystore.generate('RSA', 2048, props);
  return { kid, alg, created_at: now, activates_at: activatesAt, jwk: key.toJSON(true) as Record<string, unknown> };
}

/**
 * Keeps the keystore as `keystore.json` in a directory created with mode 0700; the file is
 * written atomically (temp file + rename) with mode 0600, because it holds private keys.
 */
export class FileKeystoreRepository implements KeystoreRepository {
  private readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, 'keystore.json');
  }

  async load(): Promise<KeystoreDoc | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const doc = JSON.parse(text) as KeystoreDoc;
    if (!Array.isArray(doc.keys) || typeof doc.version !== 'number') {
      throw new Error(`${this.path}: not a mintgate keystore`);
    }
    return doc;
  }

  async save(doc: KeystoreDoc): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(doc, null, 2), { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, this.path);
  }
}

/** A keystore held only in memory (tests, and brokers whose keys live elsewhere). */
export class InMemoryKeystoreRepository implements KeystoreRepository {
  private doc: KeystoreDoc | null = null;
  async load(): Promise<KeystoreDoc | null> {
    return this.doc ? structuredClone(this.doc) : null;
  }
  async save(doc: KeystoreDoc): Promise<void> {
    this.doc = structuredClone(doc);
  }
}
