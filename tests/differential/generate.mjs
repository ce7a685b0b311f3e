#!/usr/bin/env node
// Generates differential test cases for the filter-expression language: random expressions
// over random contexts, evaluated by the oracle (mozjexl 1.1.6 with Normandy's transforms).
//
//   node generate.mjs [--count N] [--seed S] [--out FILE] [--only ID]
//
// Writes JSON Lines, one case per line:
//   {"id": 17, "cat": "random", "expr": "...", "vars": {...}, "prefs": {...}, "expected": <tagged>}
// and prints category statistics to stderr. The same seed always gives the same file; case
// `id` is reproducible alone with `--only ID` (each case has its own PRNG stream).

import { createWriteStream } from 'node:fs';
import { evaluate, Unsupported } from './oracle.mjs';
import { selfTest } from './selftest.mjs';

// ---------------------------------------------------------------------------
// PRNG: mulberry32, one stream per case derived from (seed, id).

function mulberry32(a) {
  return function next() {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mix32(x) {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

class Rng {
  constructor(seed, id, attempt = 0) {
    this.next = mulberry32(mix32(mix32(seed ^ 0x9e3779b9) ^ mix32(id + 1) ^ mix32(attempt * 7919 + 13)));
  }
  /** Uniform in [0, 1). */
  float() {
    return this.next();
  }
  /** True with probability p. */
  chance(p) {
    return this.next() < p;
  }
  /** Integer in [lo, hi]. */
  int(lo, hi) {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick(items) {
    return items[Math.floor(this.next() * items.length)];
  }
  /** Picks from [[weight, value], ...]. */
  weighted(entries) {
    let total = 0;
    for (const [w] of entries) total += w;
    let x = this.next() * total;
    for (const [w, v] of entries) {
      x -= w;
      if (x < 0) return v;
    }
    return entries[entries.length - 1][1];
  }
}

// ---------------------------------------------------------------------------
// Value pools. Context numbers are kept to at most 15 significant digits with small
// exponents so that every JSON parser (serde_json's default float parsing included) reads
// exactly the same double.

const CONTEXT_NUMBERS = [
  0, 1, 2, 3, 5, 7, 10, 12, 42, 100, 255, 1000, 65536, -1, -3, -42, 0.1, 0.2, 0.5, 1.5, 2.25,
  3.14, -0.5, 99.99, 1e21, 1e-7, 123456789012, 2147483647, 17000.5,
];

const CONTEXT_STRINGS = [
  '', 'a', 'b', 'abc', 'ABC', 'Ab', 'aB', 'Firefox', 'firefox', 'release', 'beta', 'nightly',
  'en-US', 'en-GB', 'de', 'US', 'DE', '1', '2', '10', '9', '007', ' 12 ', '0x10', '1e3', '-0',
  '1.5', '.5', '5.', 'Infinity', '-Infinity', 'NaN', 'true', 'false', 'null', 'undefined',
  'a,b', '1,2', '[object Object]', 'é', 'naïve', '😀', 'ｆｕｌｌ', '٣', 'line\nbreak',
  'tab\there', 'quote"d', "apo'strophe", 'back\\slash', '2020-01-01', '2020-01-01T00:00:00Z',
  'abc abc', 'x@y.com', 'google', 'ddg', '0', ' ', '\u00a0', 'abcabc', 'bab', '113.0a1',
];

const UUIDS = [
  '299eed1e-be6d-457d-9e53-da7b1a03f10d',
  'c590d3f5-fe9d-4820-97c9-f403535dd306',
  '542213c0-9aef-47eb-bc6b-3b8529736ba2',
  '3d2142de-53bf-2d48-a92d-45fb7036cbf6',
];

// Keys avoid names that exist on Object/Array/String/Number prototypes (their values are
// functions, which are outside the language's value space), except `length`, whose value on
// strings is part of mozjexl's observable behaviour.
const OBJECT_KEYS = ['a', 'b', 'c', 'x', 'y', 'name', 'value', 'id', 'on', 'count', 'tags', 'kind', 'n_2', '_k'];
const MISSING_KEYS = ['nope', 'missing', 'zz', 'Name', 'A'];
const ODD_KEYS = ['x@y.com', 'b-c', 'has space', '', 'é', 'length', 'with.dot', 'a"b'];
const INT_LIKE_KEYS = ['1', '10', '2', '0', '007', '-1', '1.5'];

const PREF_NAMES = [
  'app.normandy.enabled',
  'app.shield.optoutstudies.enabled',
  'browser.startup.page',
  'browser.search.region',
  'network.trr.mode',
  'extensions.pocket.enabled',
  'dom.ipc.processCount',
  'a.b',
  'only.default',
  'only.user',
];
const MISSING_PREFS = ['does.not.exist', 'app.normandy', ''];

// ---------------------------------------------------------------------------
// Contexts

function genScalar(r) {
  return r.weighted([
    [4, () => r.pick(CONTEXT_NUMBERS)],
    [2, () => r.int(-5, 20)],
    [5, () => r.pick(CONTEXT_STRINGS)],
    [2, () => r.chance(0.5)],
    [1, () => null],
  ])();
}

function genKey(r, intKeys) {
  if (intKeys && r.chance(0.3)) return r.pick(INT_LIKE_KEYS);
  if (r.chance(0.08)) return r.pick(ODD_KEYS);
  return r.pick(OBJECT_KEYS);
}

function genValue(r, depth, intKeys) {
  if (depth <= 0) return genScalar(r);
  return r.weighted([
    [6, () => genScalar(r)],
    [2, () => genArray(r, depth - 1, intKeys)],
    [2, () => genObject(r, depth - 1, intKeys)],
  ])();
}

function genArray(r, depth, intKeys) {
  const kind = r.weighted([
    [3, 'numbers'],
    [3, 'strings'],
    [3, 'objects'],
    [2, 'mixed'],
    [1, 'empty'],
  ]);
  const len = kind === 'empty' ? 0 : r.int(1, 5);
  const out = [];
  for (let i = 0; i < len; i++) {
    if (kind === 'numbers') out.push(r.chance(0.7) ? r.int(0, 6) : r.pick(CONTEXT_NUMBERS));
    else if (kind === 'strings') out.push(r.pick(CONTEXT_STRINGS.slice(0, 24)));
    else if (kind === 'objects') out.push(r.chance(0.08) ? r.pick([null, 0, '', 'str', 3]) : genRecord(r, depth, intKeys));
    else out.push(genValue(r, depth, intKeys));
  }
  return out;
}

/** An object with a few well-known keys: what filters over lists usually look at. */
function genRecord(r, depth, intKeys) {
  const obj = {};
  if (r.chance(0.9)) obj.a = r.chance(0.8) ? r.int(0, 4) : genScalar(r);
  if (r.chance(0.8)) obj.b = r.chance(0.7) ? r.int(0, 4) : genScalar(r);
  if (r.chance(0.7)) obj.name = r.pick(['x', 'y', 'abc', 'Firefox', '', 'a']);
  if (r.chance(0.4)) obj.on = r.chance(0.5);
  if (r.chance(0.3)) obj.tags = genArray(r, 0, false);
  if (depth > 0 && r.chance(0.3)) obj.value = genValue(r, depth - 1, intKeys);
  if (intKeys && r.chance(0.3)) obj[r.pick(INT_LIKE_KEYS)] = genScalar(r);
  return obj;
}

function genObject(r, depth, intKeys) {
  const obj = {};
  const n = r.int(0, 5);
  for (let i = 0; i < n; i++) obj[genKey(r, intKeys)] = genValue(r, depth, intKeys);
  return obj;
}

function genNormandy(r) {
  const addons = {};
  for (const id of ['uBlock0@raymondhill.net', 'screenshots@mozilla.org', 'pocket@mozilla.org']) {
    if (r.chance(0.6)) {
      addons[id] = {
        id,
        isActive: r.chance(0.7),
        name: id.split('@')[0],
        type: r.pick(['extension', 'theme']),
        version: r.pick(['1.0', '2.3.1', '113.0a1']),
      };
    }
  }
  const slugs = ['pref-flip-a', 'pref-flip-b', 'addon-study', 'rollout-x'];
  const some = () => slugs.filter(() => r.chance(0.4));
  return {
    userId: r.pick(UUIDS),
    randomizationId: r.pick(UUIDS),
    version: r.pick(['47.0.1', '113.0a1', '128.0', '70.0', '91.0.2']),
    channel: r.pick(['release', 'beta', 'nightly', 'aurora', 'default']),
    locale: r.pick(['en-US', 'en-GB', 'de', 'fr', 'es-ES']),
    country: r.pick(['US', 'DE', 'FR', 'GB', 'unknown']),
    distribution: r.pick(['default', 'canonical', 'mozilla-EMEfree']),
    isDefaultBrowser: r.chance(0.5),
    searchEngine: r.pick(['google', 'ddg', 'bing', 'wikipedia-es']),
    syncSetup: r.chance(0.4),
    syncTotalDevices: r.int(0, 4),
    isFirstRun: r.chance(0.2),
    doNotTrack: r.chance(0.2),
    os: { isWindows: r.chance(0.5), isMac: r.chance(0.3), isLinux: r.chance(0.2), windowsVersion: r.pick([6.1, 6.3, 10, null]) },
    addons,
    experiments: { all: some(), active: some(), expired: some() },
    telemetry: {
      main: {
        environment: {
          settings: { isDefaultBrowser: r.chance(0.5), defaultSearchEngine: r.pick(['google', 'ddg']) },
          profile: { creationDate: r.pick([16000, 17000, 18000, 19000]) },
        },
      },
    },
    recipe: { id: r.pick([1, 42, 123, 1234, 'abc']), arguments: { slug: r.pick(['my-exp', 'bug-1637316']) } },
  };
}

/** Top-level variables. Each has a typical type; cases sometimes perturb it. */
const VAR_SLOTS = {
  normandy: (r) => genNormandy(r),
  a: (r) => genScalar(r),
  b: (r) => genScalar(r),
  n: (r) => r.pick(CONTEXT_NUMBERS),
  i: (r) => r.int(-3, 12),
  s: (r) => r.pick(CONTEXT_STRINGS),
  flag: (r) => r.chance(0.5),
  z: () => null,
  nums: (r) => genArrayOf(r, 'numbers'),
  strs: (r) => genArrayOf(r, 'strings'),
  objs: (r) => genArrayOf(r, 'objects'),
  mixed: (r) => genArrayOf(r, 'mixed'),
  empty: (r) => (r.chance(0.5) ? [] : {}),
  obj: (r) => ({ ...genRecord(r, 2, false), ...genObject(r, 1, false) }),
  deep: (r) => ({ x: { y: { z: genValue(r, 1, false), list: genArray(r, 1, false) } }, k: 'x' }),
  map: (r) => genObject(r, 1, true),
};

function genArrayOf(r, kind) {
  for (;;) {
    const a = genArray(r, 1, false);
    if (a.length === 0 && r.chance(0.7)) continue;
    if (kind === 'numbers' && a.some((x) => typeof x !== 'number')) continue;
    if (kind === 'strings' && a.some((x) => typeof x !== 'string')) continue;
    if (kind === 'objects' && !a.some((x) => x && typeof x === 'object' && !Array.isArray(x))) continue;
    return a;
  }
}

function genVars(r, intKeys) {
  const vars = {};
  for (const [name, gen] of Object.entries(VAR_SLOTS)) {
    const roll = r.float();
    if (roll < 0.06) continue; // missing: the identifier evaluates to undefined
    if (roll < 0.09) vars[name] = null;
    else if (roll < 0.14) vars[name] = genValue(r, 2, intKeys);
    else vars[name] = gen(r);
    if (name === 'map' && !intKeys) vars[name] = genObject(r, 1, false);
  }
  if (vars.normandy && r.chance(0.5)) vars.env = JSON.parse(JSON.stringify(vars.normandy));
  return vars;
}

function genPrefs(r) {
  const prefs = {};
  for (const name of PREF_NAMES) {
    if (r.chance(0.2)) continue;
    const kind = r.pick(['bool', 'int', 'string']);
    const val = () =>
      kind === 'bool' ? r.chance(0.5) : kind === 'int' ? r.int(-2, 5) : r.pick(['', 'a', 'https://x.example', 'US', '1']);
    const entry = {};
    if (name === 'only.user') entry.user = val();
    else if (name === 'only.default') entry.default = val();
    else {
      if (r.chance(0.85)) entry.default = val();
      if (r.chance(0.45)) entry.user = val();
    }
    prefs[name] = entry;
  }
  return prefs;
}

// ---------------------------------------------------------------------------
// Expressions
//
// Generated fragments are {src, kind, endsT}: `kind` says what may follow syntactically
// ('path' may be indexed/filtered, 'transform' too, 'atom' is a literal or parenthesised
// expression, 'op' anything with operators), `endsT` whether the text ends in a transform,
// after which mozjexl's grammar does not accept `?`.

const frag = (src, kind, endsT = false) => ({ src, kind, endsT });

/** Features used by the case being generated (for the coverage statistics). */
let used = new Set();
const use = (feature) => used.add(feature);

const IDENT_OK = /^[a-zA-Z_$][a-zA-Z0-9_$]*$/;
const RESERVED = new Set(['true', 'false', 'in', 'intersect']);

/** Source text of a string literal whose mozjexl value we do not need to know in advance. */
function stringLiteral(r, content) {
  if (content === undefined) {
    content = r.weighted([
      [10, () => r.pick(CONTEXT_STRINGS.filter((s) => !/[\n\t\\]/.test(s)))],
      [2, () => r.pick(OBJECT_KEYS)],
      [1, () => r.pick(UUIDS)],
      [2, () => 'tricky'],
    ])();
  }
  const q = r.chance(0.7) ? '"' : "'";
  if (content === 'tricky') {
    // Escaped quotes and backslashes: mozjexl unescapes every \<quote> but only the FIRST \\.
    const parts = [];
    const n = r.int(1, 4);
    for (let i = 0; i < n; i++) {
      parts.push(
        r.pick(['a', ' ', 'b c', `\\${q}`, q === '"' ? "'" : '"', '\\\\', '\\n', '\\t', '\\x', 'é', '😀', '#', '|', '.'])
      );
    }
    use('string with escapes');
    return q + parts.join('') + q;
  }
  // Escape the quote character; use \\ for backslashes (correct for the first one only,
  // which is exactly the kind of thing the oracle decides for us).
  return q + content.replace(/\\/g, '\\\\').replaceAll(q, `\\${q}`) + q;
}

function stringLit(r, content) {
  return frag(stringLiteral(r, content), 'atom');
}

const NUMBER_LITERALS = [
  '0', '1', '2', '3', '4', '5', '10', '42', '100', '1000', '0.1', '0.2', '0.5', '1.5', '2.5', '3.14',
  '007', '1.0', '2.50', '0.30000000000000004', '9007199254740993', '123456789012345680000', '0.000001',
  '255', '65536', '10000',
];

function numberLit(r, allowNegative = true) {
  let s = r.pick(NUMBER_LITERALS);
  if (allowNegative && r.chance(0.15)) {
    use('negative literal');
    s = r.pick(['-', '-', '- ', '- -', '--']) + s;
  }
  return frag(s, 'atom');
}

function literal(r) {
  return r.weighted([
    [5, () => numberLit(r)],
    [5, () => stringLit(r)],
    [2, () => frag(r.pick(['true', 'false']), 'atom')],
    // mozjexl has no null/undefined literals: these are identifiers (usually undefined).
    [0.5, () => (use('null/undefined identifier'), frag(r.pick(['null', 'undefined', 'NaN', 'Infinity']), 'path'))],
  ])();
}

/** A member chain into the context, usually following keys that exist. */
function path(r, vars, opts = {}) {
  const names = Object.keys(vars);
  let name;
  if (opts.arrayish) {
    const arrays = names.filter((k) => Array.isArray(vars[k]));
    name = arrays.length && r.chance(0.85) ? r.pick(arrays) : r.pick(names.length ? names : ['nums']);
  } else {
    name = names.length && r.chance(0.9) ? r.pick(names) : r.pick(['missing', 'nope', 'x', 'undefined']);
  }
  if (!(name in vars)) use('missing variable');
  let src = r.chance(0.05) ? (use('relative identifier at top level'), `.${name}`) : name;
  let cur = vars[name];
  const steps = opts.steps ?? r.weighted([
    [3, 0],
    [4, 1],
    [3, 2],
    [1, 3],
  ]);
  for (let i = 0; i < steps; i++) {
    if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
      const keys = Object.keys(cur);
      const key = keys.length && r.chance(0.85) ? r.pick(keys) : r.pick(MISSING_KEYS);
      if (!(key in cur)) use('missing key');
      if (IDENT_OK.test(key) && !RESERVED.has(key) && r.chance(0.85)) src += `.${key}`;
      else src += (use('member by ["key"]'), `[${stringLiteral(r, key)}]`);
      cur = cur[key];
    } else if (Array.isArray(cur)) {
      const choice = r.weighted([
        [4, 'index'],
        [1, 'dot'],
        [2, 'filter'],
      ]);
      if (choice === 'index' || cur.length === 0) {
        const idx = r.chance(0.85) ? r.int(0, Math.max(0, cur.length - 1)) : r.pick([-1, cur.length, 0.5, '"0"', '"length"']);
        use('array index');
        src += `[${idx}]`;
        cur = typeof idx === 'number' ? cur[idx] : undefined;
      } else if (choice === 'dot') {
        const first = cur[0];
        const key =
          first && typeof first === 'object' && !Array.isArray(first) && Object.keys(first).length && r.chance(0.8)
            ? r.pick(Object.keys(first))
            : r.pick(OBJECT_KEYS);
        use('member of array (first element)');
        src += IDENT_OK.test(key) && !RESERVED.has(key) ? `.${key}` : `[${stringLiteral(r, key)}]`;
        cur = first && typeof first === 'object' ? first[key] : undefined;
      } else {
        src += `[${relativeFilter(r, cur, vars).src}]`;
        cur = cur.filter(() => false);
      }
    } else {
      if (typeof cur === 'string' && r.chance(0.3)) {
        use('string .length');
        src += '.length';
        cur = cur.length;
      } else {
        use(cur === null ? 'member of null' : 'member of primitive/undefined');
        src += `.${r.pick(OBJECT_KEYS)}`;
        cur = undefined;
      }
      break;
    }
  }
  return { ...frag(src, 'path'), value: cur };
}

/** A literal that is plausibly comparable with `value` (often equal to it). */
function literalLike(r, value) {
  if (typeof value === 'number' && Number.isFinite(value) && r.chance(0.7)) {
    const v = r.chance(0.5) ? value : value + r.pick([1, -1, 0.5]);
    return frag(v < 0 ? `(${numberText(v)})` : numberText(v), 'atom');
  }
  if (typeof value === 'string' && r.chance(0.7)) {
    return stringLit(r, r.chance(0.6) ? value : r.pick(CONTEXT_STRINGS));
  }
  if (typeof value === 'boolean' && r.chance(0.7)) return frag(String(r.chance(0.5) ? value : !value), 'atom');
  return literal(r);
}

function numberText(v) {
  // Lexer numerals have no exponent: write small-exponent numbers in plain decimal.
  const s = String(v);
  if (!/e/.test(s)) return s;
  return v.toFixed(Math.min(20, Math.max(0, -Math.floor(Math.log10(Math.abs(v))) + 3)));
}

/** A filter body over the elements of `list`, using relative identifiers. */
function relativeFilter(r, list, vars) {
  const sample = list.find((x) => x && typeof x === 'object' && !Array.isArray(x));
  const keys = sample ? Object.keys(sample).filter((k) => IDENT_OK.test(k) && !RESERVED.has(k)) : [];
  const key = () => (keys.length && r.chance(0.85) ? r.pick(keys) : r.pick(['a', 'b', 'name', 'nope']));
  const cmp = () => {
    const k = key();
    const v = sample ? sample[k] : undefined;
    const op = r.pick(['==', '==', '!=', '>', '<', '>=', '<=', 'in']);
    if (op === 'in') {
      const rhs = r.chance(0.5) ? `[${literalLike(r, v).src}, ${literalLike(r, v).src}]` : stringLit(r).src;
      return `.${k} in ${rhs}`;
    }
    return `.${k} ${op} ${literalLike(r, v).src}`;
  };
  use('filter');
  const body = r.weighted([
    [5, () => cmp()],
    [2, () => `${cmp()} ${r.pick(['&&', '||'])} ${cmp()}`],
    [1, () => `.${key()}`],
    [1, () => `!.${key()}`],
    // A relative identifier inside parentheses or a nested operand position does not mark
    // the filter relative in mozjexl's parser: the filter becomes a static one.
    [0.6, () => (use('filter with parenthesised relative (static)'), `(${cmp()})`)],
    [0.4, () => (use('filter with relative in ternary branch (static)'), `${randomExpr(r, vars, 1).src} ? .${key()} : false`)],
    [0.6, () => `.${key()}|length > 0`],
    [0.6, () => (use('nested filter'), `.${key()}[${r.chance(0.5) ? 0 : `.${key()} == 1`}]`)],
  ])();
  return frag(body, 'op');
}

const BINARY_OPS = [
  [6, '=='], [3, '!='], [3, '<'], [2, '<='], [3, '>'], [2, '>='],
  [4, '+'], [3, '-'], [3, '*'], [2, '/'], [2, '//'], [2, '%'], [2, '^'],
  [4, '&&'], [4, '||'], [4, 'in'], [2, 'intersect'],
];

const TRANSFORMS = [
  [3, 'keys'], [3, 'values'], [3, 'length'], [3, 'mapToProperty'], [3, 'regExpMatch'],
  [3, 'stableSample'], [3, 'bucketSample'], [3, 'preferenceValue'], [2, 'preferenceIsUserSet'],
  [2, 'preferenceExists'], [3, 'date'], [3, 'versionCompare'], [0.5, 'unknownTransform'],
];

const VERSIONS = [
  '1.0', '1', '1.0.0', '1.1', '0.9', '2.0', '47.0.1', '70', '70.0', '70.!', '70.*', '93.!', '93.0b5',
  '93.0-beta', '113.0a1', '113', '113.0a0', '128.0', '91.0.2', '1.0pre1', '1.1pre', '1.0+', '12+',
  '13pre', '1.0.0-beta', '28.0esr', '3.6.*', '2147483648', '', '1..2', '1.', '*', ' 5', 'pre', '3.0.-1',
];

const REGEX_PATTERNS = [
  '^a', 'b+', 'a|b', '[a-z]+', '^$', '(a)|(b)', '.', 'x', '^[A-Z]', 'c$', '(\\d+)\\.(\\d+)', '\\d',
  '\\w+', '\\s', 'fire', '^en-', 'é', '[^a]', 'a{2}', '(?:ab)+',
  // Invalid in JavaScript: the transform throws.
  '(', '[a-', 'a{2,1}',
  // Valid in JavaScript, unsupported by many non-backtracking engines.
  '(a)\\1', 'a(?=b)', '(?<n>a)',
];

function transformCall(r, vars, subject, depth) {
  const name = r.weighted(TRANSFORMS);
  use(`|${name}`);
  const arg = () => randomExpr(r, vars, Math.max(0, depth - 2)).src;
  let args = null;
  let subj = subject;
  switch (name) {
    case 'mapToProperty':
      args = [r.chance(0.85) ? stringLit(r, r.pick([...OBJECT_KEYS, 'length', '0'])).src : r.pick(['0', '1', arg()])];
      if (!subj) subj = path(r, vars, { arrayish: true });
      break;
    case 'regExpMatch': {
      const pat = r.pick(REGEX_PATTERNS);
      args = [r.chance(0.9) ? `${r.pick(['"', "'"])}${pat}`.replace(/^(.)(.*)$/, (m, q, p) => q + p + q) : arg()];
      if (r.chance(0.4)) args.push(stringLit(r, r.pick(['', 'i', 'g', 'gi', 'm', 'z', 'gg'])).src);
      if (!subj) {
        subj = r.chance(0.6) ? stringLit(r, r.pick(CONTEXT_STRINGS.filter((s) => !s.includes('\\')))) : path(r, vars);
      }
      break;
    }
    case 'stableSample':
      args = r.chance(0.9) ? [r.pick(['0', '1', '0.5', '0.1', '0.99', '0.0001', '2', '-1', '"0.5"', 'n', 'true'])] : [];
      if (!subj) subj = samplingInput(r, vars);
      break;
    case 'bucketSample': {
      const triple = r.pick([
        ['0', '10', '10'], ['0', '0', '10'], ['0', '5', '10'], ['5', '5', '10'], ['7', '5', '10'],
        ['8', '4', '10'], ['18', '4', '10'], ['0', '5000', '10000'], ['7000', '5000', '10000'],
        ['0', '2000', '10000'], ['1', '1', '0'], ['"1"', '"5"', '10'], ['-2', '3', '10'], ['0', '1', '3'],
      ]);
      args = r.chance(0.95) ? triple : triple.slice(0, r.int(0, 2));
      if (!subj) subj = samplingInput(r, vars);
      break;
    }
    case 'preferenceValue':
      args = r.chance(0.5) ? [] : [literal(r).src];
      if (!subj) subj = prefName(r);
      break;
    case 'preferenceIsUserSet':
    case 'preferenceExists':
      args = [];
      if (!subj) subj = prefName(r);
      break;
    case 'date':
      args = [];
      if (!subj) subj = dateInput(r);
      break;
    case 'versionCompare':
      args = r.chance(0.95) ? [stringLit(r, r.pick(VERSIONS)).src] : r.pick([[], ['70'], ['1.5']]);
      if (!subj) subj = r.chance(0.6) ? stringLit(r, r.pick(VERSIONS)) : frag(r.pick(['normandy.version', 'env.version']), 'path');
      break;
    case 'unknownTransform':
      args = r.chance(0.5) ? [] : [arg()];
      break;
    default: // keys, values, length
      args = r.chance(0.1) ? [arg()] : [];
  }
  if (!subj) subj = operandFor(r, vars, depth - 1);
  const tname = name === 'unknownTransform' ? r.pick(['nope', 'versionCompareX', 'Keys']) : name;
  if (name === 'versionCompare' && r.chance(0.7)) {
    // How filters use it: the sign compared with 0.
    const call = `${wrapForPipe(r, subj).src}|versionCompare${args.length ? `(${args.join(', ')})` : ''}`;
    return frag(`${call} ${r.pick(['<', '>', '<=', '>=', '==', '!='])} 0`, 'op');
  }
  const argText = args.length ? `(${args.join(r.pick([', ', ',']))})` : r.chance(0.1) ? '()' : '';
  return frag(`${wrapForPipe(r, subj).src}|${tname}${argText}`, 'transform', true);
}

function wrapForPipe(r, f) {
  if ((f.kind === 'op' || f.kind === 'ternary') && r.chance(0.9)) return frag(`(${f.src})`, 'atom');
  return f;
}

function samplingInput(r, vars) {
  return r.weighted([
    [4, () => frag('[normandy.userId, normandy.recipe.id]', 'atom')],
    [2, () => frag(`["global-v4", normandy.userId]`, 'atom')],
    [2, () => stringLit(r, r.pick(['test', 'test-0', 'test-1', 'test-4', 'abc', ''].concat(UUIDS)))],
    [1, () => frag(r.pick(['["test"]', '["test-1"]', '["test-4"]', '[1234, "test_namespace"]', '{id: 1234, namespace: "experiment"}']), 'atom')],
    [2, () => path(r, vars)],
    [1, () => literal(r)],
  ])();
}

function prefName(r) {
  const name = r.chance(0.8) ? r.pick(PREF_NAMES) : r.pick(MISSING_PREFS);
  return stringLit(r, name);
}

const DATE_STRINGS = [
  '2020-01-01', '2020-01-01T12:00:00Z', '2020-01-01T12:00:00', '2020-01-01T12:00:00.123+02:00',
  '2019-12-31T23:59:59.999Z', '2021-06-15T08:30Z', '2020-01', '2020', '1970-01-01T00:00:00Z',
  '2030-02-28T00:00:00-05:00', '', 'not a date', 'yesterday',
];

function dateInput(r) {
  return r.weighted([
    [6, () => stringLit(r, r.pick(DATE_STRINGS))],
    [2, () => frag(r.pick(['0', '1577836800000', '1593561600000', '86400000']), 'atom')],
    [1, () => frag(r.pick(['true', 'missing', '(1577836800000 + 1)']), 'atom')],
  ])();
}

/** Two date transforms compared: the only context in which dates have portable meaning. */
function dateComparison(r) {
  const op = r.pick(['<', '>', '<=', '>=', '-', '==', '!=']);
  use('date comparison');
  const rhs = r.chance(0.8) ? `${dateInput(r).src}|date` : r.pick(['0', '1577836800000', 'n']);
  return frag(`${dateInput(r).src}|date ${op} ${rhs}`, 'op');
}

function arrayLiteral(r, vars, depth) {
  const n = r.weighted([[1, 0], [3, 1], [4, 2], [3, 3], [1, 4]]);
  const items = [];
  for (let i = 0; i < n; i++) items.push(randomExpr(r, vars, depth - 1).src);
  let src = `[${items.join(r.pick([', ', ',', ' , ']))}]`;
  if (r.chance(0.03)) src = src.replace(/^\[/, '[,');
  if (n > 0 && r.chance(0.03)) src = src.replace(/\]$/, ',]');
  use('array literal');
  return frag(src, 'atom');
}

function objectLiteral(r, vars, depth) {
  const n = r.weighted([[1, 0], [3, 1], [3, 2], [1, 3]]);
  const items = [];
  for (let i = 0; i < n; i++) items.push(`${r.pick(OBJECT_KEYS)}: ${randomExpr(r, vars, depth - 1).src}`);
  use('object literal');
  return frag(`{${items.join(', ')}}`, 'atom');
}

/** An operand: a leaf, or a compound wrapped in parentheses. */
function operandFor(r, vars, depth) {
  if (depth <= 0) {
    return r.weighted([
      [5, () => path(r, vars)],
      [4, () => literal(r)],
    ])();
  }
  return r.weighted([
    [5, () => path(r, vars)],
    [3, () => literal(r)],
    [1, () => arrayLiteral(r, vars, depth)],
    [0.5, () => objectLiteral(r, vars, depth)],
    [2, () => transformCall(r, vars, null, depth)],
    [1, () => staticIndex(r, vars, depth)],
    [2, () => paren(randomExpr(r, vars, depth - 1))],
  ])();
}

function paren(f) {
  return frag(`(${f.src})`, 'atom');
}

/** `subject[expr]` with a non-relative expression: index, key or boolean test. */
function staticIndex(r, vars, depth) {
  use('static index [expr]');
  const subj = r.chance(0.8) ? path(r, vars, { steps: r.int(0, 1) }) : transformCall(r, vars, null, depth - 1);
  const idx = r.weighted([
    [3, () => String(r.int(0, 3))],
    [2, () => stringLit(r, r.pick([...OBJECT_KEYS, 'length', '0', '1', 'x@y.com'])).src],
    [2, () => randomExpr(r, vars, Math.max(0, depth - 2)).src],
    [1, () => r.pick(['true', 'false', '1 == 1', '-1', '0.5', '"-0"', 'k', 'deep.k', '[0]', '["a"]', 'null', '{}'])],
  ])();
  return frag(`${subj.src}[${idx}]`, 'path');
}

function binary(r, vars, depth) {
  const op = r.weighted(BINARY_OPS);
  use(`op ${op}`);
  const left = randomExpr(r, vars, depth - 1);
  const right = randomExpr(r, vars, depth - 1);
  // Usually parenthesise compound operands; sometimes leave it to mozjexl's precedence.
  const side = (f) => {
    if (f.kind !== 'op' && f.kind !== 'ternary') return f;
    if (r.chance(0.75)) return paren(f);
    use('unparenthesised nested operators');
    return f;
  };
  const l = side(left);
  const rr = side(right);
  const sp = /^[a-z]/.test(op) ? ' ' : r.weighted([[8, ' '], [1, ''], [0.3, '  ']]);
  return frag(`${l.src}${sp}${op}${sp}${rr.src}`, 'op', rr.endsT);
}

function unary(r, vars, depth) {
  const bangs = r.weighted([[6, '!'], [2, '!!'], [0.5, '!!!'], [0.5, '! ']]);
  use(bangs.length > 1 && bangs !== '! ' ? 'unary ! stacked' : 'unary !');
  const inner = r.chance(0.7) ? operandFor(r, vars, depth - 1) : randomExpr(r, vars, depth - 1);
  const f = inner.kind === 'op' || inner.kind === 'ternary' ? (r.chance(0.85) ? paren(inner) : inner) : inner;
  return frag(`${bangs}${f.src}`, 'op', f.endsT);
}

function ternary(r, vars, depth) {
  let test = randomExpr(r, vars, depth - 1);
  // `?` is not accepted right after a transform: parenthesise, except rarely (a parse error).
  if (test.endsT && r.chance(0.95)) test = paren(test);
  else if (test.kind === 'ternary') test = paren(test);
  const cons = randomExpr(r, vars, depth - 1);
  const alt = randomExpr(r, vars, depth - 1);
  if (r.chance(0.05)) {
    use('elvis ?:');
    return frag(`${test.src} ?: ${alt.src}`, 'ternary', alt.endsT);
  }
  use('ternary');
  return frag(`${test.src} ? ${cons.src} : ${alt.src}`, 'ternary', alt.endsT);
}

function filterExpr(r, vars) {
  const p = path(r, vars, { arrayish: true, steps: r.weighted([[3, 0], [1, 1]]) });
  const list = Array.isArray(p.value) ? p.value : [p.value];
  let src = `${p.src}[${relativeFilter(r, list, vars).src}]`;
  const tail = r.weighted([
    [4, ''],
    [1, `.${r.pick(['a', 'b', 'name', 'nope'])}`],
    [1, '[0]'],
    [1, '|length'],
    [1, `|mapToProperty(${stringLit(r, r.pick(['a', 'name'])).src})`],
  ]);
  src += tail;
  return frag(src, tail.startsWith('|') ? 'transform' : 'path', tail.startsWith('|'));
}

function randomExpr(r, vars, depth) {
  if (depth <= 0) return operandFor(r, vars, 0);
  return r.weighted([
    [4, () => operandFor(r, vars, depth)],
    [8, () => binary(r, vars, depth)],
    [2, () => unary(r, vars, depth)],
    [2, () => ternary(r, vars, depth)],
    [2, () => filterExpr(r, vars)],
    [1, () => dateComparison(r)],
    [0.5, () => selfComparison(r, vars)],
  ])();
}

/** Identity: the same context object compared with itself, or filtered/intersected. */
function selfComparison(r, vars) {
  const p = path(r, vars, { arrayish: true, steps: 0 });
  use('identity of context values');
  return frag(
    r.pick([
      `${p.src} == ${p.src}`,
      `${p.src} != ${p.src}`,
      `${p.src} intersect ${p.src}`,
      `${p.src}[0] == ${p.src}[0]`,
      `${p.src}[0] in ${p.src}`,
      `${p.src} in [${p.src}]`,
      `[${p.src}] intersect [${p.src}]`,
      `${p.src}|values == ${p.src}`,
    ]),
    'op'
  );
}

// ---------------------------------------------------------------------------
// Realistic Normandy filters

function realistic(r) {
  const pick = () =>
    r.pick([
      'normandy.channel in ["release", "beta"]',
      'normandy.channel == "nightly"',
      '[normandy.userId, normandy.recipe.id]|stableSample(0.5)',
      '[normandy.userId, normandy.recipe.id]|stableSample(0.05)',
      '["global-v4", normandy.userId]|bucketSample(0, 5000, 10000)',
      '["global-v4", normandy.userId]|bucketSample(7000, 5000, 10000)',
      '"app.shield.optoutstudies.enabled"|preferenceValue',
      '"app.normandy.enabled"|preferenceValue(true) == true',
      '"browser.startup.page"|preferenceIsUserSet',
      '"network.trr.mode"|preferenceExists',
      '!("extensions.pocket.enabled"|preferenceValue(false))',
      'normandy.telemetry.main.environment.settings.isDefaultBrowser',
      'normandy.telemetry.main.environment.profile.creationDate > 17000',
      'normandy.addons["uBlock0@raymondhill.net"].isActive',
      'normandy.addons|keys|length > 0',
      'normandy.addons|values|mapToProperty("isActive")',
      '"uBlock0@raymondhill.net" in normandy.addons|keys',
      'normandy.experiments.active intersect ["pref-flip-a", "rollout-x"]',
      '(normandy.experiments.all intersect ["addon-study"])|length == 0',
      'normandy.locale in ["en-US", "en-GB"] && normandy.country == "US"',
      '!normandy.isFirstRun',
      'normandy.isFirstRun == false',
      'normandy.searchEngine in ["google", "bing"]',
      'normandy.syncTotalDevices > 0',
      'normandy.os.isWindows && normandy.os.windowsVersion >= 6.1',
      'normandy.version|regExpMatch("^(\\d+)\\.")[1] >= 70',
      'normandy.distribution == "default"',
      '"2020-01-01"|date < "2021-06-01T00:00:00Z"|date',
      'normandy.recipe.arguments.slug in ["my-exp", "other"]',
      'normandy.doNotTrack || normandy.syncSetup',
      'normandy.addons[.isActive]|length',
      'normandy.version|versionCompare("70.!") >= 0',
      '(normandy.version|versionCompare("93.!") >= 0) && (normandy.version|versionCompare("113.*") < 0)',
      'env.version|versionCompare("113.0a1") == 0',
      'normandy.addons|values[.type == "theme"]|mapToProperty("id")',
    ]);
  const n = r.weighted([[4, 1], [4, 2], [2, 3]]);
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(pick());
  let src = parts.map((p) => (n > 1 ? `(${p})` : p)).join(` ${r.pick(['&&', '||'])} `);
  if (r.chance(0.1)) src = src.replaceAll('normandy.', 'env.');
  if (r.chance(0.1)) {
    use('comment');
    src += ' # comment';
  }
  return src;
}

// ---------------------------------------------------------------------------
// Quirks: expressions pinning one JavaScript or mozjexl rule each, over random contexts.

const QUIRKS = [
  // Loose equality and relational coercions
  '"1" == 1', '1 == "1.0"', '"" == 0', '"0" == false', 'true == 1', '[] == false', '[1] == 1',
  '[1,2] == "1,2"', '{} == "[object Object]"', 'undefined == null', 'z == undefined', 'z == 0',
  '"10" < "9"', '"10" < 9', '"abc" < "abd"', '"B" < "a"', '"a" < 1', 'true > false', '[2] > 1',
  '[1,2] < [1,3]', '{} >= {}', 'z >= 0', 'z <= 0', 'missing < 1', 'missing >= missing',
  '"😀" < "ｆ"', '"ｆ" < "😀"', '"é" > "z"', '(0/0) == (0/0)', '(0/0) != (0/0)', '(0/0) < 1',
  // Arithmetic and string conversion
  '0.1 + 0.2', '1 + "2"', '1 + 2 + "3"', '"3" - 1', '"3" * "4"', '" 12 " * 1', '"0x10" - 0',
  '"1e3" - 0', '"Infinity" * 1', '"-0" * 1', '".5" - 0', '"5." - 0', '"" - 1', '"a" - 1',
  'true + true', 'z + 1', 'missing + 1', '"a" + z', '"a" + missing', '[1,2] + 1', '[1,2] + [3]',
  '{} + 1', '{} + []', '[] - 1', '[5] * 2', '[[1,2],[3]] + ""', '[z] + 1', '0 * -1', '1 / (0 * -1)',
  '-0 + 0', '1 / 0', '-1 / 0', '0 / 0', '5 // 0', '-5 // 2', '7 // 2', '7.5 // 2', '-5 % 3',
  '5.5 % 2', '5 % 0', '-5 % -3', '2 ^ 0.5', '2 ^ -1', '0 ^ 0', '(0/0) ^ 0', '1 ^ (1/0)',
  '(-8) ^ (1/3)', '-2 ^ 2', '2 ^ 3 ^ 2', '10 ^ 21', '10 ^ -7', '1 - 2 - 3', '2 * 3 % 4',
  '1 + 2 * 3 ^ 2 % 5', '1000000000000000000000 + ""', '0.0000001 + ""', '123456789012345680000 + ""',
  '0.000001 + ""', '1.5e300 * 1e10', '9007199254740993 + ""', '100 / 3', '1 / 3 * 3',
  '"😀".length', 's.length', 'strs.length', 'nums.length', '"abc".length + 1',
  // Logical operators return operands; no short-circuit
  '0 || "x"', '"" && 1', 'z || missing', 'missing && z', '[] && {}', '0 || 0 || "last"',
  'false && z.a', 'true || z.a', '!z', '!!missing', '!"0"', '!!(0/0)', '![]', '!{}',
  // in and intersect
  '1 in "123"', '"" in ""', 'missing in "undefined"', 'z in "null"', '"a" in {a: 1}', 'z in [z]',
  'missing in [z]', '"1" in [1, 2]', '1 in 5', '[1] in [[1]]', '"b" in strs', 's in strs',
  '[0/0] intersect [0/0]', '[0] intersect [0 * -1]', '["1"] intersect [1]', 'nums intersect nums',
  'objs intersect objs', 'nums intersect [1, 2, 3]', 'strs intersect "abc"', 'nums intersect missing',
  '[1, 1, 2] intersect [1]', 'normandy.experiments.all intersect normandy.experiments.active',
  // Member access and indexing
  'nums[0]', 'nums[-1]', 'nums[0.5]', 'nums["0"]', 'nums["length"]', 'nums[1 == 1]', 'nums[1 == 2]',
  'nums[[0]]', 'obj[["a"]]', 'obj["a"]', 'obj[{}]', 's[0]', 's["length"]', 's[100]', 'n[0]',
  'flag[0]', 'z[0]', 'missing[0]', 'missing.a.b', 'z.a', 'objs.a', 'objs.name', '[].a', '[z].a',
  '[{a: 1}].a', '{a: {b: 2}}.a.b', '"abc".nope', '(1).a', 'nums[(0)]', 'nums[nums[0]]',
  // Property keys: ToPropertyKey of the index value
  'nums["1.0"]', 'nums["01"]', 'nums[1.0]', 'nums[0 * -1]', 'nums["-0"]', 'nums[2147483648]',
  's[0 * -1]', 's[0.5]', 's["0"]', 'map[1]', 'map[10]', 'map["1"]', 'obj[z]', 'obj[missing]',
  'obj["a"] == obj.a', 'deep[deep.k].y', 'deep["x"]["y"]',
  // Reference identity: == and intersect compare objects by reference
  '[1] == [1]', '[] == []', '{} == {}', '{a: nums}.a == nums', 'nums == [nums][0]', 'obj == obj',
  'objs intersect [objs[0]]', 'objs[.a > 0] intersect objs', 'objs|mapToProperty("tags") intersect objs|mapToProperty("tags")',
  'obj|values intersect obj|values', 'deep.x.y == deep.x.y', 'deep.x == deep["x"]', 'objs[0] in objs',
  'objs[0] in [objs[0]]', '{a: 1} in [{a: 1}]',
  // Filters: relative identifiers, falsy elements fall back to the root context
  'nums[.a]', 'mixed[.a]', 'strs[.length > 1]', 'objs[.a]', 'objs[.a == 1]', 'objs[.a == a]',
  'objs[(.a == 1)]', 'objs[.a > 0 ? true : false]', 'objs[true ? .a : false]', 'objs[.tags[0]]',
  'obj[.a]', 'z[.a]', 'missing[.a]', 'n[.a]', 'objs[.a][0].b', 'objs[.a].name', 'objs[.nope]',
  'deep.x.y.list[.a >= 2]', 'normandy.addons[.isActive]', 'objs[.a == 1 || .b == 2]|length',
  // Transforms: argument handling and odd subjects
  'nums|keys', 'strs|values', 'obj|keys', 'obj|values', 's|keys', 'z|keys', 'missing|values',
  '"2020-01-01"|date|keys', 'nums|length', 'obj|length', 's|length', 'objs|mapToProperty("a")',
  'strs|mapToProperty("length")', 'strs|mapToProperty(0)', 'mixed|mapToProperty("a")',
  'nums|keys()', 'nums|length(1, 2)', 'missing|nope', 'false ? missing|nope : 1',
  's|regExpMatch("a")', 's|regExpMatch("a", "g")', 'n|regExpMatch("1")', 'missing|regExpMatch("a")',
  '"abcabc"|regExpMatch("(b)(x)?")', '"ABC"|regExpMatch("b", "i")', '"a1b22"|regExpMatch("\\d+", "g")',
  '"x"|regExpMatch("(")', '"x"|regExpMatch("x", "q")', '"٣"|regExpMatch("\\d")', '"é"|regExpMatch("\\w")',
  '"ſ"|regExpMatch("s", "i")', '"\u212a"|regExpMatch("k", "i")', '"a\nb"|regExpMatch("^b", "m")',
  'missing|stableSample(0.5)', 'z|stableSample(0.5)', '"2020-01-01"|date|stableSample(0.5)',
  '"x"|date|stableSample(0.5)', 'nums|stableSample(0.5)', '{b: 1, a: 2}|stableSample(0.5)',
  '0.1|stableSample(0.5)', '(0/0)|stableSample(0.5)', '"test"|stableSample', '"test"|stableSample(1.5)',
  '"test"|bucketSample(0, 10, 0)', '"test"|bucketSample("0", "5", "10")', '"test"|bucketSample(9, 3, 10)',
  '"only.user"|preferenceValue', '"only.default"|preferenceIsUserSet', '"does.not.exist"|preferenceValue(z)',
  '["a.b", "only.user"]|length', '"1.0"|versionCompare("1")', '"2"|versionCompare(10)',
  '(2)|versionCompare("10")',
  // Ternaries and grammar corners
  '1 ? 2 : 3 ? 4 : 5', '0 ? 2 : 0 ? 4 : 5', 'z ?: "default"', 's ?: "empty"', '(1 ? 2 : 3) + 1',
  '1 ? 2 : 3 + 1', '1 + 1 ? "t" : "f"', '!0 ? "t" : "f"', '[1, 2 ? 3 : 4]', '{a: 0 ? 1 : 2}',
  '- 1', '--1', '- -1', '1 - -1', '1--1', '2 * -3', '-1 ^ 2', '(-1)', '[-1]', '{a: -1}',
  '!-1', '1 == -1', '- 0', '-0.5 + 1', '"a" # trailing comment',
];

// ---------------------------------------------------------------------------
// Syntax errors and lexer corner cases (the oracle decides which of these are errors)

function syntax(r, vars) {
  const base = randomExpr(r, vars, r.int(1, 3)).src;
  return r.weighted([
    [3, () => r.pick([
      '', ' ', '1 +', '+ 1', '(1', '1)', '[1, 2', '{a: 1', '{a 1}', '{"a": 1}', '{in: 1}', 'a b',
      '1e21', '1e-7', '.5', '5.', '-x', '-(1)', '-"a"', '-true', '[1, -1]', 'x|keys(1, -1)',
      '[1,2][0]', '(nums)[0]', '"abc"[0]', 'nums|keys ? 1 : 2', 'a ? b', 'a ? : b', '?', ':', '!',
      'a..b', 'a.', '.', '|keys', 'a|', 'a|(keys)', 'a|1', 'a[]', 'a[.]', '"unterminated', "'a\\'",
      '"a\\"', '"\\\\" + "x"', '1 # comment', '# only a comment', '1 #c\n + 2', '1 +\n2',
      '1\t+\t2', '1\u00a0+\u00a02', '1\ufeff+ 2', 'a in', 'in a', 'true false', 'nums[.a ==]',
      '{a: 1}.a', '{a: 1, a: 2}', '[,]', '[,,1]', '(1)(2)', 'a = 1', 'a === 1', 'a & b', 'a | b',
      '1 ++ 2', '1 -- 2', '!-1', '- - 1', '$', '$a', 'a$', '_', 'NaN', 'a.in', 'a.true', '{true: 1}',
      'a ? b : c ? d : e', '(a ? b : c) ? d : e', 'a ?: b ?: c', '1 ? 2 : 3 | length',
      '"a" "b"', '1 2', 'x|date(1,2,3)', '007 + 08', '0.1.2', '1..2', 'nums[0][0]', 'nums[0].a.b.c',
      // Whitespace is JavaScript's \s; identifiers are ASCII only.
      '1\u2028+\u20292', '1\v+\f2', '1\u3000+ 2', '1\u0085+2', '1\u200b+2', 'café', 'ａ', 'a\u00a0.b',
      '00', '0.', '.0', '1_000', '0.1000000000000000055511151231257827', '1' + '0'.repeat(400),
      '0.' + '0'.repeat(400) + '1', '"a" + \'b\'', "'it\\'s'", '"say \\"hi\\""', '"\\\\"',
      '"a\\\\b\\\\c"', '"tab\there"', '"new\nline"', 'a#comment', '"#notcomment"',
    ])],
    [3, () => {
      // Delete or duplicate one character (code point) of a valid expression.
      const chars = Array.from(base);
      const i = r.int(0, Math.max(0, chars.length - 1));
      if (r.chance(0.5)) chars.splice(i, 1);
      else chars.splice(i, 0, chars[i] ?? '');
      return chars.join('');
    }],
    [1, () => base + r.pick([' +', ' ?', ' |', ')', ']', ' ,', ' .', ' in'])],
    [1, () => r.pick(['(', '[', '!', '|keys ', '.']) + base],
  ])();
}

// ---------------------------------------------------------------------------
// Cases

function genCase(seed, id, attempt) {
  const r = new Rng(seed, id, attempt);
  used = new Set();
  const cat = r.weighted([
    [55, 'random'],
    [10, 'filter'],
    [10, 'transform'],
    [8, 'realistic'],
    [7, 'syntax'],
    [4, 'literal'],
    [6, 'quirks'],
    [3, 'int-keys'],
    [3, 'date'],
  ]);
  const vars = genVars(r, cat === 'int-keys');
  const prefs = genPrefs(r);
  let expr;
  switch (cat) {
    case 'filter':
      expr = filterExpr(r, vars).src;
      if (r.chance(0.4)) expr = `${expr} ${r.pick(['==', '&&', '||', 'intersect'])} ${randomExpr(r, vars, 2).src}`;
      break;
    case 'transform':
      expr = transformCall(r, vars, null, r.int(1, 3)).src;
      if (r.chance(0.3)) expr = transformCall(r, vars, frag(expr, 'transform', true), 1).src;
      break;
    case 'realistic':
      expr = realistic(r);
      break;
    case 'quirks':
      expr = r.pick(QUIRKS);
      break;
    case 'syntax':
      expr = syntax(r, vars);
      used = new Set(['syntax corner case']);
      break;
    case 'literal':
      expr = r.weighted([
        [3, () => literal(r).src],
        [2, () => arrayLiteral(r, vars, 2).src],
        [2, () => objectLiteral(r, vars, 2).src],
        [2, () => `${literal(r).src}${r.pick([' + ', ' == ', ' - ', ' * ', ' < ', ' in '])}${literal(r).src}`],
      ])();
      break;
    case 'int-keys':
      expr = r.weighted([
        [2, () => 'map'],
        [2, () => 'map|keys'],
        [2, () => 'map|values'],
        [1, () => '[map]|stableSample(0.5)'],
        [1, () => `map[${stringLit(r, r.pick(INT_LIKE_KEYS)).src}]`],
        [2, () => randomExpr(r, vars, 2).src],
      ])();
      break;
    case 'date':
      expr = r.chance(0.7) ? dateComparison(r).src : `${dateInput(r).src}|date`;
      break;
    default:
      expr = randomExpr(r, vars, r.int(1, 5)).src;
  }
  assertPortableNumbers(vars);
  const kept = prune(vars, expr);
  // For int-keys cases the JSON text lists keys in an order JavaScript would not keep:
  // JSON.parse puts integer-like keys first, in ascending order.
  const varsJson = cat === 'int-keys' ? shuffledJson(r, kept) : JSON.stringify(kept);
  return { cat, expr, varsJson, prefs: /preference/.test(expr) ? prefs : {}, features: [...used] };
}

function shuffledJson(r, value) {
  if (Array.isArray(value)) return `[${value.map((v) => shuffledJson(r, v)).join(',')}]`;
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const keys = Object.keys(value);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [keys[i], keys[j]] = [keys[j], keys[i]];
  }
  return `{${keys.map((k) => `${JSON.stringify(k)}:${shuffledJson(r, value[k])}`).join(',')}}`;
}

/**
 * Drops top-level variables the expression cannot reach, to keep the corpus small. mozjexl
 * only reads the context through identifiers written in the expression (relative
 * identifiers that fall back to the context too), so a name absent from the text as a
 * whole word is unreachable. Occurrences inside string literals just keep a variable.
 */
function prune(vars, expr) {
  const out = {};
  for (const [name, value] of Object.entries(vars)) {
    if (new RegExp(`(^|[^a-zA-Z0-9_$])${name.replace(/\$/g, '\\$')}($|[^a-zA-Z0-9_$])`).test(expr)) out[name] = value;
  }
  return out;
}

/** Every context number must read back as the same double in any JSON parser. */
function assertPortableNumbers(value) {
  if (typeof value === 'number') {
    const [mantissa, exp = '0'] = String(value).split('e');
    const digits = mantissa.replace(/^[-0.]+/, '').replace('.', '').replace(/0+$/, '');
    if (digits.length > 15 || Math.abs(Number(exp)) > 22) throw new Error(`non-portable context number ${value}`);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) assertPortableNumbers(v);
  }
}

function resultType(expected) {
  return expected.t;
}

function parseArgs(argv) {
  const opts = { count: 2000, seed: 1, out: null, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--count') opts.count = Number(val());
    else if (a === '--seed') opts.seed = Number(val());
    else if (a === '--out') opts.out = val();
    else if (a === '--only') opts.only = Number(val());
    else if (a === '--help' || a === '-h') {
      process.stderr.write('usage: node generate.mjs [--count N] [--seed S] [--out FILE] [--only ID]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const k of ['count', 'seed']) {
    if (!Number.isInteger(opts[k]) || opts[k] < 0) throw new Error(`--${k} must be a non-negative integer`);
  }
  return opts;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  await selfTest();
  const out = opts.out ? createWriteStream(opts.out) : process.stdout;
  const stats = { cats: {}, types: {}, catTypes: {}, rejected: {}, features: {} };
  const bump = (obj, key) => (obj[key] = (obj[key] || 0) + 1);
  const ids = opts.only !== null ? [opts.only] : Array.from({ length: opts.count }, (_, i) => i);
  const seen = new Set();
  let duplicates = 0;

  for (const id of ids) {
    let written = false;
    for (let attempt = 0; attempt < 50 && !written; attempt++) {
      const c = genCase(opts.seed, id, attempt);
      if (c.expr.length > 450) {
        bump(stats.rejected, 'too-long');
        continue;
      }
      if (LONE_SURROGATE.test(c.expr)) {
        // JSON cannot carry it to Rust (and Rust strings cannot hold it).
        bump(stats.rejected, 'lone-surrogate-in-expr');
        continue;
      }
      let expected;
      try {
        expected = await evaluate(c.expr, c.varsJson, c.prefs);
      } catch (err) {
        if (!(err instanceof Unsupported)) throw err;
        bump(stats.rejected, err.message);
        continue;
      }
      const head = JSON.stringify({ id, cat: c.cat, expr: c.expr });
      const tail = JSON.stringify({ prefs: c.prefs, expected });
      const line = `${head.slice(0, -1)},"vars":${c.varsJson},${tail.slice(1)}`;
      out.write(line + '\n');
      written = true;
      if (seen.has(c.expr)) duplicates++;
      seen.add(c.expr);
      bump(stats.cats, c.cat);
      bump(stats.types, resultType(expected));
      stats.catTypes[c.cat] ??= {};
      bump(stats.catTypes[c.cat], expected.t === 'error' ? 'error' : 'value');
      for (const f of c.features) {
        stats.features[f] ??= { cases: 0, values: 0 };
        stats.features[f].cases++;
        if (expected.t !== 'error') stats.features[f].values++;
      }
    }
    if (!written) throw new Error(`case ${id}: no supported case after 50 attempts`);
  }
  if (out !== process.stdout) await new Promise((resolve) => out.end(resolve));
  printStats(stats, ids.length, duplicates);
}


function printStats(stats, total, duplicates) {
  const pct = (n) => `${((100 * n) / total).toFixed(1)}%`;
  const lines = [];
  lines.push(`generated ${total} cases (${duplicates} duplicate expressions)`);
  const nonError = total - (stats.types.error || 0);
  lines.push(`non-error results: ${nonError} (${pct(nonError)})`);
  lines.push('by category (value / error):');
  for (const [cat, n] of Object.entries(stats.cats).sort((a, b) => b[1] - a[1])) {
    const ct = stats.catTypes[cat];
    lines.push(`  ${cat.padEnd(12)} ${String(n).padStart(6)}  ${String(ct.value || 0).padStart(6)} / ${ct.error || 0}`);
  }
  lines.push('by result type:');
  for (const [t, n] of Object.entries(stats.types).sort((a, b) => b[1] - a[1])) {
    lines.push(`  ${t.padEnd(12)} ${String(n).padStart(6)}  ${pct(n)}`);
  }
  lines.push('generated features (cases using it: total / non-error):');
  for (const [name, f] of Object.entries(stats.features).sort((a, b) => a[0].localeCompare(b[0]))) {
    lines.push(`  ${name.padEnd(48)} ${String(f.cases).padStart(6)} / ${f.values}`);
  }
  const rej = Object.entries(stats.rejected);
  if (rej.length) {
    lines.push('regenerated (engine-specific JavaScript behaviour or too long):');
    for (const [why, n] of rej) lines.push(`  ${why.padEnd(26)} ${String(n).padStart(6)}`);
  }
  process.stderr.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
