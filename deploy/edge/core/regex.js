// Go's regular expressions (RE2 syntax) translated into JavaScript ones
// that match exactly the same strings.
//
// Anteroom's rules are written for Go's regexp package, and the edge must
// decide as Go does. JavaScript's RegExp differs in ways that change
// results silently: \s and . mean other characters, [[:alpha:]] parses as
// something else, (?i) folds other letters (Go folds k to the Kelvin sign
// and s to the long s), and a JavaScript pattern may use look-around and
// back-references that Go refuses. So the edge does not hand a rule's
// pattern to RegExp: it parses it as Go's regexp/syntax does and writes
// out an equivalent JavaScript pattern, spelled with explicit code-point
// classes and run with the u flag only. What it cannot translate exactly
// it refuses, with an error that names the construct, so a configuration
// never means one thing in Go and another at the edge:
//
//   - \p{...}, \P{...} and [[:name:]] (Unicode and POSIX classes);
//   - under case-insensitive matching, non-ASCII characters that have a
//     case (Go folds them with its Unicode tables, which the edge does not
//     carry);
//   - a repetition right after a flag group, as in a(?i)*.
//
// Patterns Go refuses are refused too. The shared table
// gate/testdata/regex.json holds patterns and inputs with Go's answers;
// both test suites check them.

/** RegexError is a pattern the edge cannot use; its message says why. */
export class RegexError extends Error {}

const MAX_CP = 0x10ffff;
const KELVIN = 0x212a;
const LONG_S = 0x17f;

// Sets of code points are arrays of [lo, hi] ranges.

function normalize(ranges) {
  const rs = ranges.filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const [lo, hi] of rs) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function negate(ranges) {
  const out = [];
  let next = 0;
  for (const [lo, hi] of normalize(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}

function hasCase(cp) {
  const s = String.fromCodePoint(cp);
  return s.toLowerCase() !== s || s.toUpperCase() !== s;
}

// fold adds what Go's case folding adds to a set: the other case of ASCII
// letters, and the Kelvin sign and long s, whose fold orbits reach k and
// s. Non-ASCII characters with a case are refused (see the file comment).
function fold(ranges) {
  const out = [...ranges];
  for (const [lo, hi] of ranges) {
    if (hi >= 0x80) {
      const from = Math.max(lo, 0x80);
      if (hi - from > 4096) {
        throw new RegexError('a non-ASCII range in a case-insensitive pattern is not supported at the edge');
      }
      for (let cp = from; cp <= hi; cp++) {
        if (hasCase(cp)) {
          throw new RegexError(`non-ASCII letter ${JSON.stringify(String.fromCodePoint(cp))} in a case-insensitive pattern is not supported at the edge`);
        }
      }
    }
    const inter = (a, b) => [Math.max(lo, a), Math.min(hi, b)];
    const [ul, uh] = inter(0x41, 0x5a);
    if (ul <= uh) out.push([ul + 32, uh + 32]);
    const [ll, lh] = inter(0x61, 0x7a);
    if (ll <= lh) out.push([ll - 32, lh - 32]);
    const has = (c) => lo <= c && c <= hi;
    if (has(0x4b) || has(0x6b)) out.push([KELVIN, KELVIN]);
    if (has(0x53) || has(0x73)) out.push([LONG_S, LONG_S]);
  }
  return normalize(out);
}

function esc(cp) {
  if ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a)) {
    return String.fromCodePoint(cp);
  }
  return `\\u{${cp.toString(16)}}`;
}

function setSource(ranges) {
  const rs = normalize(ranges);
  if (rs.length === 1 && rs[0][0] === rs[0][1]) return esc(rs[0][0]);
  return '[' + rs.map(([lo, hi]) => (lo === hi ? esc(lo) : `${esc(lo)}-${esc(hi)}`)).join('') + ']';
}

const DIGIT = [[0x30, 0x39]];
const SPACE = [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]]; // Go's \s: \t \n \f \r space
const WORD = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const PERL = { d: DIGIT, s: SPACE, w: WORD };

const isDigit = (c) => c >= 0x30 && c <= 0x39;
const isOctal = (c) => c >= 0x30 && c <= 0x37;
const isHexDigit = (c) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isAlnum = (c) => isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);

/**
 * translate parses pattern with Go's RE2 syntax (Perl flags, as
 * regexp.Compile uses) and returns the source of an equivalent JavaScript
 * pattern for the u flag. With foldCase the pattern starts case-
 * insensitive, as "(?i)" + pattern does in Go.
 * @param {string} pattern
 * @param {{foldCase?: boolean}} [opts]
 * @returns {string}
 */
export function translate(pattern, { foldCase = false } = {}) {
  const cps = Array.from(pattern, (ch) => ch.codePointAt(0));
  let i = 0;
  const peek = (k = 0) => (i + k < cps.length ? cps[i + k] : -1);
  const ch = (c) => String.fromCodePoint(c);
  const fail = (msg) => {
    throw new RegexError(msg);
  };

  function literalSet(cp, flags) {
    return flags.i ? fold([[cp, cp]]) : [[cp, cp]];
  }

  function perlSet(letter, flags) {
    const lower = letter.toLowerCase();
    let set = PERL[lower];
    if (flags.i) set = fold(set);
    return letter === lower ? set : negate(set);
  }

  // parseEscape reads the escape at i (a backslash) that stands for one
  // character, as Go's parser does; it returns the code point.
  function parseEscape() {
    const start = i;
    i++; // backslash
    const c = peek();
    if (c < 0) fail('trailing backslash at end of expression');
    i++;
    if (c >= 0x31 && c <= 0x37 && !isOctal(peek())) {
      fail(`invalid escape sequence: \`\\${ch(c)}\` (back-references are not supported)`);
    }
    if (c >= 0x30 && c <= 0x37) {
      let r = c - 0x30;
      for (let k = 1; k < 3 && isOctal(peek()); k++) r = r * 8 + (cps[i++] - 0x30);
      return r;
    }
    if (c === 0x78) { // x
      if (peek() === 0x7b) { // {
        i++;
        let r = 0;
        let n = 0;
        while (isHexDigit(peek())) {
          r = r * 16 + parseInt(ch(cps[i++]), 16);
          n++;
          if (r > MAX_CP) fail('invalid escape sequence: hexadecimal escape out of range');
        }
        if (n === 0 || peek() !== 0x7d) fail(`invalid escape sequence: \`${ch(0x5c)}x{\``);
        i++;
        return r;
      }
      if (!isHexDigit(peek()) || !isHexDigit(peek(1))) fail('invalid escape sequence: `\\x` needs two hexadecimal digits');
      const r = parseInt(ch(cps[i]) + ch(cps[i + 1]), 16);
      i += 2;
      return r;
    }
    const simple = { 0x61: 7, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11 }; // a f n r t v
    if (c in simple) return simple[c];
    if (c < 0x80 && !isAlnum(c)) return c;
    i = start;
    return fail(`invalid escape sequence: \`\\${ch(c)}\``);
  }

  function parseClass(flags) {
    i++; // [
    let negated = false;
    if (peek() === 0x5e) { // ^
      negated = true;
      i++;
    }
    let set = [];
    let first = true;
    while (peek() !== 0x5d || first) { // ]
      if (peek() < 0) fail('missing closing ]');
      first = false;
      if (peek() === 0x5b && peek(1) === 0x3a) { // [:
        const rest = cps.slice(i + 2);
        const end = rest.findIndex((c, k) => c === 0x3a && rest[k + 1] === 0x5d);
        if (end >= 0) fail('POSIX classes such as [[:alpha:]] are not supported at the edge; spell out the characters');
      }
      if (peek() === 0x5c && (peek(1) === 0x70 || peek(1) === 0x50)) {
        fail('Unicode classes (\\p, \\P) are not supported at the edge');
      }
      if (peek() === 0x5c && peek(1) >= 0 && 'dDsSwW'.includes(ch(peek(1)))) {
        set = set.concat(perlSet(ch(peek(1)), flags));
        i += 2;
        continue;
      }
      const lo = classChar();
      let hi = lo;
      if (peek() === 0x2d && peek(1) !== 0x5d && peek(1) >= 0) { // - not before ]
        i++;
        hi = classChar();
        if (hi < lo) fail(`invalid character class range: \`${ch(lo)}-${ch(hi)}\``);
      }
      set = set.concat(flags.i ? fold([[lo, hi]]) : [[lo, hi]]);
    }
    i++; // ]
    return negated ? negate(set) : normalize(set);
  }

  function classChar() {
    if (peek() < 0) fail('missing closing ]');
    if (peek() === 0x5c) return parseEscape();
    return cps[i++];
  }

  // parseRepeat reads {n}, {n,} or {n,m} at i; it returns null (and
  // leaves i alone) when there is none, in which case { is a literal.
  function parseRepeat() {
    let j = i + 1;
    const int = () => {
      const s = j;
      while (isDigit(cps[j] ?? -1)) j++;
      if (j === s) return null;
      if (j - s >= 2 && cps[s] === 0x30) return null; // no leading zeros
      return j - s >= 8 ? -1 : Number(String.fromCodePoint(...cps.slice(s, j)));
    };
    let min = int();
    if (min === null) return null;
    let max = min;
    if (cps[j] === 0x2c) { // ,
      j++;
      if (cps[j] === 0x7d) max = -1;
      else {
        max = int();
        if (max === null) return null;
        if (max < 0) min = -1;
      }
    }
    if (cps[j] !== 0x7d) return null;
    j++;
    if (min < 0 || min > 1000 || max > 1000 || (max >= 0 && min > max)) {
      fail(`invalid repeat count: \`${String.fromCodePoint(...cps.slice(i, j))}\``);
    }
    const src = max === min ? `{${min}}` : max < 0 ? `{${min},}` : `{${min},${max}}`;
    i = j;
    return src;
  }

  // parseQuantifier reads a repetition operator at i, if any, with its
  // lazy mark; it returns its JavaScript source or null.
  function parseQuantifier(flags) {
    const c = peek();
    let q = null;
    if (c === 0x2a || c === 0x2b || c === 0x3f) { // * + ?
      q = ch(c);
      i++;
    } else if (c === 0x7b) {
      q = parseRepeat();
    }
    if (q === null) return null;
    let lazy = flags.U;
    if (peek() === 0x3f) {
      lazy = !lazy;
      i++;
    }
    return q + (lazy ? '?' : '');
  }

  function parseFlags(flags) {
    // At "(?": flags, then ")" (for the rest of the group) or ":" (a group).
    let j = i + 2;
    const next = { ...flags };
    let neg = false;
    let sawFlag = false;
    for (;;) {
      const c = cps[j] ?? -1;
      if (c === 0x69 || c === 0x6d || c === 0x73 || c === 0x55) { // i m s U
        next[ch(c)] = !neg;
        sawFlag = true;
      } else if (c === 0x2d && !neg) {
        neg = true;
        sawFlag = false;
      } else if ((c === 0x29 || c === 0x3a) && (!neg || sawFlag)) { // ) or :, not right after -
        return { flags: next, end: j, group: c === 0x3a };
      } else {
        return null;
      }
      j++;
    }
  }

  // parseAlternation parses until an unmatched ) or the end; flags are
  // the group's, which (?flags) changes for the rest of the group.
  function parseAlternation(flags) {
    const alts = [];
    let seq = '';
    let last = null; // the previous atom, which a repetition may apply to
    let afterRepeat = false;
    let afterFlags = false;
    for (;;) {
      const c = peek();
      if (c < 0 || c === 0x29) break;
      if (c === 0x7c) { // |
        alts.push(seq + (last ?? ''));
        seq = '';
        last = null;
        afterRepeat = afterFlags = false;
        i++;
        continue;
      }
      const startQ = i;
      const q = c === 0x2a || c === 0x2b || c === 0x3f || (c === 0x7b && parseRepeatPeek()) ? parseQuantifier(flags) : null;
      if (q !== null) {
        if (afterRepeat) fail(`invalid nested repetition operator: \`${String.fromCodePoint(...cps.slice(startQ, i))}\``);
        if (afterFlags) fail('a repetition right after a flag group is not supported at the edge');
        if (last === null) fail(`missing argument to repetition operator: \`${String.fromCodePoint(...cps.slice(startQ, i))}\``);
        last = `(?:${last})${q}`;
        afterRepeat = true;
        continue;
      }
      afterRepeat = afterFlags = false;
      if (last !== null) seq += last;
      last = null;
      if (c === 0x28) { // (
        if (peek(1) === 0x3f) { // ?
          const f = parseFlags(flags);
          if (f && !f.group) {
            Object.assign(flags, f.flags);
            i = f.end + 1;
            afterFlags = true;
            continue;
          }
          if (f) {
            i = f.end + 1;
            last = `(?:${parseAlternation({ ...f.flags })})`;
            expectClose();
            continue;
          }
          const named = /^\?P?<([A-Za-z0-9_]+)>/.exec(String.fromCodePoint(...cps.slice(i + 1)));
          if (named) {
            i += 1 + named[0].length;
            last = `(?:${parseAlternation({ ...flags })})`;
            expectClose();
            continue;
          }
          fail(`invalid or unsupported Perl syntax: \`${String.fromCodePoint(...cps.slice(i, i + 3))}\``);
        }
        i++;
        last = `(?:${parseAlternation({ ...flags })})`;
        expectClose();
        continue;
      }
      if (c === 0x5b) { // [
        last = setSource(parseClass(flags));
        continue;
      }
      if (c === 0x2e) { // .
        i++;
        last = setSource(flags.s ? [[0, MAX_CP]] : [[0, 9], [11, MAX_CP]]);
        continue;
      }
      if (c === 0x5e) { // ^
        i++;
        last = flags.m ? '(?<![^\\n])' : '^';
        continue;
      }
      if (c === 0x24) { // $
        i++;
        last = flags.m ? '(?![^\\n])' : '$';
        continue;
      }
      if (c === 0x5c) { // backslash
        const e = peek(1);
        const simple = { 0x41: '^', 0x7a: '$', 0x62: '\\b', 0x42: '\\B' }; // A z b B
        if (e in simple) {
          i += 2;
          last = simple[e];
          continue;
        }
        if (e === 0x70 || e === 0x50) fail('Unicode classes (\\p, \\P) are not supported at the edge');
        if (e >= 0 && 'dDsSwW'.includes(ch(e))) {
          i += 2;
          last = setSource(perlSet(ch(e), flags));
          continue;
        }
        if (e === 0x51) { // \Q...\E
          i += 2;
          // Each quoted character is an atom of its own, so that a
          // repetition after \E applies to the last one, as in Go.
          while (peek() >= 0 && !(peek() === 0x5c && peek(1) === 0x45)) {
            if (last !== null) seq += last;
            last = setSource(literalSet(cps[i++], flags));
          }
          if (peek() >= 0) i += 2;
          continue;
        }
        last = setSource(literalSet(parseEscape(), flags));
        continue;
      }
      i++;
      last = setSource(literalSet(c, flags));
    }
    alts.push(seq + (last ?? ''));
    return alts.join('|');
  }

  function parseRepeatPeek() {
    const save = i;
    try {
      return parseRepeat() !== null;
    } finally {
      i = save;
    }
  }

  function expectClose() {
    if (peek() !== 0x29) fail(`missing closing ): \`${pattern}\``);
    i++;
  }

  const src = parseAlternation({ i: foldCase, m: false, s: false, U: false });
  if (i < cps.length) fail(`unexpected ): \`${pattern}\``);
  return src;
}

/**
 * compile translates pattern (see translate) and returns a matcher over
 * strings already read as Go reads them (see goDecode in bytes.js).
 * @param {string} pattern
 * @param {{foldCase?: boolean}} [opts]
 * @returns {RegExp}
 */
export function compile(pattern, opts) {
  const src = translate(pattern, opts);
  try {
    return new RegExp(src, 'u');
  } catch (err) {
    throw new RegexError(`cannot be translated for the edge: ${err.message}`);
  }
}
