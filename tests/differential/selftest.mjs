// Golden vectors for the parts of the oracle we wrote ourselves (Normandy's sampling and the
// toolkit version comparator), from docs/reference (normandy-nimbus.md §2.5, §2.6). The
// generator refuses to run if any of them fails: a wrong oracle is worse than none.

import { compareVersions, evaluate, internals } from './oracle.mjs';

const { fractionToKey, truncatedHash, stableSample, bucketSample } = internals;

export async function selfTest() {
  const failures = [];
  const check = (what, actual, expected) => {
    if (actual !== expected) failures.push(`${what}: got ${actual}, expected ${expected}`);
  };

  for (const [f, key] of [
    [0, '000000000000'], [0.1, '199999999999'], [0.2, '333333333333'], [0.25, '3fffffffffff'],
    [0.3, '4ccccccccccc'], [0.5, '7fffffffffff'], [0.75, 'bfffffffffff'], [0.9, 'e66666666665'],
    [1, 'ffffffffffff'],
  ]) check(`fractionToKey(${f})`, fractionToKey(f), key);

  for (const [input, hash] of [
    [[1234, 'test_namespace'], '2a6e18a86edc'],
    [null, '74234e98afe7'],
    ['', '12ae32cb1ec0'],
    [{ id: 1234, namespace: 'experiment' }, '5d1effd4b032'],
    ['test', '4d967a30111b'],
    [['test'], 'ecfd160805b1'],
    [['global-v4', '299eed1e-be6d-457d-9e53-da7b1a03f10d'], '7f0195d558ed'],
    [['299eed1e-be6d-457d-9e53-da7b1a03f10d', 123], 'f61b2b1d3fd2'],
  ]) check(`truncatedHash(${JSON.stringify(input)})`, truncatedHash(input), hash);

  check('stableSample("test", 1)', await stableSample('test', 1), true);
  check('stableSample("test", 0)', await stableSample('test', 0), false);
  check('stableSample("test-0", 0.5)', await stableSample('test-0', 0.5), true);
  check('stableSample("test-1", 0.5)', await stableSample('test-1', 0.5), false);
  check('bucketSample("test", 0, 10, 10)', await bucketSample('test', 0, 10, 10), true);
  check('bucketSample("test", 0, 0, 10)', await bucketSample('test', 0, 0, 10), false);
  check('bucketSample("test-0", 0, 5, 10)', await bucketSample('test-0', 0, 5, 10), true);
  check('bucketSample("test-1", 0, 5, 10)', await bucketSample('test-1', 0, 5, 10), false);
  const id = '299eed1e-be6d-457d-9e53-da7b1a03f10d';
  check('bucketSample(global-v4 0..5000)', await bucketSample(['global-v4', id], 0, 5000, 10000), true);
  check('bucketSample(global-v4 5000..10000)', await bucketSample(['global-v4', id], 5000, 5000, 10000), false);
  check('bucketSample(wrapping)', await bucketSample([id, 'global-v4'], 7000, 5000, 10000), true);
  check('bucketSample(["test"], 8, 4, 10)', await bucketSample(['test'], 8, 4, 10), true);
  check('bucketSample(["test"], 18, 4, 10)', await bucketSample(['test'], 18, 4, 10), true);

  for (const [expr, value] of [
    ['["test"]|stableSample(1)', true],
    ['["test"]|stableSample(0)', false],
    ['["test-1"]|stableSample(0.5)', true],
    ['["test-4"]|stableSample(0.5)', false],
    ['["test-1"]|bucketSample(0,5,10)', true],
    ['["test-4"]|bucketSample(0,5,10)', false],
    ['"1.0.0"|versionCompare("1") == 0', true],
    ['"113.0a1"|versionCompare("113") < 0', true],
  ]) {
    const got = await evaluate(expr, '{}', {});
    check(`jexl ${expr}`, JSON.stringify(got), JSON.stringify({ t: 'bool', v: value }));
  }

  const ascending = [
    'pre', '8321499136', '0.9', '0.9.1', '1.0pre1', '1.0pre2', '1.0', '1.1pre', '1.1pre1a', '1.1pre1',
    '1.1pre10a', '1.1pre10', '1.1', '1.1.0.1', '1.1.1', '1.1.*', '1.*', '2.0', '2.1', '3.0.-1', '3.0',
  ];
  for (let i = 0; i < ascending.length; i++) {
    for (let j = 0; j < ascending.length; j++) {
      check(`compare(${ascending[i]}, ${ascending[j]})`, compareVersions(ascending[i], ascending[j]), Math.sign(i - j));
    }
  }
  for (const [a, b] of [['1.1pre', '1.1pre0'], ['1.1pre', '1.0+'], ['1.0', '1.0.0'], ['1.0', '1.0.0.0'], ['12+', '13pre'], ['', '0'], ['1..2', '1.0.2'], ['1.0.0', '1']]) {
    check(`compare(${a}, ${b})`, compareVersions(a, b), 0);
  }
  for (const [a, b, sign] of [
    ['1.0.0', '1.1', -1], ['1.0.0', '0.1', 1], ['111.0.1', '111.0.2', -1], ['111.0.1', '112', -1],
    ['113.0a1', '113', -1], ['113.0a1', '113.0a0', 1], ['113', '113.0a0', 1], ['114', '113.0a0', 1],
    ['28.0a1', '28.0', -1], ['28.0a1', '28.0a2', -1], ['28.0a2', '28.0b1', -1], ['28.0b1', '28.0', -1],
    ['28.0', '28.0.1', -1], ['28.0esr', '28.0', -1], ['3.6.28', '3.6.*', -1], ['3.6.*', '3.7', -1],
    ['3.6', '3.6.*', -1], ['93.!', '93.0a1', -1], ['93.!', '93', -1], ['93.!', '93.1', -1],
    ['93.!', '92.9', 1], ['93.0b5', '93.!', 1], ['93.*', '94.0a1', -1], ['72.0b5', '72.0', -1],
    ['75.0.1', '75.0', 1], ['1.0.0-beta', '1.0.0', -1], ['2147483647', '2147483648', 1],
    ['93.!', '93.0-beta', 1], ['1.0-beta', '1.0a1', -1],
  ]) {
    check(`compare(${a}, ${b})`, compareVersions(a, b), sign);
    check(`compare(${b}, ${a})`, compareVersions(b, a), -sign);
  }

  if (failures.length) {
    throw new Error(`oracle self-test failed:\n  ${failures.join('\n  ')}`);
  }
}
