// Shared helpers of the edge test suites (node --test deploy/edge): the
// fixture that e2e's TestEdgeConnectors writes from real Anteroom
// instances, and the rule and regex tables of gate/testdata. This folder is
// named testing, not test, so that node --test does not run it as a suite.

import { readFileSync } from 'node:fs';

const read = (url) => JSON.parse(readFileSync(url, 'utf8'));

/**
 * fixture is the tokens, JWKS and Go decisions of real Anteroom instances:
 * the file named by ANTEROOM_EDGE_FIXTURE (go test writes a fresh one every
 * run), or the committed deploy/edge/testdata/fixture.json.
 */
export const fixture = read(process.env.ANTEROOM_EDGE_FIXTURE ?? new URL('../testdata/fixture.json', import.meta.url));

/** rulesTable is gate/testdata/rules.json, which Go's tests read too. */
export const rulesTable = read(new URL('../../../gate/testdata/rules.json', import.meta.url));

/** regexTable is gate/testdata/regex.json, which Go's tests read too. */
export const regexTable = read(new URL('../../../gate/testdata/regex.json', import.meta.url));

export const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
export const GOOGLEBOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

/**
 * edgeConfig is the edge configuration for an instance of the fixture:
 * its issuer and the shared rules, plus extra.
 * @param {any} inst
 * @param {object} [extra]
 */
export function edgeConfig(inst, extra = {}) {
  return { issuer: inst.issuer, gate: fixture.gate, ...extra };
}

/**
 * clock is a clock tests move by hand, starting at the instance's minting
 * time, so the fixture's tokens stay as valid as when they were made.
 * @param {number} ms
 */
export function clock(ms) {
  const c = { t: ms, now: () => c.t, advance: (d) => { c.t += d; } };
  return c;
}

/**
 * jwksOrigin stands in for {issuer}/keys: it serves the instance's JWKS,
 * counts fetches, and fails while down is set.
 * @param {any} inst
 */
export function jwksOrigin(inst) {
  const o = {
    calls: 0,
    down: false,
    fetchKeys: async () => {
      o.calls++;
      if (o.down) throw new Error('connection refused');
      return new Response(JSON.stringify(inst.jwks), { headers: { 'content-type': 'application/json' } });
    },
  };
  return o;
}

/**
 * token returns the named token of an instance.
 * @param {any} inst
 * @param {string} name
 */
export function token(inst, name) {
  const t = inst.tokens.find((x) => x.name === name);
  if (!t) throw new Error(`fixture has no token ${name}`);
  return t;
}

/**
 * request is a plain request for Gate.handle: a browser's GET of target on
 * shop.example.com, with options overriding fields.
 */
export function request(target, o = {}) {
  const headers = Object.fromEntries(Object.entries(o.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method: o.method ?? 'GET',
    host: o.host ?? 'shop.example.com',
    target,
    userAgent: o.userAgent ?? BROWSER_UA,
    header: (name) => (name === 'user-agent' ? o.userAgent ?? BROWSER_UA : headers[name] ?? ''),
    cookies: o.cookies ?? [],
  };
}
