// Helpers for platforms built on the Fetch API (Cloudflare Workers, Fastly
// Compute): the gate on a standard Request, and a request passed on.
import { ANTEROOM_HEADERS, NO_CACHE } from './gate.js';
import { preparePath } from './rules.js';
import { utf8Bytes } from './bytes.js';

/**
 * requestTarget returns the path and query of a request URL as the
 * platform hands it over, cut from the string and never resolved by a URL
 * parser: a parser would turn /static//../app/ into /static/app/, and the
 * rules must decide on what was sent (see gate.Rules.Decide). It always
 * starts with /, so that it can only ever be appended to an origin.
 * @param {string} url request.url
 */
export function requestTarget(url) {
  const scheme = url.indexOf('://');
  const rest = scheme >= 0 ? url.slice(scheme + 3) : url;
  // The authority ends at the first /, ?, # or \ (a URL parser reads \ as
  // / in http and https URLs).
  const end = rest.search(/[/?#\\]/);
  const target = end >= 0 ? rest.slice(end) : '/';
  return target.startsWith('/') ? target : '/' + target;
}

/**
 * cookieLines splits a Cookie header as the Fetch API gives it back into
 * the lines the client sent. Headers.get joins a repeated header's lines
 * with ", " (workerd does; Node's Headers uses "; " for Cookie), which
 * would hide every cookie after the first line inside the value of the
 * last cookie of the line before (", " is a valid byte pair in a cookie
 * value to Go). Go's gate and Lambda@Edge read each line, so the edge
 * splits on ", " again. No cookie value that RFC 6265 allows contains a
 * comma or a space, so only values outside it read differently from Go.
 * @param {string|null} cookie
 * @returns {string[]}
 */
export function cookieLines(cookie) {
  return cookie === null ? [] : cookie.split(', ');
}

// checkRequest runs gate on a standard Request for host and target (path
// and query). It returns { response } when the edge answers itself
// (redirect to the queue, 401, 403…), or { headers } to send the request on
// to the site with: the visitor's own X-Anteroom-* removed, the gate's set.
export async function checkRequest(gate, request, host, target) {
  const header = (name) => request.headers.get(name) ?? '';
  const out = await gate.handle({
    method: request.method, host, target: utf8Bytes(target), userAgent: header('user-agent'), header,
    cookies: cookieLines(request.headers.get('cookie')),
  });
  if (out.kind === 'respond') {
    return { response: new Response(out.body === '' ? null : out.body, { status: out.status, headers: out.headers }) };
  }
  const headers = new Headers(request.headers);
  for (const h of ANTEROOM_HEADERS) headers.delete(h);
  for (const [k, v] of Object.entries(out.headers)) headers.set(k, v);
  return { headers };
}

/**
 * originRequest is the request to send on to origin (scheme://host[:port],
 * no path) for target, the request target the rules decided on, or null
 * when the Fetch API would send another path than that. The URL is origin
 * and target put side by side, never target resolved against origin, so
 * //evil.example/ stays a path on origin. A Request's URL goes through a
 * URL parser, which resolves dot segments (.., %2e) and reads \ as /;
 * forwarding what it makes of /x/..;/admin would send the origin a path no
 * rule looked at, so such a request (which a browser never sends: it
 * resolves them itself) is not forwarded at all.
 * @param {string} origin
 * @param {string} target
 * @param {Request} request
 * @param {Headers} headers
 * @returns {Request|null}
 */
export function originRequest(origin, target, request, headers) {
  const out = new Request(origin + target, forwardInit(request, headers));
  const sent = new URL(out.url);
  // Cannot differ, as target starts with /; checked because it matters.
  if (sent.origin !== origin) return null;
  // The parser percent-encodes some bytes, which changes nothing once
  // decoded; anything else it changed is refused.
  if (preparePath(utf8Bytes(target)).decoded !== preparePath(sent.pathname).decoded) return null;
  return out;
}

/**
 * unforwardable is the answer to a request whose path the Fetch API would
 * change on its way to the origin (see originRequest).
 */
export function unforwardable() {
  return new Response('Bad request\n', { status: 400, headers: { ...NO_CACHE, 'content-type': 'text/plain; charset=utf-8' } });
}

// forwardInit is the init of a request passed on unchanged but for headers:
// redirects go back to the browser, and a body streams through.
export function forwardInit(request, headers) {
  const init = { method: request.method, headers, redirect: 'manual' };
  if (request.body !== null && request.method !== 'GET' && request.method !== 'HEAD') {
    init.body = request.body;
    init.duplex = 'half';
  }
  return init;
}
