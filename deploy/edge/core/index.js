// Anteroom's edge core: everything a platform handler needs.
export { Gate, ANTEROOM_HEADERS, NO_CACHE, AUDIENCE, validateConfig, queryEscape, sameSiteTarget, wantsJSON } from './gate.js';
export { ConfigError, Rules, parseCookies, cookieJar, isGoodBot, preparePath, requestHost } from './rules.js';
export { KeySet, KeysUnavailable } from './keys.js';
export { TokenError, verifySignature, checkClaims, b64urlDecode, b64urlEncode, importJWK } from './jwt.js';
export { RegexError, translate as translateRegex } from './regex.js';
export { utf8Bytes, platformBytes, goDecode } from './bytes.js';
export { checkRequest, cookieLines, forwardInit, originRequest, requestTarget, unforwardable } from './fetch.js';
