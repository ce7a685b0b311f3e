#!/usr/bin/env node
// Turns hand-written expressions into oracle cases, for reproducing a mismatch:
//
//   node oracle-cases.mjs < input > cases.jsonl
//   FLIGHTDECK_JEXL_ORACLE_CASES=$PWD/cases.jsonl cargo test -p flightdeck-core --test jexl_differential
//
// Each input line is either a bare expression (evaluated over no variables) or a JSON object
// {"expr": "...", "vars": {...}, "prefs": {...}}. Blank lines and lines starting with `//`
// are skipped. The oracle's result is also printed to stderr.

import { readFileSync } from 'node:fs';
import { evaluate, Unsupported } from './oracle.mjs';

const lines = readFileSync(0, 'utf8').split('\n');
let id = 0;
for (const raw of lines) {
  const line = raw.trim();
  if (line === '' || line.startsWith('//')) continue;
  const input = line.startsWith('{') ? JSON.parse(line) : { expr: line };
  const varsJson = JSON.stringify(input.vars ?? {});
  const prefs = input.prefs ?? {};
  let expected;
  try {
    expected = await evaluate(input.expr, varsJson, prefs);
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
    process.stderr.write(`skipped (unsupported: ${err.message}): ${input.expr}\n`);
    continue;
  }
  process.stderr.write(`${input.expr}  =>  ${JSON.stringify(expected)}\n`);
  const head = JSON.stringify({ id, cat: 'manual', expr: input.expr });
  const tail = JSON.stringify({ prefs, expected });
  process.stdout.write(`${head.slice(0, -1)},"vars":${varsJson},${tail.slice(1)}\n`);
  id++;
}
