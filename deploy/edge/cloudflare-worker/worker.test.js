// The Worker module with standard Request and Response objects, against
// tokens real Anteroom instances issued (the fixture).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BROWSER_UA, clock, edgeConfig, fixture, token } from '../testing/fixture.js';
import { network } from '../testing/platform.js';
import { createWorker } from './worker.js';

const BACKEND = 'http://anteroom.internal:8080';

function setup(inst, envExtra = {}) {
  const net = network(inst, { anteroomBase: BACKEND });
  const c = clock(inst.now_ms);
  const worker = createWorker({ fetch: net.fetch, now: c.now, log: () => {} });
  const env = { ANTEROOM_CONFIG: JSON.stringify(edgeConfig(inst)), ANTEROOM_BACKEND: BACKEND, ...envExtra };
  return { net, worker, env, clock: c };
}

function browserRequest(url, o = {}) {
  return new Request(url, { method: o.method ?? 'GET', body: o.body, duplex: o.body ? 'half' : undefined,
    headers: { 'user-agent': BROWSER_UA, accept: 'text/html', ...o.headers } });
}

for (const inst of fixture.instances) {
  test(`${inst.alg}: a valid session reaches the origin, told who passed; nothing else does`, async () => {
    const { net, worker, env } = setup(inst);
    for (const tok of inst.tokens) {
      const before = net.origin.length;
      const res = await worker.fetch(browserRequest(`https://shop.example.com${tok.path}`, {
        headers: { cookie: `${inst.cookie_name}_${tok.room}=${tok.token}`, 'x-anteroom-sub': 'forged', 'X-Anteroom-Fail-Open': '1' },
      }), env);
      if (tok.valid) {
        assert.equal(res.status, 200, tok.name);
        const seen = net.origin.at(-1);
        assert.equal(seen.headers['x-anteroom-sub'], tok.sub, tok.name);
        assert.equal(seen.headers['x-anteroom-room'], tok.room);
        assert.equal(seen.headers['x-anteroom-position'], String(tok.position));
        assert.equal(seen.headers['x-anteroom-fail-open'], undefined, 'a client cannot claim fail-open');
        assert.equal(seen.url, `https://shop.example.com${tok.path}`);
      } else {
        assert.equal(res.status, 302, tok.name);
        assert.equal(net.origin.length, before, `${tok.name} reached the origin`);
        assert.ok(res.headers.get('location').startsWith(`${inst.issuer}/gate/start?rd=`));
        assert.match(res.headers.get('cache-control'), /no-store/);
      }
    }
    assert.equal(net.anteroom.filter((r) => r.url === `${BACKEND}/keys`).length, 1, 'the JWKS is fetched once from Anteroom itself');
  });
}

const inst = fixture.instances[0];

test('a client cannot hand the origin its own X-Anteroom headers', async () => {
  const { net, worker, env } = setup(inst);
  const res = await worker.fetch(browserRequest('https://shop.example.com/static/app.js', { headers: { 'x-anteroom-sub': 'forged' } }), env);
  assert.equal(res.status, 200);
  assert.equal(net.origin[0].headers['x-anteroom-sub'], undefined);
});

test('a script gets 401 with start_url; a blocked path 403; neither reaches the origin', async () => {
  const { net, worker, env } = setup(inst);
  const xhr = await worker.fetch(browserRequest('https://shop.example.com/products/red-shoe?colour=red&size=42', { headers: { 'x-requested-with': 'XMLHttpRequest' } }), env);
  assert.equal(xhr.status, 401);
  assert.deepEqual(await xhr.json(), { error: 'queue', start_url: inst.start_urls[0].start_url });
  const blocked = await worker.fetch(browserRequest('https://shop.example.com/internal/metrics'), env);
  assert.equal(blocked.status, 403);
  assert.equal(net.origin.length, 0);
});

test("/_anteroom/* goes to Anteroom without the prefix, body and cookies and all, and comes back unchanged", async () => {
  const { net, worker, env } = setup(inst);
  const site = new URL(inst.issuer);
  const res = await worker.fetch(browserRequest(`${site.origin}/_anteroom/wait/abc/continue?x=1`, {
    method: 'POST', body: 'a=1', headers: { cookie: 'anteroom_launch=t', 'content-type': 'application/x-www-form-urlencoded' },
  }), env);
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('set-cookie'), 'anteroom_gate_flow=1; Path=/_anteroom/gate/');
  assert.equal(res.headers.get('location'), '/_anteroom/wait/x');
  const seen = net.anteroom.at(-1);
  assert.deepEqual([seen.url, seen.method, seen.body, seen.headers.cookie, seen.headers['x-forwarded-host']],
    [`${BACKEND}/wait/abc/continue?x=1`, 'POST', 'a=1', 'anteroom_launch=t', site.host]);
  assert.equal(seen.init?.redirect ?? seen.init, undefined);
  assert.equal(net.origin.length, 0);
});

test('with ANTEROOM_RESOLVE_OVERRIDE the request keeps the site host and is resolved to Anteroom', async () => {
  const { net, worker, env } = setup(inst, { ANTEROOM_BACKEND: undefined, ANTEROOM_RESOLVE_OVERRIDE: 'anteroom-origin.example.com' });
  const site = new URL(inst.issuer);
  await worker.fetch(browserRequest(`${site.origin}/_anteroom/gate/start?rd=%2F`), env);
  const seen = net.anteroom.at(-1);
  assert.equal(seen.url, `${site.origin}/gate/start?rd=%2F`);
  assert.deepEqual(seen.init, { cf: { resolveOverride: 'anteroom-origin.example.com' } });
  // The JWKS comes the same way.
  await worker.fetch(browserRequest('https://shop.example.com/products/red-shoe', { headers: { cookie: `${inst.cookie_name}_launch=${token(inst, 'valid').token}` } }), env);
  assert.ok(net.anteroom.some((r) => r.url === `${site.origin}/keys` && r.init?.cf?.resolveOverride));
});

test('SITE_ORIGIN sends passing requests to another origin', async () => {
  const { net, worker, env } = setup(inst, { SITE_ORIGIN: 'http://127.0.0.1:9999' });
  await worker.fetch(browserRequest('https://shop.example.com/static/app.js?v=3'), env);
  assert.equal(net.origin[0].url, 'http://127.0.0.1:9999/static/app.js?v=3');
});

test('the configuration may come from KV, read at most once a minute', async () => {
  const { worker, clock: c } = setup(inst);
  let reads = 0;
  const env = { ANTEROOM_BACKEND: BACKEND, ANTEROOM_KV: { get: async (key) => { reads++; return key === 'config' ? JSON.stringify(edgeConfig(inst)) : null; } } };
  for (let i = 0; i < 5; i++) assert.equal((await worker.fetch(browserRequest('https://shop.example.com/products/red-shoe'), env)).status, 302);
  assert.equal(reads, 1);
  c.advance(61_000);
  await worker.fetch(browserRequest('https://shop.example.com/products/red-shoe'), env);
  assert.equal(reads, 2);
});

test('without a usable configuration the Worker answers 503, never passes', async () => {
  const { net, worker } = setup(inst);
  for (const env of [{}, { ANTEROOM_CONFIG: '{"issuer": "https://x"}' }, { ANTEROOM_KV: { get: async () => null } }]) {
    const res = await worker.fetch(browserRequest('https://shop.example.com/products/red-shoe'), env);
    assert.equal(res.status, 503);
  }
  assert.equal(net.origin.length, 0);
});
