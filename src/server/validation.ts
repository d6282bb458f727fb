/**
 * Request validation: query strings and path parameters arrive as text and are coerced to their types;
 * bodies are JSON and must already have the right types ("5" is not a number in a body).
 */
import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function ajv(options: Options): Ajv {
  const instance = new Ajv({ allErrors: false, useDefaults: true, removeAdditional: false, ...options });
  addFormats.default(instance);
  return instance;
}

export function validatorCompiler(shared: object[]): FastifySchemaCompiler<object> {
  const strict = ajv({ coerceTypes: false });
  const lenient = ajv({ coerceTypes: 'array' });
  for (const schema of shared) {
    strict.addSchema(schema);
    lenient.addSchema(schema);
  }
  return ({ schema, httpPart }) => {
    const compiler = httpPart === 'body' ? strict : lenient;
    return compiler.compile(schema);
  };
}
