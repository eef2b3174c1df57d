#!/usr/bin/env node
// generate.mjs CONFIG.json > anteroom.vcl: writes the Fastly VCL connector
// for an edge configuration, the same JSON document the JavaScript
// connectors read. The configuration is checked by validateConfig from
// ../core, so the four connectors accept exactly the same documents and
// apply the same rules; the rules become VCL conditions in order, first
// match wins. Exit code 0 when written, 1 for a configuration the VCL
// cannot express, 2 for a usage error.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, validateConfig } from '../core/index.js';
import { GOOD_BOTS } from '../core/bots.js';

/** lit writes s as a VCL long string, which takes no %-escapes. */
function lit(s) {
  if (s.includes('"}') || /[\x00-\x1f\x7f]/.test(s)) throw new ConfigError([`cannot write ${JSON.stringify(s)} as a VCL string`]);
  return `{"${s}"}`;
}

function reQuote(s) {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

// asciiLower lowers ASCII letters only, as Go's EqualFold does for the
// paths the rules compare (std.tolower is ASCII only as well).
const asciiLower = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/**
 * pcre writes a Go (RE2) pattern for Fastly's PCRE, which reads the
 * subject as bytes: \x{…} above 7F becomes its UTF-8 bytes; what byte
 * PCRE cannot read as Go does (\p, \P, POSIX classes, non-ASCII in a
 * class) is refused, naming the rule.
 */
function pcre(pattern, key) {
  if (/\\[pP]|\[\[:/.test(pattern)) throw new ConfigError([`${key}: \\p, \\P and POSIX classes are not written to VCL: \`${pattern}\``]);
  let inClass = false;
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') {
      const m = /^\\x\{([0-9A-Fa-f]+)\}/.exec(pattern.slice(i));
      if (m && parseInt(m[1], 16) > 0x7f) {
        if (inClass) throw new ConfigError([`${key}: a non-ASCII character in a class is not written to VCL: \`${pattern}\``]);
        out += '(?:' + [...Buffer.from(String.fromCodePoint(parseInt(m[1], 16)))].map((b) => '\\x' + b.toString(16).padStart(2, '0')).join('') + ')';
        i += m[0].length - 1;
        continue;
      }
      out += ch + (pattern[i + 1] ?? '');
      i++;
      continue;
    }
    if (ch.charCodeAt(0) > 0x7f) throw new ConfigError([`${key}: non-ASCII characters are not written to VCL; use \\x{…}: \`${pattern}\``]);
    if (ch === '[') inClass = true;
    else if (ch === ']') inClass = false;
    out += ch;
  }
  return out;
}

/** pathCond is a rule's path matchers applied to the path in variable v. */
function pathCond(r, v, fold, key) {
  const c = [];
  if (r.path) c.push(fold ? `std.tolower(${v}) == ${lit(asciiLower(r.path))}` : `${v} == ${lit(r.path)}`);
  if (r.path_prefix) c.push(fold ? `std.prefixof(std.tolower(${v}), ${lit(asciiLower(r.path_prefix))})` : `std.prefixof(${v}, ${lit(r.path_prefix)})`);
  if (r.path_regex) c.push(`${v} ~ ${lit((fold ? '(?i)' : '') + pcre(r.path_regex, `${key}.path_regex`))}`);
  return c.join(' && ');
}

function headerName(name, key) {
  if (!/^[A-Za-z0-9-]+$/.test(name)) throw new ConfigError([`${key}: VCL names headers with letters, digits and - only, got ${JSON.stringify(name)}`]);
  return name;
}

/**
 * rulesVCL returns the statements that set var.action and var.room from
 * the rules, for the locals anteroom_recv declares.
 */
function rulesVCL(c, raw) {
  const out = [];
  const dyn = c.gate.dynamicPaths.map((d) => `std.prefixof(std.tolower(var.decoded), ${lit(asciiLower(d))}) || (!var.canonical && std.prefixof(std.tolower(var.clean), ${lit(asciiLower(d))}))`);
  if (dyn.length) out.push(`  if (${dyn.map((d) => `(${d})`).join('\n      || ')}) {\n    set var.dynamic = true;\n  }`);
  c.gate.rules.forEach((r, i) => {
    const key = `gate.rules[${i}]`;
    const hr = raw.gate.rules[i].header;
    const cr = raw.gate.rules[i].cookie;
    const fold = r.action !== 'bypass';
    const cond = ['var.action == ""'];
    if (r.action === 'bypass') cond.push('var.canonical');
    if (r.user_agent) cond.push('!var.dynamic');
    if (r.methods.length) cond.push('(' + r.methods.map((m) => `std.toupper(req.method) == ${lit(m.toUpperCase())}`).join(' || ') + ')');
    if (r.host) {
      if (r.host.startsWith('*.')) cond.push(`var.host ~ ${lit('^[^.].*' + reQuote(asciiLower(r.host.slice(1))) + '$')}`);
      else cond.push(`var.host == ${lit(asciiLower(r.host))}`);
    }
    if (r.path || r.path_prefix || r.path_regex) {
      cond.push(`(${pathCond(r, 'var.decoded', fold, key)} || (!var.canonical && ${pathCond(r, 'var.clean', fold, key)}))`);
    }
    if (r.header) {
      const h = `req.http.${headerName(r.header.name, `${key}.header.name`)}`;
      cond.push(`std.strlen(${h}) > 0`);
      if (hr.regex) cond.push(`${h} ~ ${lit(pcre(hr.regex, `${key}.header.regex`))}`);
      else if (hr.value) cond.push(`${h} == ${lit(hr.value)}`);
    }
    if (r.cookie) {
      const name = r.cookie.name;
      if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new ConfigError([`${key}.cookie.name: VCL reads cookies named with letters, digits, _ and - only, got ${JSON.stringify(name)}`]);
      cond.push(`req.http.Cookie ~ ${lit(`(^|;)[ \\t]*${reQuote(name)}=`)}`);
      if (cr.regex) cond.push(`req.http.Cookie:${name} ~ ${lit(pcre(cr.regex, `${key}.cookie.regex`))}`);
      else if (cr.value) cond.push(`req.http.Cookie:${name} == ${lit(cr.value)}`);
    }
    if (r.user_agent === 'good_bots') cond.push(`std.tolower(var.ua) ~ ${lit(GOOD_BOTS.map(reQuote).join('|'))}`);
    else if (r.user_agent) cond.push(`var.ua ~ ${lit('(?i)' + pcre(r.user_agent, `${key}.user_agent`))}`);
    out.push(`  # ${key}: ${r.action}${r.room ? ' in ' + r.room : ''}`);
    out.push(`  if (${cond.join('\n      && ')}) {`);
    out.push(`    set var.action = "${r.action}";`);
    if (r.room) out.push(`    set var.room = ${lit(r.room)};`);
    out.push('  }');
  });
  out.push('  if (var.action == "") {\n    set var.action = "bypass";\n  }');
  return out.join('\n');
}

/** cookieVCL reads the room's gate cookie into var.token. */
function cookieVCL(c) {
  const rooms = [...new Set(c.gate.rules.filter((r) => r.action === 'queue').map((r) => r.room))];
  const name = c.gate.cookie.name;
  return rooms.map((room) => {
    const cookie = `${name}_${room}`;
    if (!/^[A-Za-z0-9_-]+$/.test(cookie)) throw new ConfigError([`gate.cookie.name and room ${JSON.stringify(room)}: VCL reads cookies named with letters, digits, _ and - only, got ${JSON.stringify(cookie)}`]);
    const failOpen = c.rooms[room]?.failOpen ? 'true' : 'false';
    return `  if (var.room == ${lit(room)}) {\n    set var.token = req.http.Cookie:${cookie};\n    set var.fail_open = ${failOpen};\n  }`;
  }).join('\n');
}

/**
 * generate returns the custom VCL for an edge configuration; it throws a
 * ConfigError naming the key when the configuration is not valid or uses
 * something the VCL cannot express.
 * @param {unknown} config
 */
export function generate(config) {
  const c = validateConfig(config);
  const u = c.issuerURL;
  const prefix = u.pathname === '/' ? '' : u.pathname;
  const template = readFileSync(fileURLToPath(new URL('anteroom.template.vcl', import.meta.url)), 'utf8');
  const values = {
    ISSUER: lit(c.issuer),
    ISSUER_HOST: lit(u.hostname.toLowerCase()),
    PREFIX: lit(prefix),
    PREFIX_RE: lit(`^${reQuote(prefix)}(/|\\?|$)`),
    PREFIX_STRIP_RE: lit(`^${reQuote(prefix)}/?`),
    RULES: rulesVCL(c, config),
    COOKIES: cookieVCL(c),
  };
  return template.replace(/#@(\w+)@#|@(\w+)@/g, (m, a, b) => {
    const v = values[a ?? b];
    if (v === undefined) throw new Error(`template names unknown value ${m}`);
    return v;
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [path] = process.argv.slice(2);
  if (!path) {
    console.error('usage: node generate.mjs CONFIG.json > anteroom.vcl');
    process.exit(2);
  }
  try {
    process.stdout.write(generate(JSON.parse(readFileSync(path, 'utf8'))));
  } catch (err) {
    console.error(`${path}:\n${err.message}`);
    process.exit(1);
  }
}
