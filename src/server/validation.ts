/**
 * Request validation: query strings and path parameters arrive as text and are coerced to their types;
 * bodies are JSON and must already have the right types ("5" is not a number in a body).
 *
 * After the schema, one pass refuses what no column can hold (see findUnstorable): a NUL in any string or key
 * of any part, and numbers that are not finite. The second matters for query strings: Ajv coerces "1e400" and
 * "Infinity" to Infinity and then lets it through `integer` and `maximum`. One walk over the parsed value is
 * cheaper than a pattern on every string schema (the heartbeat is the hot path) and cannot be forgotten on
 * a new schema.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import { findUnstorable } from '../core/unstorable.js';

function ajv(options: Options): Ajv {
  const instance = new Ajv({ allErrors: false, useDefaults: true, removeAdditional: false, ...options });
  addFormats.default(instance);
  return instance;
}

type Checked = ((data: unknown, context?: unknown) => boolean) & {
  errors?: ErrorObject[] | null;
  schemaEnv?: unknown;
};

/** The schema's validator, then the unstorable check; errors in Ajv's shape so Fastify reports them alike. */
export function withStorableCheck(validate: ValidateFunction): Checked {
  const checked: Checked = (data, context) => {
    // biome-ignore lint/suspicious/noExplicitAny: Ajv's data context is internal; Fastify passes it through.
    if (!validate(data, context as any)) {
      checked.errors = validate.errors ?? null;
      return false;
    }
    const bad = findUnstorable(data);
    if (!bad) {
      checked.errors = null;
      return true;
    }
    checked.errors = [
      { instancePath: bad.path, schemaPath: '#', keyword: 'storable', params: {}, message: bad.problem },
    ];
    return false;
  };
  // Fastify hands Ajv validators (those with a schemaEnv) the parent object, so a coerced root is written back.
  checked.schemaEnv = validate.schemaEnv;
  return checked;
}

/**
 * Route schemas compile once per process, not once per server. A compiled validator depends only on the schema's
 * content, the part it checks and the shared schemas, so servers in one process (a restart in the simulator, the
 * tests' hundreds of servers) share them: compiling every route again was most of a server's start.
 */
const validators = new Map<string, Checked>();
const compilers = new Map<string, { strict: Ajv; lenient: Ajv }>();

export function validatorCompiler(shared: object[]): FastifySchemaCompiler<object> {
  const sharedKey = JSON.stringify(shared);
  let pair = compilers.get(sharedKey);
  if (!pair) {
    pair = { strict: ajv({ coerceTypes: false }), lenient: ajv({ coerceTypes: 'array' }) };
    for (const schema of shared) {
      pair.strict.addSchema(schema);
      pair.lenient.addSchema(schema);
    }
    compilers.set(sharedKey, pair);
  }
  const { strict, lenient } = pair;
  return ({ schema, httpPart }) => {
    const isBody = httpPart === 'body';
    const key = `${sharedKey}\n${isBody ? 'body' : 'text'}\n${JSON.stringify(schema)}`;
    let checked = validators.get(key);
    if (!checked) {
      checked = withStorableCheck((isBody ? strict : lenient).compile(schema));
      validators.set(key, checked);
    }
    return checked;
  };
}
