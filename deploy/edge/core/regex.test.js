// Go's regular expressions, translated for the edge, against the answers
// Go's regexp gives (gate/testdata/regex.json, checked by gate/edge_test.go).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { regexTable } from '../testing/fixture.js';
import { RegexError, compile } from './regex.js';

test('translated patterns match what Go matches', () => {
  assert.ok(regexTable.cases.length >= 40);
  for (const c of regexTable.cases) {
    const re = compile(c.pattern, { foldCase: c.fold });
    for (const s of c.match) assert.ok(re.test(s), `${c.pattern} (fold ${c.fold}) should match ${JSON.stringify(s)}; translated ${re.source}`);
    for (const s of c.no_match) assert.ok(!re.test(s), `${c.pattern} (fold ${c.fold}) should not match ${JSON.stringify(s)}; translated ${re.source}`);
  }
});

test('what the edge cannot translate exactly is refused, not approximated', () => {
  for (const c of regexTable.edge_unsupported) {
    assert.throws(() => compile(c.pattern, { foldCase: c.fold }), RegexError, c.pattern);
  }
});

test('what Go refuses is refused', () => {
  for (const p of regexTable.invalid) assert.throws(() => compile(p), RegexError, p);
});
