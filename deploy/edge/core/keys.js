// The verification keys: a JWKS pinned in the configuration, or Anteroom's
// own from {issuer}/keys, fetched on first use and kept for a TTL. A
// refresh that fails keeps the last good set for a while longer (stale
// fallback); a token with a kid the set lacks makes one early refresh, at
// most every refetch interval, so a new key is picked up quickly but a
// stream of forged kids cannot hammer Anteroom.

import { importJWK } from './jwt.js';

/** KeysUnavailable means no key set can be had: none fetched, or the last one too old. */
export class KeysUnavailable extends Error {}

/**
 * KeySet finds verification keys by kid.
 */
export class KeySet {
  /**
   * @param {object} o
   * @param {{keys: unknown[]}} [o.pinned] a JWKS to use instead of fetching one
   * @param {() => Promise<Response>} [o.fetchKeys] fetches the JWKS
   * @param {() => number} o.now the clock, in milliseconds
   * @param {number} [o.ttlMs] how long a fetched set is used before a refresh
   * @param {number} [o.maxStaleMs] how much longer it is used while refreshes fail
   * @param {number} [o.retryMs] how long after a failed fetch the next is tried
   * @param {number} [o.refetchMs] least time between fetches caused by unknown kids
   * @param {number} [o.timeoutMs] how long a fetch may take
   * @param {(level: string, msg: string, fields?: object) => void} [o.log]
   */
  constructor(o) {
    this.o = { ttlMs: 300_000, maxStaleMs: 86_400_000, retryMs: 10_000, refetchMs: 30_000, timeoutMs: 3_000, log: () => {}, ...o };
    /** @type {{keys: Map<string, {alg: string, key: CryptoKey}>, at: number}|null} */
    this.current = null;
    this.inflight = null;
    this.failedAt = -Infinity;
    this.attemptAt = -Infinity;
    /** fetches counts JWKS fetches, for tests and logs. */
    this.fetches = 0;
    if (o.pinned) {
      this.pinned = importSet(o.pinned, this.o.log).then((keys) => {
        if (keys.size === 0) throw new KeysUnavailable('the pinned JWKS has no usable key');
        this.current = { keys, at: Infinity };
        return this.current;
      });
      this.pinned.catch(() => {});
    }
  }

  /**
   * lookup returns the key with id kid, or null when the set has none; it
   * throws KeysUnavailable when there is no set to look in.
   * @param {string} kid
   */
  async lookup(kid) {
    if (this.pinned) return (await this.pinned).keys.get(kid) ?? null;
    let cur = await this.usable();
    let k = cur.keys.get(kid);
    if (!k && this.o.now() - this.attemptAt >= this.o.refetchMs) {
      cur = await this.refresh();
      k = cur.keys.get(kid);
    }
    return k ?? null;
  }

  /**
   * usable returns a set that may be used now, refreshing it when its TTL
   * has passed; it throws KeysUnavailable when there is none.
   */
  async usable() {
    if (this.pinned) return this.pinned;
    const cur = this.current;
    if (cur && this.o.now() - cur.at < this.o.ttlMs) return cur;
    return this.refresh();
  }

  /**
   * published reports, without waiting, whether the last set had kid; a
   * cache of verified tokens asks it so that a key Anteroom dropped stops
   * covering what it signed.
   * @param {string} kid
   */
  published(kid) {
    return this.current?.keys.has(kid) ?? false;
  }

  refresh() {
    if (this.inflight) return this.inflight;
    const now = this.o.now();
    if (now - this.failedAt < this.o.retryMs) return Promise.resolve().then(() => this.fallback());
    this.attemptAt = now;
    this.fetches++;
    this.inflight = (async () => {
      try {
        const res = await withTimeout(this.o.fetchKeys(), this.o.timeoutMs);
        if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
        const keys = await importSet(await res.json(), this.o.log);
        if (keys.size === 0) throw new Error('JWKS has no usable key');
        this.current = { keys, at: this.o.now() };
        return this.current;
      } catch (err) {
        this.failedAt = this.o.now();
        this.o.log('warn', 'anteroom: cannot fetch the JWKS', { error: String(err?.message ?? err) });
        return this.fallback();
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  fallback() {
    const cur = this.current;
    if (cur && this.o.now() - cur.at < this.o.ttlMs + this.o.maxStaleMs) return cur;
    throw new KeysUnavailable('no JWKS can be had');
  }
}

async function importSet(jwks, log) {
  const keys = new Map();
  if (jwks === null || typeof jwks !== 'object' || !Array.isArray(jwks.keys)) throw new Error('JWKS has no keys list');
  for (const jwk of jwks.keys) {
    try {
      const k = await importJWK(jwk);
      keys.set(k.kid, k);
    } catch (err) {
      log('warn', 'anteroom: skipping a JWKS key', { error: String(err?.message ?? err) });
    }
  }
  return keys;
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`JWKS fetch timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
