// Anteroom's gate on Fastly Compute, as a function of a Request: index.js
// wires it to the platform (config store, backends). On the protected
// site's service it sends /_anteroom/* (the issuer's path) to the
// "anteroom" backend, so its cookies stay first-party, and checks every
// other request against the protection rules and the room's signed
// session cookie before it goes to the "origin" backend.

import { Gate, checkRequest, forwardInit, originRequest, requestTarget, unforwardable } from '../../core/index.js';

/**
 * createHandler returns the request handler for one configuration.
 * @param {object} o
 * @param {unknown} o.config the edge configuration
 * @param {(request: Request, backend: string) => Promise<Response>} o.fetch sends a request to a named backend
 * @param {string} [o.anteroomBackend] the backend that is Anteroom (default "anteroom")
 * @param {string} [o.originBackend] the backend that is the protected site (default "origin")
 * @param {() => number} [o.now]
 * @returns {(request: Request) => Promise<Response>}
 */
export function createHandler({ config, fetch, anteroomBackend = 'anteroom', originBackend = 'origin', now }) {
  const gate = new Gate(config, {
    now,
    // The JWKS from the Anteroom backend, under the site's own host.
    fetchKeys: () => fetch(new Request(`${gate.config.issuerURL.origin}/keys`), anteroomBackend),
  });
  return async (request) => {
    // The URL parsed only for its host and scheme; the rules decide on the
    // target as sent, which a URL parser would have resolved.
    const url = new URL(request.url);
    const target = requestTarget(request.url);
    const host = request.headers.get('host') ?? url.host;
    const routed = gate.anteroomTarget(host, target);
    if (routed !== null) {
      // Same URL but the prefix, so the backend request keeps the site's
      // Host header, which host-matching rules need.
      const headers = new Headers(request.headers);
      headers.set('x-forwarded-host', url.host);
      headers.set('x-forwarded-proto', url.protocol.replace(':', ''));
      return fetch(new Request(url.origin + routed, forwardInit(request, headers)), anteroomBackend);
    }
    const { response, headers } = await checkRequest(gate, request, host, target);
    if (response) return response;
    // The same URL, so the origin backend gets the path the rules decided
    // on, or nothing when the Fetch API would change it.
    const forward = originRequest(url.origin, target, request, headers);
    if (forward === null) return unforwardable();
    return fetch(forward, originBackend);
  };
}

