// A stand-in for the network around an edge handler: the protected site's
// origin and Anteroom, recording what reaches each.

/**
 * network serves Anteroom's JWKS (for inst) and records every request
 * made through fetch: to Anteroom (URLs under anteroomBase, or sent to
 * the anteroom backend) and to the origin.
 * @param {any} inst
 * @param {{anteroomBase?: string}} [o]
 */
export function network(inst, o = {}) {
  const n = {
    anteroom: [],
    origin: [],
    down: false,
    /** fetch(request, init) as a Worker calls it, or (request, backend) as the Fastly handler does. */
    fetch: async (input, init) => {
      const req = input instanceof Request ? input : new Request(input);
      const backend = typeof init === 'string' ? init : undefined;
      const toAnteroom = backend === 'anteroom' || (o.anteroomBase && req.url.startsWith(o.anteroomBase)) ||
        init?.cf?.resolveOverride !== undefined;
      const body = req.body === null ? '' : await req.text();
      const seen = { url: req.url, method: req.method, headers: Object.fromEntries(req.headers), body, init };
      if (toAnteroom) {
        n.anteroom.push(seen);
        if (new URL(req.url).pathname === '/keys') {
          if (n.down) throw new TypeError('fetch failed');
          return new Response(JSON.stringify(inst.jwks), { headers: { 'content-type': 'application/json' } });
        }
        return new Response('anteroom', { status: 302, headers: { location: '/_anteroom/wait/x', 'set-cookie': 'anteroom_gate_flow=1; Path=/_anteroom/gate/' } });
      }
      n.origin.push(seen);
      return new Response(`origin ${new URL(req.url).pathname}`, { status: 200 });
    },
  };
  return n;
}
