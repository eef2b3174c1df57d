// Verifying Anteroom's gate session token: a compact JWS (RS256 or
// ES256) signed with Anteroom's own key, checked against the public JWKS
// with WebCrypto alone. It follows gate/session.go's verifyJWT and the
// checks of Gate.session: the algorithm is pinned to the key's own, so a
// token that names another (none, HS256 keyed with the public key) fails.

const B64URL = /^[A-Za-z0-9_-]*$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

/**
 * b64urlDecode decodes unpadded base64url, or returns null when s is not
 * that (padding, other characters, an impossible length).
 * @param {string} s
 * @returns {Uint8Array|null}
 */
export function b64urlDecode(s) {
  if (!B64URL.test(s) || s.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (const c of s) {
    acc = (acc << 6) | DECODE.get(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/**
 * b64urlEncode encodes bytes as unpadded base64url.
 * @param {Uint8Array} bytes
 */
export function b64urlEncode(bytes) {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (6 - bits)) & 63];
  return out;
}

const ALGS = {
  RS256: { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, verify: { name: 'RSASSA-PKCS1-v1_5' } },
  ES256: { import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' } },
};

/**
 * importJWK turns one public JWK of a JWKS into a verification key. Only
 * what Anteroom publishes is accepted: RS256 with an RSA key of at least
 * 2048 bits, or ES256 with a P-256 key; use "sig" when use is given.
 * @param {any} jwk
 * @returns {Promise<{kid: string, alg: 'RS256'|'ES256', key: CryptoKey}>}
 */
export async function importJWK(jwk) {
  if (jwk === null || typeof jwk !== 'object') throw new Error('key is not an object');
  const { kid, alg, kty, use } = jwk;
  if (typeof kid !== 'string' || kid === '') throw new Error('key has no kid');
  if (use !== undefined && use !== 'sig') throw new Error(`key ${kid}: use is ${JSON.stringify(use)}, not sig`);
  let material;
  if (alg === 'RS256' && kty === 'RSA') {
    const n = typeof jwk.n === 'string' && b64urlDecode(jwk.n);
    if (!n || !b64urlDecode(jwk.e ?? '')) throw new Error(`key ${kid}: bad RSA parameters`);
    const bits = (n.length - (n[0] === 0 ? 1 : 0)) * 8;
    if (bits < 2048) throw new Error(`key ${kid}: RSA key of ${bits} bits, want at least 2048`);
    material = { kty, n: jwk.n, e: jwk.e };
  } else if (alg === 'ES256' && kty === 'EC' && jwk.crv === 'P-256') {
    material = { kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  } else {
    throw new Error(`key ${kid}: unsupported alg ${JSON.stringify(alg)} with kty ${JSON.stringify(kty)}`);
  }
  const key = await crypto.subtle.importKey('jwk', material, ALGS[alg].import, false, ['verify']);
  return { kid, alg, key };
}

const utf8 = new TextDecoder();
const ascii = new TextEncoder();

/** TokenError is a token that is not a valid gate session; its message says why, for logs. */
export class TokenError extends Error {}

/**
 * verifySignature checks a compact JWS and returns its header and claims.
 * lookup(kid) returns the published key with that id (or null); it may
 * throw when no key set can be had, which propagates.
 * @param {string} token
 * @param {(kid: string) => Promise<{alg: string, key: CryptoKey}|null>} lookup
 * @returns {Promise<{kid: string, claims: Record<string, unknown>}>}
 */
export async function verifySignature(token, lookup) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('not a compact JWS');
  const [h, p, s] = parts.map(b64urlDecode);
  if (!h || !p || !s) throw new TokenError('bad base64url');
  let header;
  let claims;
  try {
    header = JSON.parse(utf8.decode(h));
    claims = JSON.parse(utf8.decode(p));
  } catch {
    throw new TokenError('bad JSON');
  }
  if (!isObject(header) || !isObject(claims)) throw new TokenError('header or claims not an object');
  if ('crit' in header) throw new TokenError('critical header');
  const { alg, kid } = header;
  if (alg !== 'RS256' && alg !== 'ES256') throw new TokenError(`algorithm ${JSON.stringify(alg)} not allowed`);
  if (typeof kid !== 'string') throw new TokenError('no kid');
  const k = await lookup(kid);
  if (!k) throw new TokenError(`unknown kid ${JSON.stringify(kid)}`);
  if (k.alg !== alg) throw new TokenError(`token says ${alg}, key ${kid} is ${k.alg}`);
  if (alg === 'ES256' && s.length !== 64) throw new TokenError('ES256 signature is not 64 bytes (r||s)');
  let ok = false;
  try {
    ok = await crypto.subtle.verify(ALGS[alg].verify, k.key, s, ascii.encode(`${parts[0]}.${parts[1]}`));
  } catch {
    // A signature WebCrypto cannot even check is as bad as a wrong one.
  }
  if (!ok) throw new TokenError('bad signature');
  return { kid, claims };
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// MAX_NUMERIC_DATE is go-jose's bound on a NumericDate (2^62 seconds).
const MAX_NUMERIC_DATE = 2 ** 62;

// numericDate reads a NumericDate claim as go-jose does: a JSON number,
// truncated to whole seconds; null or absent is undefined.
function numericDate(claims, name) {
  const v = claims[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) >= MAX_NUMERIC_DATE) {
    throw new TokenError(`${name} is not a NumericDate`);
  }
  return Math.trunc(v);
}

function optionalString(claims, name) {
  const v = claims[name];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new TokenError(`${name} is not a string`);
  return v;
}

/** LEEWAY_MS is the clock skew allowed for nbf and iat (not for exp), as in the Go gate. */
export const LEEWAY_MS = 60_000;

/**
 * checkClaims applies the Go gate's checks to a verified token's claims:
 * the issuer, the audience anteroom-gate, exp present and in the future
 * (no leeway: a session never outlives the visitor's), nbf and iat not
 * more than a minute ahead, the room, and a subject. It returns what the
 * origin is told of the visitor.
 * @param {Record<string, unknown>} claims
 * @param {{issuer: string, audience: string, room: string, nowMs: number}} want
 * @returns {{sub: string, room: string, position: number, exp: number}}
 */
export function checkClaims(claims, want) {
  const iss = optionalString(claims, 'iss');
  const sub = optionalString(claims, 'sub');
  const room = optionalString(claims, 'room');
  optionalString(claims, 'jti');
  let aud = claims.aud ?? [];
  if (typeof aud === 'string') aud = [aud];
  if (!Array.isArray(aud) || aud.some((a) => typeof a !== 'string')) throw new TokenError('aud is not a string or a list of strings');
  const exp = numericDate(claims, 'exp');
  const nbf = numericDate(claims, 'nbf');
  const iat = numericDate(claims, 'iat');
  let position = 0;
  if (claims.queue_position !== undefined && claims.queue_position !== null) {
    position = claims.queue_position;
    if (!Number.isSafeInteger(position)) throw new TokenError('queue_position is not an integer');
  }
  if (iss !== want.issuer) throw new TokenError('wrong issuer');
  if (!aud.includes(want.audience)) throw new TokenError('wrong audience');
  if (nbf !== undefined && want.nowMs + LEEWAY_MS < nbf * 1000) throw new TokenError('not valid yet');
  if (exp === undefined) throw new TokenError('no exp');
  if (!(want.nowMs < exp * 1000)) throw new TokenError('expired');
  if (iat !== undefined && want.nowMs + LEEWAY_MS < iat * 1000) throw new TokenError('issued in the future');
  if (room !== want.room) throw new TokenError('wrong room');
  if (sub === '') throw new TokenError('no subject');
  return { sub, room, position, exp };
}
