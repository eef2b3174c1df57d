// The rule matcher against the cases Go's gate is held to
// (gate/testdata/rules.json) and against Go's own decisions on generated
// requests (the fixture), so that the two implementations cannot drift.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, rulesTable } from '../testing/fixture.js';
import { ConfigError, Problems, Rules, cookieJar, parseCookies, validateGate } from './rules.js';
import { utf8Bytes } from './bytes.js';

function compile(gate) {
  const p = new Problems();
  const g = validateGate(gate, p);
  p.throwIfAny();
  return new Rules(g);
}

function lookup(map = {}) {
  return (name) => {
    for (const [k, v] of Object.entries(map)) if (k.toLowerCase() === name.toLowerCase()) return utf8Bytes(v);
    return '';
  };
}

// requestOf is a case of either table as the matcher's request. Strings
// in the JSON are text; Go matched their UTF-8 bytes.
function requestOf(c, method) {
  const cookies = c.cookies ?? {};
  return {
    host: utf8Bytes(c.host), method, path: utf8Bytes(c.path), userAgent: utf8Bytes(c.user_agent),
    header: lookup(c.headers),
    cookie: (name) => (Object.hasOwn(cookies, name) ? utf8Bytes(cookies[name]) : undefined),
  };
}

test('the shared rule table (gate/testdata/rules.json)', () => {
  const rules = compile(rulesTable.gate);
  assert.ok(rulesTable.cases.length >= 30);
  for (const c of rulesTable.cases) {
    // As in Go's TestSharedTable, a case without a method is a GET.
    const got = rules.decide(requestOf(c, c.method || 'GET'));
    assert.deepEqual({ action: got.action, room: got.room }, { action: c.want.action, room: c.want.room ?? '' }, c.name);
  }
});

test("Go's decisions on generated requests (fixture)", () => {
  const rules = compile(fixture.gate);
  assert.ok(fixture.decisions.length >= 1000, 'the fixture has too few decisions');
  const seen = new Set();
  for (const d of fixture.decisions) {
    const got = rules.decide(requestOf(d, d.method));
    const want = `${d.action} ${d.room ?? ''}`;
    seen.add(want);
    assert.equal(`${got.action} ${got.room}`, want, JSON.stringify(d));
  }
  // The generator must reach every outcome, or the comparison is weak.
  for (const want of ['bypass ', 'block ', 'queue launch', 'queue checkout']) assert.ok(seen.has(want), `no decision ${want}`);
});

test('cookies are read as Go reads them', () => {
  // Names are trimmed, values are not (Go's readCookies).
  assert.deepEqual(parseCookies(['a=1; b="2"; bad name=3; c=x\\y; d=ok', ' e = 5 ']), [['a', '1'], ['b', '2'], ['d', 'ok'], ['e', ' 5']]);
  const jar = cookieJar(['x=first', 'x=second']);
  assert.equal(jar('x'), 'first');
  assert.equal(jar('y'), undefined);
  assert.deepEqual(parseCookies([Array.from({ length: 3001 }, (_, i) => `c${i}=1`).join(';')]), []);
  assert.deepEqual(parseCookies(['novalue', 'v=a, b']), [['novalue', ''], ['v', 'a, b']]);
});

test('a gate that does not validate lists every problem with its key', () => {
  const bad = {
    dynamic_paths: ['login'],
    rules: [
      { path_regex: '(', action: 'bypass' },
      { user_agent: 'good_bots', action: 'bypass', room: 'launch' },
      { header: { name: 'User-Agent', value: 'x' }, action: 'block' },
      { path_regex: '\\pL', action: 'block' },
      { path: '/a', action: 'queue', typo: 1 },
    ],
  };
  assert.throws(() => compile(bad), (err) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.problems, [
      'gate.dynamic_paths[0]: must start with /, got "login"',
      'gate.rules[0].path_regex: missing closing ): `(`: `(`',
      'gate.rules[1].room: only allowed with action queue, got action bypass',
      'gate.rules[2].header.name: use user_agent to match the user agent (it never applies on dynamic paths)',
      'gate.rules[3].path_regex: Unicode classes (\\p, \\P) are not supported at the edge: `\\pL`',
      'gate.rules[4].typo: unknown key',
      'gate.rules[4].room: required for action queue',
    ]);
    return true;
  });
  assert.throws(() => compile({ rules: [{ path_prefix: '/', action: 'bypass' }] }), /gate.rules: no rule queues visitors/);
});
