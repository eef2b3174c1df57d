// The protection rules, as Anteroom's Go gate applies them (gate/rules.go):
// rules in order, the first that matches decides, and a request matching
// none bypasses. This is a line-for-line port; gate/testdata/rules.json
// holds the cases both implementations must pass, and the fixture that
// e2e's edge test writes adds Go's decisions for generated
// requests, so that the two cannot drift apart unnoticed.
//
// Every request field is a byte string (see bytes.js), as in Go.

import { asciiLower, equalFold, goDecode, hasPrefixFold, utf8Bytes } from './bytes.js';
import { GOOD_BOTS } from './bots.js';
import { RegexError, compile as compileRegex } from './regex.js';

/** ConfigError lists every problem of a configuration, one per line, each naming its key. */
export class ConfigError extends Error {
  /** @param {string[]} problems */
  constructor(problems) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

const ACTIONS = ['bypass', 'queue', 'block'];
const GOOD_BOTS_NAME = 'good_bots';
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOSTNAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** isToken reports whether s is an HTTP token, which is also a valid cookie name. */
export function isToken(s) {
  return typeof s === 'string' && TCHAR.test(s);
}

function isHostname(s) {
  return s.length <= 253 && HOSTNAME.test(s);
}

/**
 * Problems collects configuration errors with their key paths.
 */
export class Problems {
  constructor() {
    /** @type {string[]} */
    this.list = [];
  }

  add(key, msg) {
    this.list.push(`${key}: ${msg}`);
  }

  /** object checks that v is a plain object with only known keys. */
  object(key, v, known) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      this.add(key, 'must be an object');
      return false;
    }
    for (const k of Object.keys(v)) {
      if (!known.includes(k)) this.add(`${key}.${k}`, 'unknown key');
    }
    return true;
  }

  string(key, v) {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') {
      this.add(key, 'must be a string');
      return '';
    }
    return v;
  }

  throwIfAny() {
    if (this.list.length > 0) throw new ConfigError(this.list);
  }
}

/**
 * validateGate checks a gate configuration (Anteroom's gate: section, as
 * JSON) the way config.Gate.Validate does, and also that every regular
 * expression can be used at the edge. It returns the configuration with
 * defaults applied.
 * @param {unknown} g
 * @param {Problems} p
 * @param {string} key
 */
export function validateGate(g, p, key = 'gate') {
  const out = { cookie: { name: 'anteroom_gate' }, dynamicPaths: [], rules: [] };
  if (!p.object(key, g, ['cookie', 'dynamic_paths', 'rules'])) return out;
  if (g.cookie !== undefined && p.object(`${key}.cookie`, g.cookie, ['name', 'domain', 'path', 'secure'])) {
    // Only the name matters at the edge; the others are accepted so that
    // Anteroom's gate section can be used as it is.
    const name = p.string(`${key}.cookie.name`, g.cookie.name);
    if (name !== '') {
      if (!isToken(name)) p.add(`${key}.cookie.name`, `must be a cookie name (RFC 6265 token characters), got ${JSON.stringify(name)}`);
      out.cookie.name = name;
    }
  }
  if (g.dynamic_paths !== undefined) {
    if (!Array.isArray(g.dynamic_paths)) p.add(`${key}.dynamic_paths`, 'must be a list');
    else {
      g.dynamic_paths.forEach((d, i) => {
        const k = `${key}.dynamic_paths[${i}]`;
        const s = p.string(k, d);
        if (!s.startsWith('/')) p.add(k, `must start with /, got ${JSON.stringify(s)}`);
        out.dynamicPaths.push(s);
      });
    }
  }
  if (!Array.isArray(g.rules)) p.add(`${key}.rules`, 'must be a list');
  else g.rules.forEach((r, i) => out.rules.push(validateRule(r, p, `${key}.rules[${i}]`)));
  if (!out.rules.some((r) => r.action === 'queue')) p.add(`${key}.rules`, 'no rule queues visitors');
  return out;
}

const RULE_KEYS = ['path', 'path_prefix', 'path_regex', 'host', 'methods', 'header', 'cookie', 'user_agent', 'action', 'room'];

function validateRule(r, p, key) {
  const out = {};
  if (!p.object(key, r, RULE_KEYS)) return out;
  for (const k of ['path', 'path_prefix', 'path_regex', 'host', 'user_agent', 'action', 'room']) {
    out[k] = p.string(`${key}.${k}`, r[k]);
  }
  out.methods = [];
  if (r.methods !== undefined && r.methods !== null) {
    if (!Array.isArray(r.methods)) p.add(`${key}.methods`, 'must be a list');
    else out.methods = r.methods.map((m, i) => p.string(`${key}.methods[${i}]`, m));
  }
  if (!out.path && !out.path_prefix && !out.path_regex && !out.host && out.methods.length === 0 &&
      r.header == null && r.cookie == null && !out.user_agent) {
    p.add(key, 'needs at least one matcher (path, path_prefix, path_regex, host, methods, header, cookie, user_agent); a catch-all is path_prefix: /');
  }
  if (out.path && !out.path.startsWith('/')) p.add(`${key}.path`, `must start with /, got ${JSON.stringify(out.path)}`);
  if (out.path_prefix && !out.path_prefix.startsWith('/')) p.add(`${key}.path_prefix`, `must start with /, got ${JSON.stringify(out.path_prefix)}`);
  const foldCase = out.action !== 'bypass';
  if (out.path_regex) out.pathRegex = regex(p, `${key}.path_regex`, out.path_regex, foldCase);
  if (out.host) {
    const h = out.host.startsWith('*.') ? out.host.slice(2) : out.host;
    if (!isHostname(h)) p.add(`${key}.host`, `must be a host name such as shop.example.com, or *.example.com for its subdomains, got ${JSON.stringify(out.host)}`);
  }
  out.methods.forEach((m, i) => {
    if (!isToken(m)) p.add(`${key}.methods[${i}]`, `must be an HTTP method such as GET, got ${JSON.stringify(m)}`);
  });
  if (r.header != null) out.header = nameValue(r.header, p, `${key}.header`, true);
  if (r.cookie != null) out.cookie = nameValue(r.cookie, p, `${key}.cookie`, false);
  if (out.user_agent && out.user_agent !== GOOD_BOTS_NAME) {
    out.userAgentRegex = regex(p, `${key}.user_agent`, out.user_agent, true);
  }
  switch (out.action) {
    case 'queue':
      if (!out.room) p.add(`${key}.room`, 'required for action queue');
      break;
    case 'bypass':
    case 'block':
      if (out.room) p.add(`${key}.room`, `only allowed with action queue, got action ${out.action}`);
      break;
    case '':
      p.add(`${key}.action`, 'required (queue, bypass or block)');
      break;
    default:
      p.add(`${key}.action`, `must be one of queue, bypass, block, got ${JSON.stringify(out.action)}`);
  }
  return out;
}

function nameValue(nv, p, key, header) {
  const out = { name: '', value: '' };
  if (!p.object(key, nv, ['name', 'value', 'regex'])) return out;
  out.name = p.string(`${key}.name`, nv.name);
  out.value = p.string(`${key}.value`, nv.value);
  const re = p.string(`${key}.regex`, nv.regex);
  if (out.name === '') p.add(`${key}.name`, 'required');
  else if (!isToken(out.name)) {
    p.add(`${key}.name`, header
      ? `must be an HTTP header name (token characters), got ${JSON.stringify(out.name)}`
      : `must be a cookie name (RFC 6265 token characters), got ${JSON.stringify(out.name)}`);
  } else if (header && out.name.toLowerCase() === 'user-agent') {
    p.add(`${key}.name`, 'use user_agent to match the user agent (it never applies on dynamic paths)');
  }
  if (out.value && re) p.add(key, 'value and regex are mutually exclusive');
  if (re) out.regex = regex(p, `${key}.regex`, re, false);
  return out;
}

function regex(p, key, pattern, foldCase) {
  try {
    return compileRegex(pattern, { foldCase });
  } catch (err) {
    if (err instanceof RegexError) {
      p.add(key, `${err.message}: \`${pattern}\``);
      return undefined;
    }
    throw err;
  }
}

/**
 * Rules are compiled protection rules.
 */
export class Rules {
  /**
   * @param {ReturnType<typeof validateGate>} g a validated gate configuration
   */
  constructor(g) {
    this.dynamic = g.dynamicPaths.map(utf8Bytes);
    this.rules = g.rules.map((r) => {
      const host = r.host ? utf8Bytes(r.host) : '';
      const wild = host.startsWith('*');
      return {
        action: r.action,
        room: r.room || '',
        path: utf8Bytes(r.path || ''),
        pathPrefix: utf8Bytes(r.path_prefix || ''),
        pathRegex: r.pathRegex,
        host: wild ? '' : host,
        hostSuffix: wild ? host.slice(1) : '',
        methods: (r.methods || []).map((m) => m.toUpperCase()),
        header: r.header && valueMatcher(r.header),
        cookie: r.cookie && valueMatcher(r.cookie),
        goodBots: r.user_agent === GOOD_BOTS_NAME,
        userAgent: r.userAgentRegex,
        // Queue and block rules match paths ignoring ASCII case; bypass
        // rules match them exactly (the conservative side).
        foldCase: r.action !== 'bypass',
      };
    });
  }

  /**
   * decide returns the action of the first rule that matches r, or bypass
   * with rule -1 when none does. See gate.Rules.Decide for the treatment
   * of paths that are not in canonical form.
   * @param {{host: string, method: string, path: string, userAgent: string,
   *   header?: (name: string) => string, cookie?: (name: string) => (string|undefined)}} r
   * @returns {{action: 'bypass'|'queue'|'block', room: string, rule: number}}
   */
  decide(r) {
    const p = preparePath(r.path);
    const host = requestHost(r.host);
    let dynamic;
    for (let i = 0; i < this.rules.length; i++) {
      const ru = this.rules[i];
      if (ru.action === 'bypass' && !p.canonical) continue;
      if (ru.goodBots || ru.userAgent) {
        if (dynamic === undefined) {
          dynamic = this.underDynamic(p.decoded) || (!p.canonical && this.underDynamic(p.clean));
        }
        if (dynamic) continue;
      }
      if (matches(ru, r, p, host)) return { action: ru.action, room: ru.room, rule: i };
    }
    return { action: 'bypass', room: '', rule: -1 };
  }

  underDynamic(path) {
    return this.dynamic.some((d) => hasPrefixFold(path, d));
  }
}

function valueMatcher(nv) {
  return { name: nv.name, value: utf8Bytes(nv.value || ''), regex: nv.regex };
}

function matchValue(m, v) {
  if (m.regex) return m.regex.test(goDecode(v));
  if (m.value !== '') return v === m.value;
  return true;
}

function matches(ru, r, p, host) {
  if (ru.methods.length > 0 && !ru.methods.some((m) => equalFold(r.method, m))) return false;
  if (ru.host !== '' && !equalFold(host, ru.host)) return false;
  if (ru.hostSuffix !== '' && !matchWildcard(host, ru.hostSuffix)) return false;
  if ((ru.path !== '' || ru.pathPrefix !== '' || ru.pathRegex) &&
      !(matchPathForm(ru, p.decoded) || (!p.canonical && matchPathForm(ru, p.clean)))) {
    return false;
  }
  if (ru.header) {
    const v = r.header ? r.header(ru.header.name) : '';
    if (!v || !matchValue(ru.header, v)) return false;
  }
  if (ru.cookie) {
    const v = r.cookie ? r.cookie(ru.cookie.name) : undefined;
    if (v === undefined || !matchValue(ru.cookie, v)) return false;
  }
  if (ru.goodBots && !isGoodBot(r.userAgent)) return false;
  if (ru.userAgent && !ru.userAgent.test(goDecode(r.userAgent))) return false;
  return true;
}

function matchPathForm(ru, path) {
  if (ru.path !== '' && path !== ru.path && !(ru.foldCase && equalFold(path, ru.path))) return false;
  if (ru.pathPrefix !== '' && !path.startsWith(ru.pathPrefix) && !(ru.foldCase && hasPrefixFold(path, ru.pathPrefix))) return false;
  if (ru.pathRegex && !ru.pathRegex.test(goDecode(path))) return false;
  return true;
}

/**
 * isGoodBot reports whether a user agent names one of the built-in
 * crawlers, as a substring ignoring ASCII case. Anyone can claim to be
 * one, which is why user-agent rules never apply on dynamic paths.
 * @param {string} userAgent
 */
export function isGoodBot(userAgent) {
  const ua = asciiLower(userAgent);
  return GOOD_BOTS.some((name) => ua.includes(name));
}

function matchWildcard(host, suffix) {
  const n = host.length - suffix.length;
  return n > 0 && host[0] !== '.' && equalFold(host.slice(n), suffix);
}

/**
 * requestHost returns a Host header's host without a port or a trailing dot.
 * @param {string} h
 */
export function requestHost(h) {
  if (h.startsWith('[')) {
    const i = h.indexOf(']');
    return i >= 0 ? h.slice(0, i + 1) : h;
  }
  const i = h.lastIndexOf(':');
  if (i >= 0 && /^[0-9]*$/.test(h.slice(i + 1))) h = h.slice(0, i);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/**
 * preparePath strips the query from a request target, decodes it once and
 * judges whether it is canonical (gate.preparePath; gate.Rules.Decide lists
 * exactly what makes a path non-canonical).
 * @param {string} target
 */
export function preparePath(target) {
  const q = target.indexOf('?');
  if (q >= 0) target = target.slice(0, q);
  let canonical = true;
  if (!target.startsWith('/')) {
    canonical = false;
    const i = target.indexOf('://');
    if (i >= 0) {
      const rest = target.slice(i + 3);
      const j = rest.indexOf('/');
      target = j >= 0 ? rest.slice(j) : '/';
    } else {
      target = '/' + target;
    }
  }
  // A raw # starts a fragment to every URL parser: the normalised form
  // ends there, the form as sent keeps it.
  let beforeFragment = target;
  const h = target.indexOf('#');
  if (h >= 0) {
    canonical = false;
    beforeFragment = target.slice(0, h);
  }
  const { out: decoded, ok, slash } = unescape(target);
  if (!ok || slash || !isCanonical(decoded)) canonical = false;
  if (canonical) return { decoded, clean: decoded, canonical };
  const cut = beforeFragment === target ? decoded : unescape(beforeFragment).out;
  return { decoded, clean: cleanPath(cut), canonical };
}

function unescape(s) {
  if (!s.includes('%')) return { out: s, ok: true, slash: false };
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && (i + 2 >= s.length || !HEX.test(s.slice(i + 1, i + 3)))) {
      return { out: s, ok: false, slash: false };
    }
  }
  let out = '';
  let slash = false;
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '%') {
      out += s[i];
      continue;
    }
    const c = parseInt(s.slice(i + 1, i + 3), 16);
    if (c === 0x2f || c === 0x5c) slash = true;
    out += String.fromCharCode(c);
    i += 2;
  }
  return { out, ok: true, slash };
}

function isCanonical(p) {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    // Controls; a backslash; a ;path parameter.
    if (c < 0x20 || c === 0x7f || c === 0x5c || c === 0x3b) return false;
    if (c === 0x25 && i + 2 < p.length && HEX.test(p.slice(i + 1, i + 3))) return false; // double-encoded
  }
  const segs = p.slice(1).split('/');
  for (let k = 0; k < segs.length; k++) {
    const seg = segs[k];
    if (seg === '.' || seg === '..') return false;
    if (seg === '' && k < segs.length - 1) return false; // an empty segment; a trailing / is fine
  }
  return true;
}

// cleanPath is gate.cleanPath: \ is a separator, every segment's
// ;parameters go, empty and . segments go, .. removes the one before.
function cleanPath(p) {
  p = p.replaceAll('\\', '/');
  const segs = [];
  let trailing = false;
  for (const seg of p.split('/').slice(1)) {
    const name = seg.split(';')[0];
    if (name === '' || name === '.') trailing = true;
    else if (name === '..') {
      segs.pop();
      trailing = true;
    } else {
      segs.push(name);
      trailing = false;
    }
  }
  if (segs.length === 0) return '/';
  return '/' + segs.join('/') + (trailing ? '/' : '');
}

/**
 * parseCookies reads Cookie header lines as Go's net/http does
 * (readCookies): trimmed name=value pairs split on ;, names that are
 * tokens, values without invalid bytes (surrounding quotes removed). More
 * than 3000 cookies in all means none, as in Go.
 * @param {string[]} lines
 * @returns {Array<[string, string]>}
 */
export function parseCookies(lines) {
  let count = 0;
  for (const line of lines) count += line.split(';').length;
  if (count > 3000) return [];
  const out = [];
  const trim = (s) => s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  for (const line of lines) {
    for (let part of trim(line).split(';')) {
      part = trim(part);
      if (part === '') continue;
      const eq = part.indexOf('=');
      const name = trim(eq >= 0 ? part.slice(0, eq) : part);
      let val = eq >= 0 ? part.slice(eq + 1) : '';
      if (!isToken(name)) continue;
      if (val.length > 1 && val[0] === '"' && val[val.length - 1] === '"') val = val.slice(1, -1);
      // Go's validCookieValueByte: printable ASCII but " ; and backslash.
      if (!/^[\x20\x21\x23-\x3a\x3c-\x5b\x5d-\x7e]*$/.test(val)) continue;
      out.push([name, val]);
    }
  }
  return out;
}

/**
 * cookieJar returns a lookup of the first cookie of each name, as Go's
 * Request.Cookie gives it.
 * @param {string[]} lines
 * @returns {(name: string) => (string|undefined)}
 */
export function cookieJar(lines) {
  const cookies = parseCookies(lines);
  return (name) => cookies.find(([n]) => n === name)?.[1];
}

export { ACTIONS };
