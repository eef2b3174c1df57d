// The example configuration is valid, and check-config says why a bad one is not.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

test('config.example.json is valid', () => {
  const out = execFileSync(process.execPath, [here('./check-config.mjs'), here('./config.example.json')], { encoding: 'utf8' });
  assert.match(out, /valid; 5 rules, rooms checkout, launch; JWKS from https:\/\/shop.example.com\/_anteroom\/keys/);
});

test('check-config lists every problem and exits 1', () => {
  const bad = join(mkdtempSync(join(tmpdir(), 'anteroom-config-')), 'bad.json');
  writeFileSync(bad, JSON.stringify({ issuer: 'https://shop.example.com/_anteroom', gate: { rules: [{ user_agent: '[[:alpha:]]', action: 'block' }] } }));
  const r = spawnSync(process.execPath, [here('./check-config.mjs'), bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /gate.rules\[0\].user_agent: POSIX classes such as \[\[:alpha:\]\] are not supported at the edge/);
  assert.match(r.stderr, /gate.rules: no rule queues visitors/);
});
