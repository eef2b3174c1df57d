// The Fastly Compute handler with standard Request and Response objects,
// against tokens real Anteroom instances issued; and its entry point
// (src/index.js) loaded as Fastly loads it, with the platform's
// fastly:config-store module and backend fetch stood in for.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { BROWSER_UA, clock, edgeConfig, fixture, token } from '../testing/fixture.js';
import { network } from '../testing/platform.js';
import { createHandler } from './src/handler.js';

function setup(inst) {
  const net = network(inst);
  const c = clock(inst.now_ms);
  const handle = createHandler({ config: edgeConfig(inst), fetch: net.fetch, now: c.now });
  return { net, handle };
}

const browser = (url, headers = {}) => new Request(url, { headers: { 'user-agent': BROWSER_UA, accept: 'text/html', ...headers } });

for (const inst of fixture.instances) {
  test(`${inst.alg}: valid sessions reach the origin backend, told who passed; nothing else does`, async () => {
    const { net, handle } = setup(inst);
    for (const tok of inst.tokens) {
      const before = net.origin.length;
      const res = await handle(browser(`https://shop.example.com${tok.path}`, { cookie: `${inst.cookie_name}_${tok.room}=${tok.token}`, 'x-anteroom-sub': 'forged' }));
      if (tok.valid) {
        assert.equal(res.status, 200, tok.name);
        const seen = net.origin.at(-1);
        assert.equal(seen.init, 'origin');
        assert.equal(seen.headers['x-anteroom-sub'], tok.sub);
        assert.equal(seen.headers['x-anteroom-position'], String(tok.position));
      } else {
        assert.equal(res.status, 302, tok.name);
        assert.equal(net.origin.length, before, `${tok.name} reached the origin`);
        assert.match(res.headers.get('cache-control'), /no-store/);
      }
    }
    const keys = net.anteroom.filter((r) => r.url.endsWith('/keys'));
    assert.equal(keys.length, 1);
    assert.equal(keys[0].init, 'anteroom', 'the JWKS comes from the anteroom backend');
    assert.equal(keys[0].url, `${new URL(inst.issuer).origin}/keys`, 'under the site host');
  });
}

const inst = fixture.instances[1];

test('a client cannot hand the origin its own X-Anteroom headers', async () => {
  const { net, handle } = setup(inst);
  const res = await handle(browser('https://shop.example.com/static/app.js', { 'x-anteroom-sub': 'forged', 'x-anteroom-fail-open': '1' }));
  assert.equal(res.status, 200);
  assert.equal(net.origin[0].headers['x-anteroom-sub'], undefined);
  assert.equal(net.origin[0].headers['x-anteroom-fail-open'], undefined);
});

test('/_anteroom/* goes to the anteroom backend under the site host, without the prefix', async () => {
  const { net, handle } = setup(inst);
  const site = new URL(inst.issuer);
  const res = await handle(new Request(`${site.origin}/_anteroom/wait/abc/continue`, { method: 'POST', body: 'x=1', duplex: 'half', headers: { cookie: 'anteroom_launch=t' } }));
  assert.equal(res.headers.get('set-cookie'), 'anteroom_gate_flow=1; Path=/_anteroom/gate/');
  const seen = net.anteroom.at(-1);
  assert.deepEqual([seen.init, seen.url, seen.method, seen.body, seen.headers.cookie], ['anteroom', `${site.origin}/wait/abc/continue`, 'POST', 'x=1', 'anteroom_launch=t']);
});

test('a script gets 401 with start_url', async () => {
  const { handle } = setup(inst);
  const res = await handle(browser('https://shop.example.com/checkout/pay?q=%C3%A9t%C3%A9+x&y=1*\'()!~', { 'x-requested-with': 'XMLHttpRequest' }));
  assert.equal(res.status, 401);
  // The URL parser may re-escape the query; the start URL carries what the handler saw.
  const { start_url: got } = await res.json();
  assert.ok(got.startsWith(`${inst.issuer}/gate/start?rd=%2Fcheckout%2Fpay%3Fq%3D`));
});

// rawRequest is a request whose url is exactly as given, which Node's
// Request would have resolved (see the Worker's test).
function rawRequest(url, headers = {}) {
  return { url, method: 'GET', headers: new Headers({ 'user-agent': BROWSER_UA, accept: 'text/html', ...headers }), body: null };
}

test('the handler decides on the path as sent and sends the origin exactly that, or nothing', async () => {
  const { net, handle } = setup(inst);
  // As the nginx gate decides (gate/testdata/rules.json): queued.
  for (const path of ['/static//../app/', '/static/%2e%2e/checkout', '/static/app.js;jsessionid=1']) {
    assert.equal((await handle(rawRequest(`https://shop.example.com${path}`))).status, 302, path);
  }
  const session = { cookie: `${inst.cookie_name}_launch=${token(inst, 'valid').token}` };
  // Passed by the rules with a session, but a URL parser would send
  // /static/app/: refused.
  assert.equal((await handle(rawRequest('https://shop.example.com/static//../app/', session))).status, 400);
  assert.equal(net.origin.length, 0);
  // A path that a resolving parser would read as another host stays a
  // path on the site.
  assert.equal((await handle(rawRequest('https://shop.example.com//evil.example/x?y=1', session))).status, 200);
  assert.deepEqual([net.origin.at(-1).url, net.origin.at(-1).init], ['https://shop.example.com//evil.example/x?y=1', 'origin']);
});

test('a gate cookie on a second Cookie line is found, as the nginx gate finds it', async () => {
  const { net, handle } = setup(inst);
  const tok = token(inst, 'valid');
  // Two Cookie lines as the Fetch API's Headers.get joins them (", ").
  const res = await handle(rawRequest(`https://shop.example.com${tok.path}`, { cookie: `theme=dark, ${inst.cookie_name}_${tok.room}=${tok.token}` }));
  assert.equal(res.status, 200);
  assert.equal(net.origin.at(-1).headers['x-anteroom-sub'], tok.sub);
});

test('the entry point reads the config store once and sends requests to named backends', async () => {
  // Resolve fastly:config-store to a stand-in, as the Compute runtime provides it.
  const stub = `export class ConfigStore {
    constructor(name) { this.name = name; globalThis.configStoreOpens = (globalThis.configStoreOpens ?? 0) + 1; }
    get(key) { return globalThis.configStores?.[this.name]?.[key] ?? null; }
  }`;
  register(`data:text/javascript,${encodeURIComponent(`
    export async function resolve(specifier, context, next) {
      if (specifier === 'fastly:config-store') return { url: 'data:text/javascript,' + ${JSON.stringify(encodeURIComponent(stub))}, shortCircuit: true };
      return next(specifier, context);
    }`)}`);
  const valid = token(inst, 'valid');
  const net = network(inst);
  const listeners = [];
  globalThis.addEventListener = (type, fn) => listeners.push([type, fn]);
  globalThis.configStores = { anteroom: { config: JSON.stringify(edgeConfig(inst, { jwks: inst.jwks })) } };
  const realFetch = globalThis.fetch;
  globalThis.fetch = (req, init) => net.fetch(req, init.backend);
  const realNow = Date.now;
  Date.now = () => inst.now_ms;
  try {
    await import('./src/index.js');
    assert.deepEqual(listeners.map(([type]) => type), ['fetch']);
    const dispatch = async (request) => {
      let responded;
      listeners[0][1]({ request, respondWith: (r) => { responded = r; } });
      return responded;
    };
    const res = await dispatch(browser('https://shop.example.com/products/red-shoe', { cookie: `anteroom_gate_launch=${valid.token}` }));
    assert.equal(res.status, 200);
    assert.equal(net.origin.at(-1).init, 'origin');
    assert.equal(net.origin.at(-1).headers['x-anteroom-sub'], valid.sub);
    assert.equal((await dispatch(browser('https://shop.example.com/products/red-shoe'))).status, 302);
    assert.equal(globalThis.configStoreOpens, 1);
  } finally {
    globalThis.fetch = realFetch;
    Date.now = realNow;
  }
});
