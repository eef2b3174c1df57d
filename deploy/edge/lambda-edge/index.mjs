// Anteroom's gate as CloudFront Lambda@Edge viewer-request functions.
//
//   handler           on the cache behaviours of the protected site: checks
//                     each request against the protection rules and the
//                     room's signed session cookie, and lets it through
//                     (with X-Anteroom-* headers for the origin), refuses
//                     it, or sends the visitor to the queue.
//   anteroomHandler   on the /_anteroom/* behaviour, whose origin is
//                     Anteroom: removes the issuer's path, since Anteroom
//                     serves at its root.
//
// No viewer-response function is needed: Anteroom's own /gate/callback
// sets the session cookie, through the /_anteroom/* behaviour.
//
// Lambda@Edge has no environment variables, so the configuration is the
// file config.json beside this one, put there by build.mjs, which also
// checks it. See README.md.

import { readFileSync } from 'node:fs';
import { ANTEROOM_HEADERS, Gate, platformBytes } from '../core/index.js';

/**
 * createHandlers returns both functions for one configuration.
 * @param {unknown} config the edge configuration
 * @param {ConstructorParameters<typeof Gate>[1]} [opts] the Gate's options (tests pass a clock and a JWKS fetcher)
 */
export function createHandlers(config, opts) {
  const gate = new Gate(config, opts);
  return {
    gate,
    /** @param {any} event a CloudFront viewer-request event */
    async handler(event) {
      const request = event.Records[0].cf.request;
      const first = (name) => request.headers[name]?.[0]?.value ?? '';
      const header = (name) => platformBytes(first(name));
      const target = platformBytes(request.uri + (request.querystring ? `?${request.querystring}` : ''));
      const out = await gate.handle({
        method: request.method,
        host: header('host'),
        target,
        userAgent: header('user-agent'),
        header,
        cookies: (request.headers.cookie ?? []).map((h) => platformBytes(h.value)),
      });
      if (out.kind === 'respond') return response(out);
      for (const h of ANTEROOM_HEADERS) delete request.headers[h];
      for (const [k, v] of Object.entries(out.headers)) request.headers[k] = [{ key: canonical(k), value: v }];
      return request;
    },
    /** @param {any} event a CloudFront viewer-request event on the /_anteroom/* behaviour */
    async anteroomHandler(event) {
      const request = event.Records[0].cf.request;
      const path = gate.stripPrefix(request.uri);
      if (path === null) return response({ status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Not found\n' });
      request.uri = path;
      return request;
    },
  };
}

const STATUS_TEXT = { 302: 'Found', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' };

function response(out) {
  const headers = {};
  for (const [k, v] of Object.entries(out.headers)) headers[k] = [{ key: canonical(k), value: v }];
  const r = { status: String(out.status), statusDescription: STATUS_TEXT[out.status] ?? '', headers };
  if (out.body) {
    r.body = out.body;
    r.bodyEncoding = 'text';
  }
  return r;
}

function canonical(name) {
  return name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
}

let handlers;
function deployed() {
  // Read once per container, on its first request.
  handlers ??= createHandlers(JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8')));
  return handlers;
}

/** handler is the viewer-request function of the protected behaviours. */
export const handler = (event) => deployed().handler(event);

/** anteroomHandler is the viewer-request function of the /_anteroom/* behaviour. */
export const anteroomHandler = (event) => deployed().anteroomHandler(event);
