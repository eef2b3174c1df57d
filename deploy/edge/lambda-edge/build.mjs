#!/usr/bin/env node
// build.mjs CONFIG.json OUTDIR: lays out a Lambda@Edge package in OUTDIR
// with the configuration bundled (Lambda@Edge has no environment
// variables): OUTDIR/lambda-edge/index.mjs, OUTDIR/lambda-edge/config.json
// and OUTDIR/core/. The configuration is checked first; a bad one stops
// the build with every problem listed. Zip OUTDIR's contents and set the
// function's handler to lambda-edge/index.handler (or
// lambda-edge/index.anteroomHandler).

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateConfig } from '../core/index.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * build writes the package for config into out.
 * @param {unknown} config
 * @param {string} out
 */
export function build(config, out) {
  validateConfig(config);
  mkdirSync(join(out, 'lambda-edge'), { recursive: true });
  mkdirSync(join(out, 'core'), { recursive: true });
  copyFileSync(join(here, 'index.mjs'), join(out, 'lambda-edge', 'index.mjs'));
  writeFileSync(join(out, 'lambda-edge', 'config.json'), JSON.stringify(config));
  for (const f of readdirSync(join(here, '..', 'core'))) {
    if (f.endsWith('.js') && !f.endsWith('.test.js')) copyFileSync(join(here, '..', 'core', f), join(out, 'core', f));
  }
  // Lambda's Node.js reads .js as CommonJS unless told otherwise.
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module' }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [configPath, out] = process.argv.slice(2);
  if (!configPath || !out) {
    console.error('usage: node build.mjs CONFIG.json OUTDIR');
    process.exit(2);
  }
  try {
    build(JSON.parse(readFileSync(configPath, 'utf8')), out);
  } catch (err) {
    console.error(`${configPath}:\n${err.message}`);
    process.exit(1);
  }
  console.log(`wrote ${out}: zip its contents; handler lambda-edge/index.handler (site) and lambda-edge/index.anteroomHandler (/_anteroom/*)`);
}
