// The oracle: mozjexl 1.1.6 configured the way Firefox's Normandy client configures it
// (toolkit/components/utils/FilterExpressions.sys.mjs, Sampling.sys.mjs), plus the tagged
// encoding that the Rust test compares against.
//
// Everything here must be deterministic: dates are read in UTC, hashing uses node:crypto,
// and behaviour that depends on the JavaScript engine rather than on the language (V8's
// legacy date parser, `Date.prototype.toString`, non-string preference names) is reported
// as "unsupported" so that the generator drops the case instead of pinning V8 quirks.

// Local-time date formats and `new Date("2020-01-01T00:00:00")` depend on the time zone.
// Firefox evaluates in the user's zone; our engine has no zone, so we pin UTC.
process.env.TZ = 'UTC';

import { createHash } from 'node:crypto';
import mozjexl from 'mozjexl';

// ---------------------------------------------------------------------------
// Unsupported-behaviour tracking

let unsupported = null;

/** Marks the case being evaluated as depending on engine-specific JavaScript behaviour. */
function markUnsupported(reason) {
  if (unsupported === null) unsupported = reason;
}

// A Date converted to a string uses `Date.prototype.toString`, whose format is
// implementation-defined (and local-time). Detect it instead of pinning V8's output.
{
  const original = Date.prototype[Symbol.toPrimitive];
  Object.defineProperty(Date.prototype, Symbol.toPrimitive, {
    configurable: true,
    writable: false,
    enumerable: false,
    value: function (hint) {
      if (hint !== 'number') markUnsupported('date-to-string');
      return original.call(this, hint);
    },
  });
  for (const name of ['toString', 'toLocaleString', 'toDateString', 'toTimeString']) {
    const fn = Date.prototype[name];
    Object.defineProperty(Date.prototype, name, {
      configurable: true,
      writable: true,
      enumerable: false,
      value: function (...args) {
        markUnsupported('date-to-string');
        return fn.apply(this, args);
      },
    });
  }
}

// ---------------------------------------------------------------------------
// Sampling.sys.mjs, reimplemented (same arithmetic, same string comparisons)

const hashBits = 48;
const hashLength = hashBits / 4;
const hashMultiplier = Math.pow(2, hashBits) - 1;

function fractionToKey(frac) {
  if (frac < 0 || frac > 1) {
    throw new Error(`frac must be between 0 and 1 inclusive (got ${frac})`);
  }
  return Math.floor(frac * hashMultiplier).toString(16).padStart(hashLength, '0');
}

function truncatedHash(data) {
  // TextEncoder#encode(undefined) encodes the empty string, exactly like Firefox.
  const input = new TextEncoder().encode(JSON.stringify(data));
  return createHash('sha256').update(input).digest('hex').slice(0, hashLength);
}

function isHashInBucket(inputHash, minBucket, maxBucket, bucketCount) {
  const minHash = fractionToKey(minBucket / bucketCount);
  const maxHash = fractionToKey(maxBucket / bucketCount);
  return minHash <= inputHash && inputHash < maxHash;
}

async function stableSample(input, rate) {
  const inputHash = truncatedHash(input);
  const samplePoint = fractionToKey(rate);
  return inputHash < samplePoint;
}

async function bucketSample(input, start, count, total) {
  const inputHash = truncatedHash(input);
  const wrappedStart = start % total;
  const end = wrappedStart + count;
  if (end > total) {
    return (
      isHashInBucket(inputHash, 0, end % total, total) ||
      isHashInBucket(inputHash, wrappedStart, total, total)
    );
  }
  return isHashInBucket(inputHash, wrappedStart, end, total);
}

// ---------------------------------------------------------------------------
// Preferences: an emulation of Services.prefs over a snapshot {name: {default, user}}

const PREF_INVALID = 0;
const PREF_STRING = 32;
const PREF_INT = 64;
const PREF_BOOL = 128;

function prefService(snapshot) {
  const entry = (name) => {
    // XPConnect would stringify other types (or reject null); we only test string names.
    if (typeof name !== 'string') {
      markUnsupported('non-string-pref-name');
      return undefined;
    }
    return Object.prototype.hasOwnProperty.call(snapshot, name) ? snapshot[name] : undefined;
  };
  const effective = (name) => {
    const e = entry(name);
    if (e === undefined) return undefined;
    return e.user !== undefined ? e.user : e.default;
  };
  return {
    getPrefType(name) {
      const v = effective(name);
      if (typeof v === 'string') return PREF_STRING;
      if (typeof v === 'number') return PREF_INT;
      if (typeof v === 'boolean') return PREF_BOOL;
      return PREF_INVALID;
    },
    getStringPref: effective,
    getIntPref: effective,
    getBoolPref: effective,
    prefHasUserValue(name) {
      const e = entry(name);
      return e !== undefined && e.user !== undefined;
    },
  };
}

// ---------------------------------------------------------------------------
// Dates: `new Date(x)`, restricted to inputs whose meaning the language defines.

const isoDate =
  /^(?:[+-]\d{6}|\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;

function dateInputIsPortable(x) {
  if (typeof x !== 'string') {
    // Numbers, booleans, null and undefined convert through ToNumber: fully specified.
    return x === null || ['number', 'boolean', 'undefined'].includes(typeof x);
  }
  const m = isoDate.exec(x);
  if (m) {
    const month = m[1] === undefined ? 1 : Number(m[1]);
    const day = m[2] === undefined ? 1 : Number(m[2]);
    // Out-of-range fields are handled differently by V8 and SpiderMonkey.
    return month >= 1 && month <= 12 && day >= 1 && day <= 28;
  }
  // Strings outside the ISO format go to an implementation-defined parser. Accept only
  // text without digits that V8 also rejects ("", "not a date").
  return !/\d/.test(x) && Number.isNaN(new Date(x).getTime());
}

// ---------------------------------------------------------------------------
// Services.vc.compare: the toolkit version comparator (xpcom/base/nsVersionComparator.cpp),
// written from its documented rules. Versions are split on '.', each part is
// <numA><strB><numC><extraD>; a present string sorts before an absent one.

const INT32_MAX = 2147483647;

/** C `strtol(s, &end, 10)` clamped like the comparator: out of int32 range gives 0. */
function strtol(s, start) {
  let i = start;
  while (i < s.length && ' \t\n\v\f\r'.includes(s[i])) i++;
  let sign = 1;
  if (s[i] === '+' || s[i] === '-') {
    if (s[i] === '-') sign = -1;
    i++;
  }
  const digitsStart = i;
  while (i < s.length && s[i] >= '0' && s[i] <= '9') i++;
  if (i === digitsStart) return { value: 0, end: start }; // no conversion: end = start
  const value = sign * Number(s.slice(digitsStart, i));
  return { value: value > INT32_MAX || value < -INT32_MAX - 1 ? 0 : value, end: i };
}

function parseVersionPart(part) {
  const vp = { numA: 0, strB: null, numC: 0, extraD: null };
  if (part === null) return vp;
  let rest;
  if (part === '*') {
    vp.numA = INT32_MAX;
    rest = '';
  } else {
    const a = strtol(part, 0);
    vp.numA = a.value;
    rest = part.slice(a.end);
  }
  if (rest === '') return vp;
  if (rest[0] === '+') {
    vp.numA += 1;
    vp.strB = 'pre';
    return vp;
  }
  const m = /[0-9+-]/.exec(rest);
  if (!m) {
    vp.strB = rest;
    return vp;
  }
  vp.strB = rest.slice(0, m.index);
  const c = strtol(rest, m.index);
  vp.numC = c.value;
  vp.extraD = c.end < rest.length ? rest.slice(c.end) : null;
  return vp;
}

function cmpNum(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Byte-wise comparison where any string sorts before no string. */
function cmpStr(a, b) {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return a < b ? -1 : a > b ? 1 : 0; // ASCII only (see versionCompare)
}

export function compareVersions(a, b) {
  const pa = a.split('.');
  const pb = b.split('.');
  // A trailing '.' ends the list (but "1." still has the part "1").
  if (pa.length > 1 && pa[pa.length - 1] === '') pa.pop();
  if (pb.length > 1 && pb[pb.length - 1] === '') pb.pop();
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const va = parseVersionPart(i < pa.length ? pa[i] : null);
    const vb = parseVersionPart(i < pb.length ? pb[i] : null);
    const r =
      cmpNum(va.numA, vb.numA) || cmpStr(va.strB, vb.strB) || cmpNum(va.numC, vb.numC) || cmpStr(va.extraD, vb.extraD);
    if (r) return r;
  }
  return 0;
}

function versionCompare(v1, v2) {
  // XPConnect converts the arguments to byte strings; only ASCII text (and numbers, which
  // convert with ToString) has an obvious meaning, so anything else is left out. Firefox
  // returns strcmp-style magnitudes in some branches; we return the sign, which is all a
  // filter can portably use.
  for (const v of [v1, v2]) {
    if (typeof v === 'number') continue;
    if (typeof v !== 'string' || /[^\x20-\x7e]/.test(v)) markUnsupported('version-argument');
  }
  return compareVersions(String(v1), String(v2));
}

// ---------------------------------------------------------------------------
// Powers

/** True when Math.pow(x, y) is the same in every correct implementation. */
function powIsPortable(x, y, result) {
  // Special values and trivial exponents are fixed by the ECMAScript specification.
  if (!Number.isFinite(x) || !Number.isFinite(y)) return true;
  if (x === 0 || x === 1 || x === -1 || y === 0 || y === 1 || y === -1) return true;
  if (!Number.isInteger(y)) return x < 0; // negative base, fractional exponent: NaN
  const magnitude = y * Math.log2(Math.abs(x));
  if (magnitude > 1100 || magnitude < -1200) return true; // clear overflow / underflow
  // Exact results: integer powers of integers below 2^53, integer powers of two.
  if (Number.isInteger(x) && y > 0 && Math.abs(result) <= 2 ** 53) return true;
  const isPowerOfTwo = Number.isInteger(Math.log2(Math.abs(x)));
  return isPowerOfTwo && Number.isFinite(result) && Math.abs(result) >= 2 ** -1022;
}

// ---------------------------------------------------------------------------
// String#match results

/**
 * A non-global match is an array with extra own properties (`index`, `input`, `groups`),
 * which `keys`, `values` and `match["index"]` can observe. Our value model has plain arrays
 * only, so such cases are reported as unsupported — but only when the extras are observed.
 */
function observeMatchExtras(match) {
  if (!Array.isArray(match) || match.index === undefined) return match;
  const extras = new Set(['index', 'input', 'groups']);
  return new Proxy(match, {
    get(target, prop, receiver) {
      if (extras.has(prop)) markUnsupported('regexp-match-extras');
      return Reflect.get(target, prop, receiver);
    },
    ownKeys(target) {
      markUnsupported('regexp-match-extras');
      return Reflect.ownKeys(target);
    },
  });
}

// ---------------------------------------------------------------------------
// The configured Jexl instance

function makeJexl() {
  const jexl = new mozjexl.Jexl();
  let prefs = prefService({});
  jexl.addTransforms({
    date: (dateString) => {
      if (!dateInputIsPortable(dateString)) markUnsupported('date-input');
      return new Date(dateString);
    },
    stableSample,
    bucketSample,
    preferenceValue: (prefKey, defaultValue) => {
      switch (prefs.getPrefType(prefKey)) {
        case PREF_STRING:
          return prefs.getStringPref(prefKey);
        case PREF_INT:
          return prefs.getIntPref(prefKey);
        case PREF_BOOL:
          return prefs.getBoolPref(prefKey);
        case PREF_INVALID:
          return defaultValue;
        default:
          throw new Error(`Error getting pref ${prefKey}.`);
      }
    },
    preferenceIsUserSet: (prefKey) => prefs.prefHasUserValue(prefKey),
    preferenceExists: (prefKey) => prefs.getPrefType(prefKey) != PREF_INVALID,
    keys(obj) {
      if (typeof obj !== 'object' || obj === null) return undefined;
      return Object.keys(obj);
    },
    values(obj) {
      if (typeof obj !== 'object' || obj === null) return undefined;
      return Object.values(obj);
    },
    length(arr) {
      return Array.isArray(arr) ? arr.length : undefined;
    },
    mapToProperty(arr, prop) {
      return Array.isArray(arr) ? arr.map((elem) => elem[prop]) : undefined;
    },
    regExpMatch(str, pattern, flags) {
      const re = new RegExp(pattern, flags);
      return observeMatchExtras(str.match(re));
    },
    versionCompare,
  });
  // mozjexl's `^` is Math.pow. JavaScript engines (V8 here, SpiderMonkey in Firefox) and
  // libm differ in the last bit for inexact powers (V8: 10 ^ 42 is 9.999999999999999e+41),
  // so only results every implementation agrees on are pinned.
  jexl.addBinaryOp('^', 50, (left, right) => {
    const result = Math.pow(left, right);
    if (!powIsPortable(Number(left), Number(right), result)) markUnsupported('inexact-pow');
    return result;
  });
  jexl.addBinaryOp('intersect', 40, (listA, listB) => {
    if (!Array.isArray(listA) || !Array.isArray(listB)) return undefined;
    return listA.filter((item) => listB.includes(item));
  });
  return {
    jexl,
    setPrefs(snapshot) {
      prefs = prefService(snapshot);
    },
  };
}

const instance = makeJexl();

// ---------------------------------------------------------------------------
// Tagged encoding

/** Encodes a JavaScript number exactly: its shortest round-trip text, with `-0` kept. */
export function encodeNumber(n) {
  return Object.is(n, -0) ? '-0' : String(n);
}

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Encodes a JavaScript value in the tagged form the Rust test reproduces. Throws an
 * `Unsupported` error for values outside the language's value space (functions, lone
 * surrogates, which JSON cannot carry to Rust).
 */
export function encode(value, depth = 0) {
  if (depth > 50) throw new Unsupported('deep-value');
  if (value === undefined) return { t: 'undefined' };
  if (value === null) return { t: 'null' };
  switch (typeof value) {
    case 'boolean':
      return { t: 'bool', v: value };
    case 'number':
      return { t: 'number', v: encodeNumber(value) };
    case 'string':
      if (loneSurrogate.test(value)) throw new Unsupported('lone-surrogate');
      return { t: 'string', v: value };
    case 'object':
      break;
    default:
      throw new Unsupported(`value-of-type-${typeof value}`);
  }
  if (value instanceof Date) return { t: 'date', v: encodeNumber(value.getTime()) };
  if (Array.isArray(value)) {
    const items = [];
    // Index loop (not map) so that holes would show up as undefined.
    for (let i = 0; i < value.length; i++) items.push(encode(value[i], depth + 1));
    return { t: 'array', v: items };
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new Unsupported('exotic-object');
  return {
    t: 'object',
    v: Object.keys(value).map((k) => {
      if (loneSurrogate.test(k)) throw new Unsupported('lone-surrogate');
      return [k, encode(value[k], depth + 1)];
    }),
  };
}

/** Thrown when a case depends on behaviour the differential test deliberately excludes. */
export class Unsupported extends Error {}

/**
 * Evaluates `expr` over `varsJson` (the JSON text the Rust side will read) and a preference
 * snapshot. Resolves to the tagged result, or rejects with `Unsupported`.
 */
export async function evaluate(expr, varsJson, prefs) {
  // Parse the same JSON text the Rust side reads: JavaScript then applies its own property
  // order (integer-like keys first), which the engine has to reproduce.
  const context = JSON.parse(varsJson);
  instance.setPrefs(JSON.parse(JSON.stringify(prefs)));
  unsupported = null;
  let result;
  try {
    const value = await instance.jexl.eval(expr, context);
    result = encode(value);
  } catch (err) {
    if (err instanceof Unsupported) throw err;
    result = { t: 'error', message: String(err && err.message ? err.message : err) };
  }
  if (unsupported !== null) throw new Unsupported(unsupported);
  return result;
}

export const internals = { fractionToKey, truncatedHash, stableSample, bucketSample };
