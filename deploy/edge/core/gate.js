// The edge gate: what Anteroom's nginx gate does (gate/gate.go), run at a
// CDN's edge. For each request it applies the protection rules; for a
// request a room protects it verifies the room's session cookie, a JWT
// Anteroom signed, with the public JWKS alone; and it either lets the
// request through, refuses it, or sends the visitor to
// {issuer}/gate/start with the original URL. No secret is deployed here.
//
// Platform handlers (cloudflare-worker, lambda-edge, fastly-compute) turn
// their request into the plain object handle() takes and its outcome into
// their response. Every request field is a byte string (see bytes.js).

import { cookieJar, Problems, Rules, requestHost, validateGate } from './rules.js';
import { KeySet, KeysUnavailable } from './keys.js';
import { TokenError, checkClaims, verifySignature } from './jwt.js';

/** AUDIENCE is the gate session token's aud (gate.Audience). */
export const AUDIENCE = 'anteroom-gate';

/**
 * ANTEROOM_HEADERS are the request headers through which the origin
 * learns who passed the queue. A client's own are always removed.
 */
export const ANTEROOM_HEADERS = ['x-anteroom-sub', 'x-anteroom-room', 'x-anteroom-position', 'x-anteroom-fail-open'];

/**
 * NO_CACHE are the headers of every response the gate makes itself, so
 * that no cache between the edge and the browser keeps a redirect into
 * the queue.
 */
export const NO_CACHE = Object.freeze({
  'cache-control': 'no-cache, no-store, must-revalidate, max-age=0',
  pragma: 'no-cache',
  expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
});

const CONFIG_KEYS = ['issuer', 'gate', 'rooms', 'jwks', 'jwks_url', 'jwks_ttl_seconds', 'jwks_max_stale_seconds'];

/**
 * validateConfig checks an edge configuration and returns it with
 * defaults applied; it throws a ConfigError listing every problem, each
 * with its key, when it is not valid.
 *
 *   issuer                  Anteroom's issuer, exactly as in its configuration
 *   gate                    Anteroom's gate section, as JSON
 *   rooms                   {room: {on_error: fail_open | fail_closed}}; default fail_closed
 *   jwks                    a JWKS to pin; without it, the JWKS is fetched
 *   jwks_url                where to fetch it; default {issuer}/keys
 *   jwks_ttl_seconds        how long a fetched JWKS is used (default 300)
 *   jwks_max_stale_seconds  how much longer while Anteroom cannot be reached (default 86400)
 *
 * @param {unknown} c
 */
export function validateConfig(c) {
  const p = new Problems();
  const out = { issuer: '', rooms: {}, jwksTtlMs: 300_000, jwksMaxStaleMs: 86_400_000 };
  if (!p.object('config', c, CONFIG_KEYS)) p.throwIfAny();
  out.issuer = p.string('issuer', c.issuer);
  if (out.issuer === '') p.add('issuer', 'required');
  else {
    let u;
    try {
      u = new URL(out.issuer);
    } catch {
      p.add('issuer', `must be an absolute URL, got ${JSON.stringify(out.issuer)}`);
    }
    if (u) {
      const loopback = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(u.hostname);
      if (!(u.protocol === 'https:' || (u.protocol === 'http:' && loopback))) p.add('issuer', 'must be https:// (http:// only on a loopback host)');
      if (u.search || u.hash || out.issuer.endsWith('/')) p.add('issuer', 'must have no query, fragment or trailing slash');
      out.issuerURL = u;
    }
  }
  out.gate = validateGate(c.gate, p);
  if (c.rooms !== undefined && p.object('rooms', c.rooms, Object.keys(c.rooms ?? {}))) {
    for (const [room, rc] of Object.entries(c.rooms)) {
      if (!p.object(`rooms.${room}`, rc, ['on_error'])) continue;
      const onError = p.string(`rooms.${room}.on_error`, rc.on_error) || 'fail_closed';
      if (onError !== 'fail_open' && onError !== 'fail_closed') {
        p.add(`rooms.${room}.on_error`, `must be fail_open or fail_closed, got ${JSON.stringify(onError)}`);
      }
      if (!out.gate.rules.some((r) => r.room === room)) p.add(`rooms.${room}`, 'no gate rule queues in this room');
      out.rooms[room] = { failOpen: onError === 'fail_open' };
    }
  }
  if (c.jwks !== undefined) {
    if (c.jwks_url !== undefined) p.add('jwks_url', 'not used with a pinned jwks; set one or the other');
    if (p.object('jwks', c.jwks, ['keys']) && (!Array.isArray(c.jwks.keys) || c.jwks.keys.length === 0)) {
      p.add('jwks.keys', 'must be a non-empty list (copy {issuer}/keys)');
    } else if (c.jwks && Array.isArray(c.jwks.keys)) {
      c.jwks.keys.forEach((k, i) => {
        if (!k || typeof k.kid !== 'string' || !['RS256', 'ES256'].includes(k.alg)) {
          p.add(`jwks.keys[${i}]`, 'must be a public key with kid and alg RS256 or ES256, as Anteroom publishes it');
        } else if ('d' in k) {
          p.add(`jwks.keys[${i}]`, 'is a private key: pin the public JWKS from {issuer}/keys');
        }
      });
    }
    out.jwks = c.jwks;
  }
  out.jwksURL = p.string('jwks_url', c.jwks_url) || `${out.issuer}/keys`;
  for (const [key, field] of [['jwks_ttl_seconds', 'jwksTtlMs'], ['jwks_max_stale_seconds', 'jwksMaxStaleMs']]) {
    if (c[key] === undefined) continue;
    if (!Number.isInteger(c[key]) || c[key] < 0) p.add(key, 'must be a whole number of seconds ≥ 0');
    else out[field] = c[key] * 1000;
  }
  p.throwIfAny();
  return out;
}

/**
 * queryEscape is Go's url.QueryEscape over a byte string: the start URL
 * the edge builds is byte for byte the one Anteroom's gate builds.
 * @param {string} s
 */
export function queryEscape(s) {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + s.charCodeAt(i).toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * sameSiteTarget accepts what Anteroom's /gate/start accepts as the
 * address to return to: a path on this site, so that the gate is never an
 * open redirect.
 * @param {string} rd
 */
export function sameSiteTarget(rd) {
  return rd !== '' && rd[0] === '/' && !rd.startsWith('//') && !rd.startsWith('/\\') && rd.length <= 4096 &&
    !/[\x00-\x1f\x7f\\]/.test(rd);
}

/**
 * wantsJSON tells a script's request (XHR, fetch) or a subresource (the
 * browser's own /favicon.ico) from a navigation, exactly as the Go gate
 * does: Sec-Fetch-Mode decides where the browser sends it.
 * @param {(name: string) => string} header
 */
export function wantsJSON(header) {
  if (header('x-requested-with')) return true;
  const mode = header('sec-fetch-mode');
  if (mode) return mode !== 'navigate';
  const accept = header('accept');
  return accept.includes('json') && !accept.includes('text/html');
}

/**
 * Gate decides requests for one configuration. Make one per
 * configuration and keep it: it caches the JWKS and verified tokens.
 */
export class Gate {
  /**
   * @param {unknown} config the edge configuration (see validateConfig)
   * @param {object} [o]
   * @param {() => Promise<Response>} [o.fetchKeys] fetches the JWKS (default: fetch(jwks_url))
   * @param {() => number} [o.now] the clock in milliseconds (default Date.now)
   * @param {(level: string, msg: string, fields?: object) => void} [o.log]
   */
  constructor(config, o = {}) {
    this.config = validateConfig(config);
    this.rules = new Rules(this.config.gate);
    this.now = o.now ?? (() => Date.now());
    this.log = o.log ?? defaultLog;
    const c = this.config;
    this.keys = new KeySet({
      pinned: c.jwks,
      fetchKeys: o.fetchKeys ?? (() => fetch(c.jwksURL, { headers: { accept: 'application/json' } })),
      now: this.now,
      ttlMs: c.jwksTtlMs,
      maxStaleMs: c.jwksMaxStaleMs,
      log: this.log,
    });
    const u = c.issuerURL;
    this.issuerHost = u.hostname.toLowerCase();
    this.prefix = u.pathname === '/' ? '' : u.pathname;
    /** @type {Map<string, {kid: string, claims: Record<string, unknown>}>} */
    this.verified = new Map();
  }

  /**
   * anteroomTarget returns the request target to send to Anteroom when the
   * request is for Anteroom itself (on the issuer's host, under its path),
   * with that path prefix removed; otherwise null.
   * @param {string} host the Host header
   * @param {string} target the path and query
   */
  anteroomTarget(host, target) {
    if (requestHost(host).toLowerCase() !== this.issuerHost) return null;
    return this.stripPrefix(target);
  }

  /**
   * stripPrefix returns target without the issuer's path, which Anteroom
   * serves at its root, or null when target is not under that path.
   * @param {string} target
   */
  stripPrefix(target) {
    if (this.prefix === '' || !target.startsWith(this.prefix)) return null;
    const rest = target.slice(this.prefix.length);
    if (!(rest === '' || rest[0] === '/' || rest[0] === '?')) return null;
    return rest[0] === '/' ? rest : '/' + rest;
  }

  /**
   * startURL is where a visitor starts queueing for target.
   * @param {string} target
   */
  startURL(target) {
    return `${this.config.issuer}/gate/start?rd=${queryEscape(target)}`;
  }

  /**
   * handle decides one request.
   * @param {{method: string, host: string, target: string, userAgent: string,
   *   header: (name: string) => string, cookies: string[]}} req
   *   target is the path and query as received; header returns a header's
   *   value ("" when absent, name in lower case); cookies are the Cookie
   *   header lines.
   * @returns {Promise<{kind: 'pass', headers: Record<string, string>, decision: object} |
   *   {kind: 'respond', status: number, headers: Record<string, string>, body: string, decision: object}>}
   */
  async handle(req) {
    const cookie = cookieJar(req.cookies);
    const decision = this.rules.decide({
      host: req.host, method: req.method, path: req.target, userAgent: req.userAgent, header: req.header, cookie,
    });
    if (decision.action === 'bypass') return { kind: 'pass', headers: {}, decision };
    if (decision.action === 'block') {
      return { kind: 'respond', status: 403, headers: { ...NO_CACHE, 'content-type': 'text/plain; charset=utf-8' }, body: 'Forbidden\n', decision };
    }
    const room = decision.room;
    const token = cookie(`${this.config.gate.cookie.name}_${room}`);
    let unavailable = false;
    try {
      if (token) {
        const s = await this.session(token, room);
        return {
          kind: 'pass',
          headers: { 'x-anteroom-sub': s.sub, 'x-anteroom-room': s.room, 'x-anteroom-position': String(s.position) },
          decision,
        };
      }
      if (this.config.rooms[room]?.failOpen) await this.keys.usable();
    } catch (err) {
      if (err instanceof KeysUnavailable) unavailable = true;
      else if (!(err instanceof TokenError)) throw err;
    }
    if (unavailable && this.config.rooms[room]?.failOpen) {
      this.log('warn', 'anteroom: failing open, the JWKS cannot be had', { room });
      return { kind: 'pass', headers: { 'x-anteroom-fail-open': '1' }, decision };
    }
    if (!sameSiteTarget(req.target)) {
      return { kind: 'respond', status: 400, headers: { ...NO_CACHE, 'content-type': 'text/plain; charset=utf-8' }, body: 'Bad request\n', decision };
    }
    const start = this.startURL(req.target);
    if (wantsJSON(req.header)) {
      const body = JSON.stringify({ error: 'queue', start_url: start }).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) + '\n';
      return { kind: 'respond', status: 401, headers: { ...NO_CACHE, 'content-type': 'application/json' }, body, decision };
    }
    return { kind: 'respond', status: 302, headers: { ...NO_CACHE, location: start }, body: '', decision };
  }

  /**
   * session verifies a room's session token and returns the visitor.
   * It throws TokenError for a token that is not valid, KeysUnavailable
   * when no key set can be had.
   * @param {string} token
   * @param {string} room
   */
  async session(token, room) {
    let v = this.verified.get(token);
    if (!v || !this.keys.published(v.kid)) {
      v = await verifySignature(token, (kid) => this.keys.lookup(kid));
      if (this.verified.size >= 10_000) this.verified.clear();
      this.verified.set(token, v);
    }
    return checkClaims(v.claims, { issuer: this.config.issuer, audience: AUDIENCE, room, nowMs: this.now() });
  }
}

function defaultLog(level, msg, fields) {
  if (level === 'warn' || level === 'error') console[level](msg, fields ?? {});
}

export { KeysUnavailable, TokenError };
