// The Lambda@Edge functions with CloudFront viewer-request events as
// CloudFront sends them, against tokens real Anteroom instances issued.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BROWSER_UA, clock, edgeConfig, fixture, jwksOrigin, token } from '../testing/fixture.js';
import { createHandlers } from './index.mjs';
import { build } from './build.mjs';

/**
 * viewerRequest is a CloudFront viewer-request event (the shape of
 * AWS's documented example): headers in lower case, each a list of
 * {key, value}; the query string apart from the URI, without "?".
 */
function viewerRequest(uri, { querystring = '', method = 'GET', headers = {}, cookies = [] } = {}) {
  const h = {
    host: [{ key: 'Host', value: 'shop.example.com' }],
    'user-agent': [{ key: 'User-Agent', value: BROWSER_UA }],
    accept: [{ key: 'Accept', value: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }],
    'accept-encoding': [{ key: 'Accept-Encoding', value: 'gzip, deflate, br' }],
  };
  for (const [k, v] of Object.entries(headers)) h[k.toLowerCase()] = [{ key: k, value: v }];
  if (cookies.length) h.cookie = cookies.map((value) => ({ key: 'Cookie', value }));
  return {
    Records: [{
      cf: {
        config: { distributionDomainName: 'd111111abcdef8.cloudfront.net', distributionId: 'EDFDVBD6EXAMPLE', eventType: 'viewer-request', requestId: '4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==' },
        request: { clientIp: '203.0.113.178', headers: h, method, querystring, uri },
      },
    }],
  };
}

function setup(inst, opts = {}) {
  const c = clock(inst.now_ms);
  const origin = jwksOrigin(inst);
  return { ...createHandlers(edgeConfig(inst, opts.config), { now: c.now, fetchKeys: origin.fetchKeys, log: () => {} }), clock: c, origin };
}

const value = (headers, name) => headers[name]?.[0]?.value;

for (const inst of fixture.instances) {
  test(`${inst.alg}: valid sessions go on to the origin with X-Anteroom headers; the rest are redirected`, async () => {
    const { handler } = setup(inst);
    for (const tok of inst.tokens) {
      // Two Cookie headers, as HTTP/2 clients may send them.
      const event = viewerRequest(tok.path, { headers: { 'X-Anteroom-Sub': 'forged' }, cookies: ['theme=dark', `${inst.cookie_name}_${tok.room}=${tok.token}`] });
      const out = await handler(event);
      if (tok.valid) {
        assert.equal(out, event.Records[0].cf.request, `${tok.name}: the request itself goes on`);
        assert.deepEqual(out.headers['x-anteroom-sub'], [{ key: 'X-Anteroom-Sub', value: tok.sub }]);
        assert.equal(value(out.headers, 'x-anteroom-room'), tok.room);
        assert.equal(value(out.headers, 'x-anteroom-position'), String(tok.position));
      } else {
        assert.equal(out.status, '302', tok.name);
        assert.equal(out.statusDescription, 'Found');
        assert.ok(value(out.headers, 'location').startsWith(`${inst.issuer}/gate/start?rd=`));
        assert.equal(value(out.headers, 'cache-control'), 'no-cache, no-store, must-revalidate, max-age=0');
        assert.equal(out.headers['cache-control'][0].key, 'Cache-Control');
      }
    }
  });
}

const inst = fixture.instances[0];

test('the query string and a raw, non-canonical URI are kept in the return address', async () => {
  const { handler } = setup(inst);
  const out = await handler(viewerRequest('/checkout/pay', { querystring: 'coupon=A%20B&x=1' }));
  assert.equal(value(out.headers, 'location'), `${inst.issuer}/gate/start?rd=%2Fcheckout%2Fpay%3Fcoupon%3DA%2520B%26x%3D1`);
  // CloudFront hands the URI over as sent: a traversal out of a bypassed
  // prefix does not bypass.
  const trav = await handler(viewerRequest('/static/%2e%2e/checkout/pay'));
  assert.equal(trav.status, '302');
  const bypass = await handler(viewerRequest('/static/app.js', { headers: { 'X-Anteroom-Sub': 'forged' } }));
  assert.equal(bypass.uri, '/static/app.js');
  assert.equal(bypass.headers['x-anteroom-sub'], undefined, 'a client cannot hand the origin its own X-Anteroom headers');
});

test('the URI as sent is decided as the nginx gate decides it: no path parameter, empty segment or // host bypasses', async () => {
  const { handler } = setup(inst);
  for (const uri of ['/static//../app/', '/static/app.js;jsessionid=1', '/static;x/app.js']) {
    assert.equal((await handler(viewerRequest(uri))).status, '302', uri);
  }
  // Queued too, but //… is no return address /gate/start would take: 400.
  assert.equal((await handler(viewerRequest('//evil.example/static/app.js'))).status, '400');
});

test('a gate cookie on a second Cookie line is found, as the nginx gate finds it', async () => {
  const { handler } = setup(inst);
  const tok = token(inst, 'valid');
  // CloudFront hands each Cookie line over as an entry. A first line whose
  // last value would swallow the second if the two were joined with ", ".
  const out = await handler(viewerRequest(tok.path, { cookies: ['theme=dark', `${inst.cookie_name}_${tok.room}=${tok.token}`] }));
  assert.equal(value(out.headers, 'x-anteroom-sub'), tok.sub);
  // And the first of two gate cookies counts, across lines, as in Go.
  const first = await handler(viewerRequest(tok.path, { cookies: [`${inst.cookie_name}_${tok.room}=forged`, `${inst.cookie_name}_${tok.room}=${tok.token}`] }));
  assert.equal(first.status, '302');
});

test('a script gets a 401 with a JSON body; a blocked path 403; a good bot passes, but not on checkout', async () => {
  const { handler } = setup(inst);
  const xhr = await handler(viewerRequest('/products/red-shoe', { querystring: 'colour=red&size=42', headers: { 'X-Requested-With': 'XMLHttpRequest' } }));
  assert.equal(xhr.status, '401');
  assert.equal(xhr.bodyEncoding, 'text');
  assert.deepEqual(JSON.parse(xhr.body), { error: 'queue', start_url: inst.start_urls[0].start_url });
  assert.equal(value(xhr.headers, 'content-type'), 'application/json');
  assert.equal((await handler(viewerRequest('/internal/metrics'))).status, '403');
  const bot = { 'User-Agent': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' };
  assert.equal((await handler(viewerRequest('/products/red-shoe', { headers: bot }))).uri, '/products/red-shoe');
  assert.equal((await handler(viewerRequest('/checkout/pay', { headers: bot }))).status, '302');
});

test('the /_anteroom/* function strips the prefix for the Anteroom origin', async () => {
  const { anteroomHandler } = setup(inst);
  const event = viewerRequest('/_anteroom/gate/start', { querystring: 'rd=%2Fcheckout' });
  const out = await anteroomHandler(event);
  assert.equal(out.uri, '/gate/start');
  assert.equal(out.querystring, 'rd=%2Fcheckout');
  assert.equal((await anteroomHandler(viewerRequest('/_anteroom'))).uri, '/');
  assert.equal((await anteroomHandler(viewerRequest('/elsewhere'))).status, '404');
});

test('build.mjs bundles the configuration; the package works as deployed', async () => {
  const realNow = Date.now;
  const out = mkdtempSync(join(tmpdir(), 'anteroom-lambda-'));
  try {
    build(edgeConfig(inst, { jwks: inst.jwks }), out);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'lambda-edge', 'config.json'), 'utf8')).issuer, inst.issuer);
    // The package's clock is the real one: set it to the fixture's.
    Date.now = () => inst.now_ms;
    const pkg = await import(pathToFileURL(join(out, 'lambda-edge', 'index.mjs')).href);
    const valid = token(inst, 'valid');
    const pass = await pkg.handler(viewerRequest(valid.path, { cookies: [`${inst.cookie_name}_launch=${valid.token}`] }));
    assert.equal(value(pass.headers, 'x-anteroom-sub'), valid.sub);
    assert.equal((await pkg.handler(viewerRequest(valid.path))).status, '302');
    assert.equal((await pkg.anteroomHandler(viewerRequest('/_anteroom/keys'))).uri, '/keys');
  } finally {
    Date.now = realNow;
    rmSync(out, { recursive: true, force: true });
  }
  assert.throws(() => build({ issuer: inst.issuer, gate: { rules: [] } }, join(tmpdir(), 'never')), /gate.rules: no rule queues visitors/);
});
