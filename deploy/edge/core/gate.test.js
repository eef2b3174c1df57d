// The edge gate against tokens that real Anteroom instances (RS256 and
// ES256) issued and judged: every verdict must be Anteroom's own.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clock, edgeConfig, fixture, jwksOrigin, request, token } from '../testing/fixture.js';
import { Gate, NO_CACHE, validateConfig } from './gate.js';
import { ConfigError } from './rules.js';

const MINUTE = 60_000;

function gateFor(inst, { pinned = false, extra = {}, origin = jwksOrigin(inst) } = {}) {
  const c = clock(inst.now_ms);
  const config = edgeConfig(inst, pinned ? { jwks: inst.jwks, ...extra } : extra);
  const gate = new Gate(config, { now: c.now, fetchKeys: origin.fetchKeys, log: () => {} });
  return { gate, clock: c, origin };
}

function withCookie(inst, tok, o = {}) {
  return request(tok.path, { ...o, cookies: [`theme=dark; ${inst.cookie_name}_${tok.room}=${tok.token}`] });
}

for (const inst of fixture.instances) {
  for (const pinned of [false, true]) {
    test(`${inst.alg}, ${pinned ? 'pinned' : 'fetched'} JWKS: every token gets Anteroom's verdict`, async () => {
      const { gate } = gateFor(inst, { pinned });
      const valid = inst.tokens.filter((t) => t.valid);
      assert.ok(valid.length >= 5 && inst.tokens.length - valid.length >= 20, 'the fixture lacks tokens');
      for (const tok of inst.tokens) {
        const out = await gate.handle(withCookie(inst, tok));
        if (tok.valid) {
          assert.equal(out.kind, 'pass', `${tok.name} should pass`);
          assert.deepEqual(out.headers, { 'x-anteroom-sub': tok.sub, 'x-anteroom-room': tok.room, 'x-anteroom-position': String(tok.position) }, tok.name);
        } else {
          assert.equal(out.kind, 'respond', `${tok.name} should be refused`);
          assert.equal(out.status, 302, tok.name);
          assert.equal(out.headers.location, `${inst.issuer}/gate/start?rd=${encodeURIComponent(tok.path).replace(/%20/g, '+')}`, tok.name);
        }
      }
    });
  }

  test(`${inst.alg}: a script gets 401 and the very start_url Anteroom gives`, async () => {
    const { gate } = gateFor(inst);
    assert.ok(inst.start_urls.length >= 3);
    for (const { target, start_url: want } of inst.start_urls) {
      for (const headers of [{ 'X-Requested-With': 'XMLHttpRequest' }, { Accept: 'application/json' },
        // The browser's own favicon request (Fetch Metadata): no login for it.
        { Accept: 'image/avif,image/webp,*/*', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' },
        { Accept: 'text/html', 'Sec-Fetch-Mode': 'cors' }]) {
        const out = await gate.handle(request(target, { headers }));
        assert.equal(out.status, 401);
        assert.equal(out.headers['content-type'], 'application/json');
        assert.deepEqual(JSON.parse(out.body), { error: 'queue', start_url: want });
        assert.equal(out.headers['cache-control'], NO_CACHE['cache-control']);
      }
      // A navigation accepts HTML too: it is redirected.
      const nav = await gate.handle(request(target, { headers: { Accept: 'text/html,application/json;q=0.9' } }));
      assert.equal(nav.status, 302);
      assert.equal(nav.headers.location, want);
      const navigate = await gate.handle(request(target, { headers: { Accept: '*/*', 'Sec-Fetch-Mode': 'navigate' } }));
      assert.equal(navigate.status, 302);
    }
  });

  test(`${inst.alg}: a session ends at exp, cached or not`, async () => {
    const { gate, clock: c } = gateFor(inst);
    const tok = token(inst, 'valid');
    const exp = JSON.parse(Buffer.from(tok.token.split('.')[1], 'base64url')).exp * 1000;
    assert.equal((await gate.handle(withCookie(inst, tok))).kind, 'pass');
    c.t = exp - 1;
    assert.equal((await gate.handle(withCookie(inst, tok))).kind, 'pass');
    c.t = exp;
    assert.equal((await gate.handle(withCookie(inst, tok))).status, 302);
  });
}

const inst = fixture.instances[0];

test('redirects, refusals and 400s carry no-cache headers', async () => {
  const { gate } = gateFor(inst);
  const redirect = await gate.handle(request('/products/red-shoe'));
  const blocked = await gate.handle(request('/internal/metrics'));
  // Queued, but not a return address /gate/start would accept.
  const unsafe = await gate.handle(request('//checkout/pay'));
  assert.deepEqual([redirect.status, blocked.status, unsafe.status], [302, 403, 400]);
  for (const out of [redirect, blocked, unsafe]) {
    for (const [k, v] of Object.entries(NO_CACHE)) assert.equal(out.headers[k], v, `${out.status} ${k}`);
  }
  const bypass = await gate.handle(request('/static/app.js'));
  assert.deepEqual(bypass.kind, 'pass');
  assert.deepEqual(bypass.headers, {});
});

test('the JWKS is fetched once, refreshed after its TTL, and kept while Anteroom is down', async () => {
  const { gate, clock: c, origin } = gateFor(inst, { extra: { jwks_ttl_seconds: 300, jwks_max_stale_seconds: 3600 } });
  const valid = token(inst, 'valid');
  const pass = async () => (await gate.handle(withCookie(inst, valid))).kind === 'pass';
  await Promise.all([pass(), pass(), pass()]);
  assert.equal(origin.calls, 1, 'concurrent first requests share one fetch');
  gate.verified.clear();
  assert.ok(await pass());
  assert.equal(origin.calls, 1);

  c.advance(5 * MINUTE);
  gate.verified.clear();
  assert.ok(await pass());
  assert.equal(origin.calls, 2, 'refreshed after the TTL');

  origin.down = true;
  c.advance(5 * MINUTE);
  gate.verified.clear();
  assert.ok(await pass(), 'the stale set is used while the refresh fails');
  assert.equal(origin.calls, 3);
  assert.ok(await pass());
  assert.equal(origin.calls, 3, 'no retry before the retry interval');

  c.advance(60 * MINUTE);
  gate.verified.clear();
  const out = await gate.handle(withCookie(inst, valid));
  assert.equal(out.status, 302, 'fail_closed (the default) once the stale set is too old');
  assert.equal(origin.calls, 4);
});

test('an unknown kid makes at most one early refresh per interval', async () => {
  const { gate, clock: c, origin } = gateFor(inst);
  const forged = token(inst, 'unknown_kid');
  assert.equal((await gate.handle(withCookie(inst, token(inst, 'valid')))).kind, 'pass');
  assert.equal(origin.calls, 1);
  c.advance(31_000);
  for (let i = 0; i < 20; i++) assert.equal((await gate.handle(withCookie(inst, forged))).status, 302);
  assert.equal(origin.calls, 2, 'twenty forged kids, one refresh');
  c.advance(31_000);
  await gate.handle(withCookie(inst, forged));
  assert.equal(origin.calls, 3);
});

test('fail_open lets visitors through only while no JWKS can be had', async () => {
  const origin = jwksOrigin(inst);
  origin.down = true;
  const { gate } = gateFor(inst, { origin, extra: { rooms: { launch: { on_error: 'fail_open' } } } });
  const open = await gate.handle(request('/products/red-shoe'));
  assert.deepEqual(open, { kind: 'pass', headers: { 'x-anteroom-fail-open': '1' }, decision: open.decision });
  const forgedButOpen = await gate.handle(withCookie(inst, token(inst, 'tampered')));
  assert.equal(forgedButOpen.headers['x-anteroom-fail-open'], '1');
  // The checkout room is fail_closed.
  assert.equal((await gate.handle(request('/checkout/pay'))).status, 302);

  origin.down = false;
  const { gate: g2 } = gateFor(inst, { origin, extra: { rooms: { launch: { on_error: 'fail_open' } } } });
  assert.equal((await g2.handle(request('/products/red-shoe'))).status, 302, 'keys to be had: no failing open');
  assert.equal((await g2.handle(withCookie(inst, token(inst, 'tampered')))).status, 302);
});

test("requests for Anteroom itself are recognised by the issuer's host and path", () => {
  const { gate } = gateFor(inst);
  const host = new URL(inst.issuer).host;
  assert.equal(gate.anteroomTarget(host, '/_anteroom/gate/start?rd=%2F'), '/gate/start?rd=%2F');
  assert.equal(gate.anteroomTarget(host.toUpperCase(), '/_anteroom'), '/');
  assert.equal(gate.anteroomTarget(host, '/_anteroom?x=1'), '/?x=1');
  assert.equal(gate.anteroomTarget(host, '/_anteroomx/keys'), null);
  assert.equal(gate.anteroomTarget('shop.example.com', '/_anteroom/keys'), null);
  assert.equal(gate.anteroomTarget(host, '/products'), null);
});

test('a configuration that does not validate lists every problem with its key', () => {
  assert.throws(() => validateConfig({
    issuer: 'http://shop.example.com/_anteroom/',
    gate: fixture.gate,
    rooms: { launch: { on_error: 'open' }, ghost: {} },
    jwks: { keys: [{ ...inst.jwks.keys[0], d: 'secret' }] },
    jwks_url: 'https://x/keys',
    jwks_ttl_seconds: -1,
    extra: true,
  }), (err) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.problems, [
      'config.extra: unknown key',
      'issuer: must be https:// (http:// only on a loopback host)',
      'issuer: must have no query, fragment or trailing slash',
      'rooms.launch.on_error: must be fail_open or fail_closed, got "open"',
      'rooms.ghost: no gate rule queues in this room',
      'jwks_url: not used with a pinned jwks; set one or the other',
      'jwks.keys[0]: is a private key: pin the public JWKS from {issuer}/keys',
      'jwks_ttl_seconds: must be a whole number of seconds ≥ 0',
    ]);
    return true;
  });
  assert.throws(() => validateConfig({ gate: fixture.gate }), /issuer: required/);
  assert.doesNotThrow(() => validateConfig(edgeConfig(inst, { jwks: inst.jwks, rooms: { checkout: { on_error: 'fail_open' } } })));
});
