// The waiting page's Web Worker: it solves an ALTCHA challenge (SHA-256)
// by brute force from 0, as every ALTCHA solver does, and posts
// {progress: percent of maxnumber searched} as it goes and {number} (null:
// no solution up to maxnumber) at the end. SHA-256 is computed here rather
// than by crypto.subtle, whose one promise per hash would make a person's
// phone several times slower than a bot's native solver: the salt's whole
// 64-byte blocks are hashed once, and each number costs one or two blocks.
"use strict";
var K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
]);
var IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

// compress runs SHA-256's compression of the 64-byte block of buf at off
// into the state H.
function compress(H, buf, off, W) {
  var i, j, x, y;
  for (i = 0; i < 16; i++) {
    j = off + i * 4;
    W[i] = (buf[j] << 24) | (buf[j + 1] << 16) | (buf[j + 2] << 8) | buf[j + 3];
  }
  for (i = 16; i < 64; i++) {
    x = W[i - 15];
    y = W[i - 2];
    W[i] = (W[i - 16] + (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
      W[i - 7] + (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10))) | 0;
  }
  var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7], t1, t2;
  for (i = 0; i < 64; i++) {
    t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
      ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    t2 = ((((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
      ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
  H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
}

function solve(c) {
  if (c.algorithm !== "SHA-256" || !/^[0-9a-f]{64}$/.test(c.challenge)) return null;
  var want = new Int32Array(8);
  for (var i = 0; i < 8; i++) want[i] = parseInt(c.challenge.substr(i * 8, 8), 16) | 0;
  var salt = new TextEncoder().encode(c.salt);
  var full = salt.length - (salt.length % 64);
  var W = new Int32Array(64);
  var mid = new Int32Array(IV);
  for (var off = 0; off < full; off += 64) compress(mid, salt, off, W);
  var rest = salt.length - full;
  var buf = new Uint8Array(128);
  buf.set(salt.subarray(full));
  var H = new Int32Array(8);
  var digits = new Uint8Array(20);
  var max = Math.max(0, Math.floor(c.maxnumber));
  var report = 0;
  for (var n = 0; n <= max; n++) {
    var k = 0, v = n;
    do { digits[k++] = 48 + (v % 10); v = Math.floor(v / 10); } while (v > 0);
    var p = rest;
    while (k > 0) buf[p++] = digits[--k];
    var bits = (full + p) * 8;
    buf[p++] = 0x80;
    var end = p + 8 <= 64 ? 64 : 128;
    buf.fill(0, p, end - 4);
    buf[end - 4] = bits >>> 24; buf[end - 3] = bits >>> 16; buf[end - 2] = bits >>> 8; buf[end - 1] = bits;
    H.set(mid);
    compress(H, buf, 0, W);
    if (end === 128) compress(H, buf, 64, W);
    if (H[0] === want[0] && H[1] === want[1] && H[2] === want[2] && H[3] === want[3] &&
        H[4] === want[4] && H[5] === want[5] && H[6] === want[6] && H[7] === want[7]) return n;
    if (++report === 16384) {
      report = 0;
      self.postMessage({ progress: Math.floor((n * 100) / Math.max(1, max)) });
    }
  }
  return null;
}

self.onmessage = function (e) {
  var started = Date.now();
  var n = solve(e.data);
  self.postMessage({ number: n, took: Date.now() - started });
};
