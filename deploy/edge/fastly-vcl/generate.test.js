// The Fastly VCL generator: the committed example is what it writes for
// ../config.example.json, it takes only the documents the other
// connectors take, and it refuses what byte-mode PCRE would read
// differently from Go, naming the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generate } from './generate.mjs';

const example = JSON.parse(readFileSync(new URL('../config.example.json', import.meta.url), 'utf8'));
const withRule = (rule) => ({
  issuer: 'https://shop.example.com/_anteroom',
  gate: { rules: [rule, { path_prefix: '/', action: 'queue', room: 'launch' }] },
});

test('anteroom.vcl is generated from config.example.json', () => {
  assert.equal(readFileSync(new URL('anteroom.vcl', import.meta.url), 'utf8'), generate(example));
});

test('the configuration is checked as every connector checks it', () => {
  assert.throws(() => generate({ ...example, rooms: { launch: { on_error: 'sometimes' } } }), /rooms\.launch\.on_error/);
  assert.throws(() => generate({ ...example, extra: 1 }), /extra: unknown key/);
});

test('on_error per room picks the fail-open branch', () => {
  const vcl = generate(example);
  assert.match(vcl, /if \(var\.room == \{"launch"\}\) \{\n {4}set var\.token = req\.http\.Cookie:anteroom_gate_launch;\n {4}set var\.fail_open = true;/);
  assert.match(vcl, /if \(var\.room == \{"checkout"\}\) \{\n {4}set var\.token = req\.http\.Cookie:anteroom_gate_checkout;\n {4}set var\.fail_open = false;/);
});

test('non-ASCII \\x{…} becomes its UTF-8 bytes; \\p and non-ASCII in a class are refused', () => {
  assert.match(generate(withRule({ path_regex: '^/r/\\x{FFFD}$', action: 'block' })), /\^\/r\/\(\?:\\xef\\xbf\\xbd\)\$/);
  assert.throws(() => generate(withRule({ path_regex: '^/\\p{L}+$', action: 'block' })), /gate\.rules\[0\]\.path_regex: .*\\p/);
  assert.throws(() => generate(withRule({ path_regex: '^/[\\x{e9}]$', action: 'bypass' })), /gate\.rules\[0\]\.path_regex: a non-ASCII character in a class/);
  assert.throws(() => generate(withRule({ header: { name: 'X-A', regex: 'é' }, action: 'block' })), /gate\.rules\[0\]\.header\.regex: non-ASCII/);
});

test('names VCL cannot write are refused with their key', () => {
  assert.throws(() => generate(withRule({ header: { name: "X-A'b", value: '1' }, action: 'block' })), /gate\.rules\[0\]\.header\.name/);
  assert.throws(() => generate(withRule({ path: '/a"}b', action: 'block' })), /cannot write/);
});
