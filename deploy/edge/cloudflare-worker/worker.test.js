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

// rawRequest is a request whose url is exactly as given, as a runtime may
// hand over a request line it did not normalise: Node's Request would
// resolve dot segments in the constructor, which would hide what the
// Worker does with them.
function rawRequest(url, o = {}) {
  const headers = new Headers({ 'user-agent': BROWSER_UA, accept: 'text/html' });
  for (const [k, v] of Object.entries(o.headers ?? {})) headers.append(k, v);
  return { url, method: o.method ?? 'GET', headers, body: null };
}

// Paths that a URL parser reads as another host when resolved against an
// origin (new URL(path, origin)), raw and as Node's Request passes them.
const OTHER_HOST_PATHS = [
  '//evil.example/steal', '//evil.example', '/\\evil.example/steal', '/\\\\evil.example/steal', '//evil.example:443/x?y=1',
  '/%2F%2Fevil.example/steal', '/%5Cevil.example/steal', '//user@evil.example/steal', '/http://evil.example/steal',
  '///evil.example/steal', '/.//evil.example/steal',
];

test('a passing request only ever goes to the configured origin, whatever its path', async () => {
  const session = `${inst.cookie_name}_launch=${token(inst, 'valid').token}`;
  for (const siteOrigin of ['http://127.0.0.1:9999', undefined]) {
    const { net, worker, env } = setup(inst, { SITE_ORIGIN: siteOrigin });
    const origin = siteOrigin ?? 'https://shop.example.com';
    for (const path of OTHER_HOST_PATHS) {
      for (const request of [rawRequest(`https://shop.example.com${path}`, { headers: { cookie: `secret=1; ${session}` } }),
        browserRequest(`https://shop.example.com${path}`, { headers: { cookie: `secret=1; ${session}` } })]) {
        const before = net.origin.length;
        const res = await worker.fetch(request, env);
        for (const seen of [...net.origin, ...net.anteroom]) {
          assert.ok(seen.url.startsWith(`${origin}/`) || seen.url.startsWith(`${BACKEND}/`), `${path}: a request went to ${seen.url}`);
        }
        if (res.status === 200) {
          // Sent on: exactly what the rules decided on, on the origin.
          const seen = net.origin.at(-1);
          assert.equal(net.origin.length, before + 1);
          assert.equal(new URL(seen.url).origin, origin, path);
          assert.ok(seen.url.startsWith(`${origin}/`), path);
        } else {
          assert.equal(res.status, 400, `${path}: ${res.status}`);
          assert.equal(net.origin.length, before, path);
        }
      }
    }
    // The plain case, to show the origin was reachable at all.
    const res = await worker.fetch(rawRequest('https://shop.example.com//evil.example/steal?q=1', { headers: { cookie: session } }), env);
    assert.equal(res.status, 200);
    assert.equal(net.origin.at(-1).url, `${origin}//evil.example/steal?q=1`);
  }
});

test('SITE_ORIGIN must be an origin; anything else is a configuration error, never a guess', async () => {
  for (const bad of ['http://127.0.0.1:9999/base', 'ftp://origin.example.com', 'https://u:p@origin.example.com', 'origin.example.com', 'https://origin.example.com?x']) {
    const { net, worker, env } = setup(inst, { SITE_ORIGIN: bad });
    const res = await worker.fetch(browserRequest('https://shop.example.com/static/app.js'), env);
    assert.equal(res.status, 503, bad);
    assert.equal(net.origin.length, 0, bad);
  }
});

test('the Worker decides on the path as sent, never on one a URL parser resolved', async () => {
  const { net, worker, env } = setup(inst, { SITE_ORIGIN: 'http://127.0.0.1:9999' });
  // As the nginx gate does (gate/testdata/rules.json): not bypassed, but
  // queued, since /static/ is a bypass rule and / a queue rule.
  for (const path of ['/static//../app/', '/static/./app.js', '/static/%2e%2e/checkout', '/static/app.js;jsessionid=1', '/static;x/app.js']) {
    const res = await worker.fetch(rawRequest(`https://shop.example.com${path}`), env);
    assert.equal(res.status, 302, path);
    assert.ok(res.headers.get('location').startsWith(`${inst.issuer}/gate/start?rd=`), path);
  }
  // A backslash is no return address /gate/start would take: 400.
  assert.equal((await worker.fetch(rawRequest('https://shop.example.com/static\\..\\app.js'), env)).status, 400);
  assert.equal(net.origin.length, 0);
  // With a session for the room that queues it, the request passes the
  // rules, but the Fetch API would send the origin /static/app/, which no
  // rule looked at: refused rather than rewritten.
  const session = `${inst.cookie_name}_launch=${token(inst, 'valid').token}`;
  const res = await worker.fetch(rawRequest('https://shop.example.com/static//../app/', { headers: { cookie: session } }), env);
  assert.equal(res.status, 400);
  assert.match(res.headers.get('cache-control'), /no-store/);
  assert.equal(net.origin.length, 0);
  // A canonical static path still bypasses, and a path parameter on a
  // queued path goes on with the session, unchanged.
  assert.equal((await worker.fetch(rawRequest('https://shop.example.com/static/app.js'), env)).status, 200);
  assert.equal(net.origin.at(-1).url, 'http://127.0.0.1:9999/static/app.js');
  assert.equal((await worker.fetch(rawRequest('https://shop.example.com/products;v=2', { headers: { cookie: session } }), env)).status, 200);
  assert.equal(net.origin.at(-1).url, 'http://127.0.0.1:9999/products;v=2');
});

test('a gate cookie on a second Cookie line is found, as the nginx gate finds it', async () => {
  const { net, worker, env } = setup(inst);
  const tok = token(inst, 'valid');
  // The Fetch standard's Headers.get, as workerd implements it, joins the
  // two lines into "theme=dark, anteroom_gate_…", which read as one line
  // is one cookie, theme. (Node's Headers joins Cookie with "; " instead,
  // so the joined value is written out here.)
  const res = await worker.fetch(rawRequest(`https://shop.example.com${tok.path}`, {
    headers: { cookie: `theme=dark, ${inst.cookie_name}_${tok.room}=${tok.token}` },
  }), env);
  assert.equal(res.status, 200);
  assert.equal(net.origin.at(-1).headers['x-anteroom-sub'], tok.sub);
  // The first of two gate cookies counts, as in Go, even across lines.
  const first = await worker.fetch(rawRequest(`https://shop.example.com${tok.path}`, {
    headers: { cookie: `${inst.cookie_name}_${tok.room}=forged, ${inst.cookie_name}_${tok.room}=${tok.token}` },
  }), env);
  assert.equal(first.status, 302);
});
