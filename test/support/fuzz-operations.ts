/**
 * The operations of the server's own OpenAPI document, as the fuzz suite walks them: each with the schemas of
 * its path parameters, query and body, and who calls it. Read from the built app, so a route added tomorrow is
 * fuzzed without anyone listing it.
 */

/** The part of JSON Schema the API's request schemas use. */
export interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  nullable?: boolean;
  $ref?: string;
  [key: string]: unknown;
}

export interface FuzzParameter {
  name: string;
  schema: JsonSchema;
  required: boolean;
}

/** Who may call an operation: the operator API, the device API, or anyone (enrollment). */
export type Caller = 'operator' | 'device' | 'anyone';

export interface FuzzOperation {
  /** `POST /api/v1/rollouts`: the operation's name in reports and in KNOWN_FAILURES. */
  key: string;
  method: string;
  /** The OpenAPI path, with `{param}` placeholders. */
  path: string;
  pathParams: FuzzParameter[];
  query: FuzzParameter[];
  /** The JSON body's schema; undefined when the operation takes none, or takes raw bytes. */
  body: JsonSchema | undefined;
  caller: Caller;
  /** The answer never ends by itself (server-sent events): sent only over a real socket, read briefly. */
  streaming: boolean;
  /** Takes a raw byte body (no JSON schema) although it is a POST: artifact uploads. */
  rawBody: boolean;
  /** The permission the document says the operation needs (`x-permission`), for operator operations. */
  permission: string | undefined;
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: JsonSchema }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  security?: Array<Record<string, unknown>>;
  summary?: string;
  description?: string;
  'x-permission'?: string;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);

/** Inlines `#/components/schemas/…` references (request schemas seldom have them; response ones do). */
function resolve(schema: JsonSchema | undefined, doc: OpenApiDocument, depth = 0): JsonSchema | undefined {
  if (!schema || depth > 20) return schema;
  if (schema.$ref) {
    const name = schema.$ref.split('/').pop() ?? '';
    return resolve(doc.components?.schemas?.[name], doc, depth + 1);
  }
  const out: JsonSchema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, resolve(v, doc, depth + 1) ?? {}]),
    );
  }
  if (schema.items) out.items = resolve(schema.items, doc, depth + 1) ?? {};
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const list = schema[key];
    if (list) out[key] = list.map((s) => resolve(s, doc, depth + 1) ?? {});
  }
  return out;
}

function callerOf(path: string, op: OpenApiOperation): Caller {
  if (op.security?.some((s) => 'deviceCredential' in s)) return 'device';
  if (path.startsWith('/api/device/')) return 'anyone';
  return 'operator';
}

export function fuzzOperations(doc: OpenApiDocument): FuzzOperation[] {
  const out: FuzzOperation[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      if (!METHODS.has(method)) continue;
      const params = (where: string) =>
        (op.parameters ?? [])
          .filter((p) => p.in === where)
          .map((p) => ({
            name: p.name,
            schema: resolve(p.schema, doc) ?? {},
            required: p.required ?? where === 'path',
          }));
      const body = resolve(op.requestBody?.content?.['application/json']?.schema, doc);
      const text = `${op.summary ?? ''} ${op.description ?? ''}`;
      const upper = method.toUpperCase();
      out.push({
        key: `${upper} ${path}`,
        method: upper,
        path,
        pathParams: params('path'),
        query: params('query'),
        body,
        caller: callerOf(path, op),
        streaming: /text\/event-stream/.test(text),
        rawBody: upper === 'POST' && body === undefined && /raw body|octet-stream/i.test(text),
        permission: op['x-permission'],
      });
    }
  }
  return out;
}

/** The operations of the document a freshly built server (SQLite, in a temporary folder) serves. */
export async function documentedOperations(): Promise<FuzzOperation[]> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createServer } = await import('../../src/server/serve.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetd-openapi-'));
  const parts = await createServer({ dataDir, logLevel: 'silent' });
  try {
    await parts.app.ready();
    return fuzzOperations(parts.app.swagger() as unknown as OpenApiDocument);
  } finally {
    await parts.app.close();
    await parts.store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
