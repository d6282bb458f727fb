/**
 * Response serialization: Fastify's own compiler (fast-json-stringify), with each compiled serializer shared by
 * every server in the process. A serializer depends only on the schema's content and the shared schemas; compiling
 * every route's again was, with the validators (validation.ts), most of a server's start.
 */

import fastJsonStringify, { type Schema } from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';

type Serialize = (data: unknown) => string;

const serializers = new Map<string, Serialize>();

export function serializerCompiler(shared: object[]): FastifySerializerCompiler<object> {
  const sharedKey = JSON.stringify(shared);
  return ({ schema }) => {
    const key = `${sharedKey}\n${JSON.stringify(schema)}`;
    let serialize = serializers.get(key);
    if (!serialize) {
      const id = (schema as { $id?: string }).$id;
      // A schema is not its own external reference (Fastify's compiler drops it alike).
      const named = shared as { $id: string }[];
      const external = Object.fromEntries(named.filter((s) => s.$id !== id).map((s) => [s.$id, s as Schema]));
      serialize = fastJsonStringify(schema as Schema, { schema: external }) as Serialize;
      serializers.set(key, serialize);
    }
    return serialize;
  };
}
