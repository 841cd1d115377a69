/**
 * Signing-key lifecycle: next -> current -> retiring -> gone, on a schedule and on demand.
 * Holds the imported keys (jose KeyObjects) so the hot path never imports a key per request.
 */
import { createLocalJWKSet, importJWK, type CryptoKey, type JWK, type JWTVerifyGetKey, type KeyObject } from 'jose';
import { generateKey, KeystoreVersionConflict, type KeyRecord, type KeystoreDoc, type KeystoreRepository } from './keystore.js';

export type KeyState = 'next' | 'current' | 'retiring';

/** A key as `/admin/keys` shows it. Times are epoch milliseconds. */
export interface KeyStatus {
  kid: string;
  alg: string;
  state: KeyState;
  created_at: number;
  activates_at: number;
  /** When it stops signing (its successor's activation); null while nothing follows it. */
  retires_at: number | null;
  /** When it leaves the JWKS; null while nothing follows it. */
  expires_at: number | null;
}

export interface KeyPolicy {
  alg: string;
  /** Seconds between scheduled rotations. */
  rotate_every: number;
  /** Seconds a new key is published before it signs. */
  publish_ahead: number;
  /** Seconds a replaced key stays published (>= max_ttl + skew, checked by config). */
  retain_after: number;
}

export interface SigningKey {
  kid: string;
  alg: string;
  key: CryptoKey | KeyObject;
}

type PublicJwk = JWK & { kid: string; alg: string; use: 'sig' };

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

export class KeyManager {
  private doc: KeystoreDoc = { version: 0, keys: [] };
  private readonly imported = new Map<string, SigningKey>();
  private jwks: { keys: PublicJwk[] } = { keys: [] };
  private localSet: JWTVerifyGetKey = createLocalJWKSet({ keys: [] });
  private timer: NodeJS.Timeout | undefined;
  /** Serialises changes so a scheduled tick and a manual rotation never interleave. */
  private changing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly repo: KeystoreRepository,
    private readonly policy: KeyPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads the keystore, creating the first key when there is none (one broker wins the race). */
  async init(): Promise<void> {
    const doc = await this.repo.load();
    if (doc && doc.keys.length > 0) {
      await this.adopt(doc);
    } else {
      const now = this.now();
      await this.commit({ version: (doc?.version ?? 0) + 1, keys: [await generateKey(this.policy.alg, now, now)] });
    }
    await this.tick();
  }

  /**
   * Every `intervalMs` (default 2 s; the timer does not hold the process): picks up a keystore
   * another broker changed (a cheap version check), then runs the schedule. So with several
   * brokers on one Redis, a rotation made at one is served by all within seconds.
   */
  start(intervalMs = 2_000, onError: (err: Error) => void = () => undefined): void {
    this.timer = setInterval(() => {
      this.reload()
        .then(() => this.tick())
        .catch(onError);
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Scheduled work: publish the next key `publish_ahead` before the current one has signed for
   * `rotate_every`, and drop keys whose retention is over. Returns true when anything changed.
   */
  async tick(): Promise<boolean> {
    return this.serialise(async () => {
      const now = this.now();
      let keys = this.doc.keys;
      const statuses = this.statuses(now);
      const current = statuses.find((k) => k.state === 'current');
      const hasNext = statuses.some((k) => k.state === 'next');
      let changed = false;
      if (current && !hasNext && now >= current.activates_at + (this.policy.rotate_every - this.policy.publish_ahead) * 1000) {
        const activatesAt = Math.max(current.activates_at + this.policy.rotate_every * 1000, now + this.policy.publish_ahead * 1000);
        keys = [...keys, await generateKey(this.policy.alg, now, activatesAt)];
        changed = true;
      }
      const live = keys.filter((k) => !this.isGone(k, keys, now));
      if (live.length !== keys.length) changed = true;
      if (changed) await this.commit({ version: this.doc.version + 1, keys: live });
      return changed;
    });
  }

  /**
   * Rotation on demand (`POST /admin/keys/rotate`): publishes a new key that signs after
   * `publish_ahead`, so verifiers refreshing within that window never meet an unknown kid.
   * When a `next` key is already waiting, nothing changes.
   */
  async rotate(): Promise<KeyStatus[]> {
    await this.serialise(async () => {
      // Another broker may commit first (we then adopt its keystore); look again, a few times.
      for (let attempt = 0; attempt < 3; attempt++) {
        const now = this.now();
        if (this.statuses(now).some((k) => k.state === 'next')) return;
        const key = await generateKey(this.policy.alg, now, now + this.policy.publish_ahead * 1000);
        await this.commit({ version: this.doc.version + 1, keys: [...this.doc.keys, key] });
      }
    });
    return this.statuses();
  }

  /** Picks up a keystore changed elsewhere (another broker), when its version moved on. */
  async reload(): Promise<boolean> {
    if (this.repo.loadVersion) {
      const version = await this.repo.loadVersion();
      if (version === null || version === this.doc.version) return false;
    }
    const doc = await this.repo.load();
    if (!doc || doc.version === this.doc.version) return false;
    await this.adopt(doc);
    return true;
  }

  /** The key that signs now. */
  signingKey(now = this.now()): SigningKey {
    let chosen: KeyRecord | undefined;
    for (const k of this.doc.keys) if (k.activates_at <= now && (!chosen || k.activates_at > chosen.activates_at)) chosen = k;
    if (!chosen) throw new Error('no signing key is active');
    return this.imported.get(chosen.kid)!;
  }

  /** Public keys for `/jwks.json`: next, current and retiring; never a private member. */
  publicJwks(): { keys: PublicJwk[] } {
    return this.jwks;
  }

  /** jose key resolver over our own published keys (verifying our tokens). */
  verificationKeys(): JWTVerifyGetKey {
    return this.localSet;
  }

  get version(): number {
    return this.doc.version;
  }

  statuses(now = this.now()): KeyStatus[] {
    const sorted = [...this.doc.keys].sort((a, b) => a.activates_at - b.activates_at);
    const currentIndex = sorted.findLastIndex((k) => k.activates_at <= now);
    return sorted.map((k, i) => {
      const successor = sorted[i + 1];
      const retiresAt = successor ? successor.activates_at : null;
      return {
        kid: k.kid,
        alg: k.alg,
        state: i === currentIndex ? 'current' : i > currentIndex ? 'next' : 'retiring',
        created_at: k.created_at,
        activates_at: k.activates_at,
        retires_at: retiresAt,
        expires_at: retiresAt === null ? null : retiresAt + this.policy.retain_after * 1000,
      };
    });
  }

  private isGone(key: KeyRecord, keys: KeyRecord[], now: number): boolean {
    const successor = keys
      .filter((k) => k.activates_at > key.activates_at)
      .reduce<KeyRecord | undefined>((best, k) => (!best || k.activates_at < best.activates_at ? k : best), undefined);
    if (!successor || successor.activates_at > now) return false;
    return now >= successor.activates_at + this.policy.retain_after * 1000;
  }

  /**
   * Saves and adopts `doc`. When another broker saved first (compare-and-set lost), adopts
   * theirs instead: it made the same kind of change (a first key, a rotation, a pruning), and
   * the next tick re-checks the schedule against it.
   */
  private async commit(doc: KeystoreDoc): Promise<void> {
    try {
      await this.repo.save(doc);
    } catch (err) {
      if (!(err instanceof KeystoreVersionConflict)) throw err;
      const theirs = await this.repo.load();
      if (!theirs) {
        // The shared keystore is gone (Redis lost its data): write ours back as version 1, so
        // every broker keeps signing with the same keys and replicas notice the new version.
        const restored = { ...doc, version: 1 };
        await this.repo.save(restored);
        await this.adopt(restored);
        return;
      }
      await this.adopt(theirs);
      return;
    }
    await this.adopt(doc);
  }

  private async adopt(doc: KeystoreDoc): Promise<void> {
    const imported = new Map<string, SigningKey>();
    const published: PublicJwk[] = [];
    for (const record of doc.keys) {
      const key = this.imported.get(record.kid)?.key ?? (await importJWK(record.jwk as JWK, record.alg));
      imported.set(record.kid, { kid: record.kid, alg: record.alg, key: key as CryptoKey | KeyObject });
      const pub = { ...(record.jwk as JWK) };
      for (const member of PRIVATE_MEMBERS) delete (pub as Record<string, unknown>)[member];
      published.push({ ...pub, kid: record.kid, alg: record.alg, use: 'sig' } as PublicJwk);
    }
    this.doc = structuredClone(doc);
    this.imported.clear();
    for (const [kid, key] of imported) this.imported.set(kid, key);
    this.jwks = { keys: published };
    this.localSet = createLocalJWKSet(this.jwks);
  }

  private serialise<T>(work: () => Promise<T>): Promise<T> {
    const run = this.changing.then(work, work);
    this.changing = run.catch(() => undefined);
    return run;
  }
}

/** Exported for tests that check the JWKS never carries private members. */
export const privateJwkMembers: readonly string[] = PRIVATE_MEMBERS;
