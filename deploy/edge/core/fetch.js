// Helpers for platforms built on the Fetch API (Cloudflare Workers, Fastly
// Compute): the gate on a standard Request, and a request passed on.
import { ANTEROOM_HEADERS } from './gate.js';

// checkRequest runs gate on a standard Request for host and target (path
// and query). It returns { response } when the edge answers itself
// (redirect to the queue, 401, 403…), or { headers } to send the request on
// to the site with: the visitor's own X-Anteroom-* removed, the gate's set.
export async function checkRequest(gate, request, host, target) {
  const header = (name) => request.headers.get(name) ?? '';
  const cookie = request.headers.get('cookie');
  const out = await gate.handle({
    method: request.method, host, target, userAgent: header('user-agent'), header,
    cookies: cookie === null ? [] : [cookie],
  });
  if (out.kind === 'respond') {
    return { response: new Response(out.body === '' ? null : out.body, { status: out.status, headers: out.headers }) };
  }
  const headers = new Headers(request.headers);
  for (const h of ANTEROOM_HEADERS) headers.delete(h);
  for (const [k, v] of Object.entries(out.headers)) headers.set(k, v);
  return { headers };
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
