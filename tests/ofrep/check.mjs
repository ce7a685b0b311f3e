// Resolves flags against a Flightdeck server with a real OpenFeature client: the server SDK
// (@openfeature/server-sdk) with the OFREP provider (@openfeature/ofrep-provider), and the
// bulk endpoint through @openfeature/ofrep-core's OFREPApi (what the web provider uses).
//
//   node check.mjs <server url> < cases.json
//
// cases.json: {"cases": [{"type": "boolean"|"string"|"number"|"object", "key", "default",
// "context", "environment"?}], "bulk": {"context", "environment"?}?}
// Prints one JSON document: {"results": [{key, type, value, reason, variant, errorCode,
// errorMessage, flagMetadata}], "bulk": {firstStatus, etag, flags, secondStatus,
// otherContextStatus}?}. An `environment` is sent in the X-Flightdeck-Environment header.

import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OFREPApi } from '@openfeature/ofrep-core';

const ENVIRONMENT_HEADER = 'X-Flightdeck-Environment';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function environmentHeaders(environment) {
  return environment ? { [ENVIRONMENT_HEADER]: environment } : {};
}

// One provider per environment, each bound to its own OpenFeature domain.
const clients = new Map();
async function clientFor(url, environment) {
  const domain = environment ?? 'default-environment';
  if (!clients.has(domain)) {
    const provider = new OFREPProvider({ baseUrl: url, headers: environmentHeaders(environment) });
    await OpenFeature.setProviderAndWait(domain, provider);
    clients.set(domain, OpenFeature.getClient(domain));
  }
  return clients.get(domain);
}

async function resolve(client, testCase) {
  const { type, key, context } = testCase;
  const fallback = testCase.default;
  switch (type) {
    case 'boolean':
      return client.getBooleanDetails(key, fallback, context ?? {});
    case 'string':
      return client.getStringDetails(key, fallback, context ?? {});
    case 'number':
      return client.getNumberDetails(key, fallback, context ?? {});
    case 'object':
      return client.getObjectDetails(key, fallback, context ?? {});
    default:
      throw new Error(`unknown flag type ${type}`);
  }
}

async function bulk(url, { context, environment }) {
  const api = new OFREPApi(url);
  const headers = Object.entries(environmentHeaders(environment));
  const first = await api.postBulkEvaluateFlags({ context }, { headers });
  const etag = first.httpResponse.headers.get('ETag');
  const second = await api.postBulkEvaluateFlags(
    { context },
    { headers: [...headers, ['If-None-Match', etag]] },
  );
  const other = await api.postBulkEvaluateFlags(
    { context: { ...context, targetingKey: `${context?.targetingKey ?? ''}-other` } },
    { headers: [...headers, ['If-None-Match', etag]] },
  );
  return {
    firstStatus: first.httpStatus,
    etag,
    flags: first.value.flags,
    secondStatus: second.httpStatus,
    otherContextStatus: other.httpStatus,
  };
}

async function main() {
  const url = process.argv[2];
  if (!url) {
    console.error('usage: node check.mjs <server url> < cases.json');
    process.exit(2);
  }
  const input = await readStdin();
  const results = [];
  for (const testCase of input.cases ?? []) {
    const client = await clientFor(url, testCase.environment);
    const details = await resolve(client, testCase);
    results.push({
      key: testCase.key,
      type: testCase.type,
      environment: testCase.environment ?? null,
      value: details.value,
      reason: details.reason ?? null,
      variant: details.variant ?? null,
      errorCode: details.errorCode ?? null,
      errorMessage: details.errorMessage ?? null,
      flagMetadata: details.flagMetadata ?? {},
    });
  }
  const output = { results };
  if (input.bulk) output.bulk = await bulk(url, input.bulk);
  await OpenFeature.close();
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
