// Anteroom's gate as a Cloudflare Worker. On the protected site's route
// (shop.example.com/*) it sends /_anteroom/* (the issuer's path) to
// Anteroom, so its cookies stay first-party, and checks every other
// request against the protection rules and the room's signed session
// cookie before it reaches the origin. See README.md.
//
// Bindings (wrangler.toml):
//   ANTEROOM_CONFIG            the edge configuration as JSON (a string or
//                              an object), or
//   ANTEROOM_KV                a KV namespace whose key "config" holds it
//                              (read at most once a minute per isolate)
//   ANTEROOM_BACKEND           where Anteroom listens, e.g.
//                              https://anteroom.internal.example.com
//                              (Anteroom serves at its root: the prefix is removed)
//   ANTEROOM_RESOLVE_OVERRIDE  instead of ANTEROOM_BACKEND: a hostname in
//                              the same zone that resolves to Anteroom; the
//                              request keeps the site's Host header, which
//                              host-matching rules need
//   SITE_ORIGIN                optional: the protected site's origin
//                              (scheme://host[:port], no path); by default
//                              requests go on to the zone's origin
//
// The Worker decides on the request target as it was sent, cut from
// request.url, never on new URL(request.url), which resolves dot segments:
// the rules must see what the origin will get. A request only ever goes
// on to the origin (SITE_ORIGIN, or the request's own), at origin + target,
// so a path such as //evil.example/ is a path there, not another host.

import { Gate, checkRequest, forwardInit, originRequest, requestTarget, unforwardable } from '../core/index.js';

const CONFIG_KV_TTL_MS = 60_000;

/**
 * createWorker returns a Worker module whose subrequests go through
 * fetchFn (the runtime's fetch by default; tests pass their own).
 * @param {{fetch?: typeof fetch, now?: () => number, log?: (level: string, msg: string, fields?: object) => void}} [o]
 */
export function createWorker(o = {}) {
  const fetchFn = o.fetch ?? ((...args) => fetch(...args));
  const now = o.now ?? (() => Date.now());
  const log = o.log ?? ((level, msg, fields) => console[level](msg, fields ?? {}));
  /** @type {{text: string, gate: Gate}|null} */
  let current = null;
  let kv = { text: '', at: -Infinity };

  async function configText(env) {
    if (env.ANTEROOM_CONFIG !== undefined) {
      return typeof env.ANTEROOM_CONFIG === 'string' ? env.ANTEROOM_CONFIG : JSON.stringify(env.ANTEROOM_CONFIG);
    }
    if (!env.ANTEROOM_KV) throw new Error('anteroom: set ANTEROOM_CONFIG or bind ANTEROOM_KV');
    if (now() - kv.at >= CONFIG_KV_TTL_MS) {
      const text = await env.ANTEROOM_KV.get('config');
      if (text === null) throw new Error('anteroom: KV key "config" is missing');
      kv = { text, at: now() };
    }
    return kv.text;
  }

  async function gateFor(env) {
    const text = await configText(env);
    if (current?.text !== text) {
      const config = JSON.parse(text);
      const gate = new Gate(config, {
        now,
        log: o.log,
        // The JWKS comes from Anteroom directly (a subrequest to this
        // zone would reach the site's origin, not this Worker), unless
        // the configuration names a jwks_url.
        fetchKeys: () => {
          if (config.jwks_url) return fetchFn(config.jwks_url);
          const site = gate.config.issuerURL;
          return fetchFn(anteroomRequest(env, site, '/keys', new Request(site.origin)), resolveOverride(env));
        },
      });
      current = { text, gate };
    }
    return current.gate;
  }

  return {
    /**
     * @param {Request} request
     * @param {Record<string, any>} env
     */
    async fetch(request, env) {
      let gate;
      try {
        gate = await gateFor(env);
      } catch (err) {
        log('error', 'anteroom: no usable configuration', { error: String(err?.message ?? err) });
        return new Response('Service unavailable\n', { status: 503, headers: { 'retry-after': '30' } });
      }
      let origin;
      try {
        origin = siteOrigin(env.SITE_ORIGIN);
      } catch (err) {
        log('error', 'anteroom: no usable configuration', { error: String(err?.message ?? err) });
        return new Response('Service unavailable\n', { status: 503, headers: { 'retry-after': '30' } });
      }
      // The URL parsed only for its host and scheme; the target as sent.
      const url = new URL(request.url);
      const target = requestTarget(request.url);
      const host = request.headers.get('host') ?? url.host;
      const routed = gate.anteroomTarget(host, target);
      if (routed !== null) return fetchFn(anteroomRequest(env, url, routed, request), resolveOverride(env));

      const { response, headers } = await checkRequest(gate, request, host, target);
      if (response) return response;
      const forward = originRequest(origin ?? url.origin, target, request, headers);
      if (forward === null) return unforwardable();
      return fetchFn(forward);
    },
  };
}

// siteOrigin returns SITE_ORIGIN's origin, or undefined when it is not
// set. It throws for anything but an http(s) origin: a path in it would
// not be used, so it is refused rather than silently dropped.
function siteOrigin(value) {
  if (value === undefined || value === '') return undefined;
  let u;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`SITE_ORIGIN must be an origin such as https://origin.example.com, got ${JSON.stringify(value)}`);
  }
  if (!['http:', 'https:'].includes(u.protocol) || u.username || u.password || u.pathname !== '/' || u.search || u.hash ||
      !/^https?:\/\/[^/?#\\]+\/?$/.test(value)) {
    throw new Error(`SITE_ORIGIN must be an origin such as https://origin.example.com (no path, query or credentials), got ${JSON.stringify(value)}`);
  }
  return u.origin;
}

// anteroomRequest is request sent on to Anteroom at target (the prefix
// removed).
function anteroomRequest(env, url, target, request) {
  const headers = new Headers(request.headers);
  headers.set('x-forwarded-host', url.host);
  headers.set('x-forwarded-proto', url.protocol.replace(':', ''));
  let dest;
  if (env.ANTEROOM_RESOLVE_OVERRIDE) dest = url.origin + target;
  else if (env.ANTEROOM_BACKEND) dest = env.ANTEROOM_BACKEND.replace(/\/$/, '') + target;
  else throw new Error('anteroom: set ANTEROOM_BACKEND or ANTEROOM_RESOLVE_OVERRIDE');
  return new Request(dest, forwardInit(request, headers));
}

function resolveOverride(env) {
  return env.ANTEROOM_RESOLVE_OVERRIDE ? { cf: { resolveOverride: env.ANTEROOM_RESOLVE_OVERRIDE } } : undefined;
}

export default createWorker();
