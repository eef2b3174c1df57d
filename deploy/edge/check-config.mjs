#!/usr/bin/env node
// check-config.mjs CONFIG.json: checks an edge configuration the way every
// connector does when it starts, and lists every problem with its key.
// Exit code 0 when it is valid, 1 when not, 2 for a usage error.

import { readFileSync } from 'node:fs';
import { validateConfig } from './core/index.js';

const [path] = process.argv.slice(2);
if (!path) {
  console.error('usage: node check-config.mjs CONFIG.json');
  process.exit(2);
}
try {
  const c = validateConfig(JSON.parse(readFileSync(path, 'utf8')));
  const rooms = [...new Set(c.gate.rules.filter((r) => r.action === 'queue').map((r) => r.room))];
  console.log(`${path}: valid; ${c.gate.rules.length} rules, rooms ${rooms.join(', ')}; JWKS ${c.jwks ? 'pinned' : `from ${c.jwksURL}`}`);
} catch (err) {
  console.error(`${path}:\n${err.message}`);
  process.exit(1);
}
