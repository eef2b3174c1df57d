// Byte strings. Anteroom's Go gate matches rules on Go strings, which are
// bytes: a path is percent-decoded into bytes, compared byte by byte, and
// only regular expressions read those bytes as UTF-8. To decide exactly as
// Go does, the edge works on "byte strings" too: JavaScript strings whose
// every code unit is one byte (0-255), which is also what the Fetch API's
// Headers hold (header values are ByteStrings).

const encoder = new TextEncoder();

/**
 * utf8Bytes returns text (a configuration value, or a platform value given
 * as text) as a byte string of its UTF-8 encoding. ASCII is returned as is.
 * @param {string} s
 * @returns {string}
 */
export function utf8Bytes(s) {
  if (!/[^\x00-\x7f]/.test(s)) return s;
  let out = '';
  for (const b of encoder.encode(s)) out += String.fromCharCode(b);
  return out;
}

/**
 * platformBytes turns a value a platform hands over as a string into a byte
 * string: a string with a code unit above 0xFF is text and is UTF-8
 * encoded; any other string is taken as bytes already (Fetch headers are).
 * @param {string} s
 * @returns {string}
 */
export function platformBytes(s) {
  return /[^\x00-\xff]/.test(s) ? utf8Bytes(s) : s;
}

/**
 * goDecode reads a byte string as UTF-8 the way Go's regexp does
 * (utf8.DecodeRuneInString): every byte that does not start a valid,
 * shortest-form sequence becomes one U+FFFD. The result is what a Go
 * regular expression sees, rune for code point.
 * @param {string} b
 * @returns {string}
 */
export function goDecode(b) {
  if (!/[^\x00-\x7f]/.test(b)) return b;
  let out = '';
  const n = b.length;
  for (let i = 0; i < n; ) {
    const c = b.charCodeAt(i);
    if (c < 0x80) {
      out += b[i];
      i++;
      continue;
    }
    const cont = (j, lo = 0x80, hi = 0xbf) => j < n && b.charCodeAt(j) >= lo && b.charCodeAt(j) <= hi;
    let cp = -1;
    let size = 1;
    if (c >= 0xc2 && c <= 0xdf && cont(i + 1)) {
      cp = ((c & 0x1f) << 6) | (b.charCodeAt(i + 1) & 0x3f);
      size = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      const lo = c === 0xe0 ? 0xa0 : 0x80;
      const hi = c === 0xed ? 0x9f : 0xbf;
      if (cont(i + 1, lo, hi) && cont(i + 2)) {
        cp = ((c & 0x0f) << 12) | ((b.charCodeAt(i + 1) & 0x3f) << 6) | (b.charCodeAt(i + 2) & 0x3f);
        size = 3;
      }
    } else if (c >= 0xf0 && c <= 0xf4) {
      const lo = c === 0xf0 ? 0x90 : 0x80;
      const hi = c === 0xf4 ? 0x8f : 0xbf;
      if (cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3)) {
        cp = ((c & 0x07) << 18) | ((b.charCodeAt(i + 1) & 0x3f) << 12) |
          ((b.charCodeAt(i + 2) & 0x3f) << 6) | (b.charCodeAt(i + 3) & 0x3f);
        size = 4;
      }
    }
    out += cp < 0 ? '\ufffd' : String.fromCodePoint(cp);
    i += size;
  }
  return out;
}

/**
 * asciiLower lowers A-Z only, as Go's gate does: nothing on the way to a
 * backend folds other letters.
 * @param {string} s
 * @returns {string}
 */
export function asciiLower(s) {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/**
 * hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
 * @param {string} s
 * @param {string} prefix
 */
export function hasPrefixFold(s, prefix) {
  return s.length >= prefix.length && asciiLower(s.slice(0, prefix.length)) === asciiLower(prefix);
}

/**
 * equalFold reports whether a and b are equal ignoring ASCII case.
 * @param {string} a
 * @param {string} b
 */
export function equalFold(a, b) {
  return a.length === b.length && asciiLower(a) === asciiLower(b);
}
