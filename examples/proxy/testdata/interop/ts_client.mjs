#!/usr/bin/env node
// ts_client.mjs: an interop client built on the official MCP TypeScript SDK
// (npm @modelcontextprotocol/sdk, pinned in package.json).
//
// Usage:
//
//	node ts_client.mjs URL TOKEN GRAPH
//	INTEROP_URL=... INTEROP_TOKEN=... INTEROP_GRAPH=... node ts_client.mjs
//
// It connects over Streamable HTTP with "Authorization: Bearer TOKEN" (sent
// through requestInit.headers), lists the tools, calls falkordb_query to create
// a node in GRAPH, calls falkordb_list_graphs, and prints one JSON line to
// stdout:
//
//	{"tools":[...],"query":<structured content, else text>,"graphs":[...],"protocol":"...","error":null}
//
// On failure it prints the same line with "error" set, writes the error to
// stderr and exits with status 1 (status 2 for bad usage).
//
// The SDK is loaded from INTEROP_NODE_DIR/node_modules (the directory where
// `npm ci` installed package-lock.json), else from next to this script or the
// working directory, so the script can stay in the source tree while its
// dependencies live in a cache directory.
//
// Optional environment: INTEROP_QUERY (Cypher text, default creates one
// :InteropClient node with a $name parameter), INTEROP_PARAMS (JSON object,
// default {"name":"ts-sdk"}; "" sends no parameters), INTEROP_TIMEOUT_MS
// (per request, default 30000).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SDK = ['node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm'];

async function loadSDK() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dirs = [process.env.INTEROP_NODE_DIR, here, process.cwd()].filter(Boolean);
  for (const d of dirs) {
    const base = path.join(d, ...SDK);
    if (existsSync(path.join(base, 'client', 'index.js'))) {
      const { Client } = await import(pathToFileURL(path.join(base, 'client', 'index.js')).href);
      const { StreamableHTTPClientTransport } = await import(
        pathToFileURL(path.join(base, 'client', 'streamableHttp.js')).href
      );
      return { Client, StreamableHTTPClientTransport };
    }
  }
  throw new Error(
    `@modelcontextprotocol/sdk not found under ${dirs.join(', ')}: run npm ci in the directory named by INTEROP_NODE_DIR`,
  );
}

const out = { tools: [], query: null, graphs: [], protocol: null, error: null };

function fail(msg, code = 1) {
  out.error = msg;
  process.stdout.write(JSON.stringify(out) + '\n');
  process.stderr.write(`ts_client: ${msg}\n`);
  process.exit(code);
}

// toolOutput returns the structured content of a tool result, or its text
// (parsed as JSON when it is JSON). A result with isError is a failure.
function toolOutput(name, res) {
  const text = (res.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('\n');
  if (res.isError) {
    throw new Error(`${name} returned an error result: ${text}`);
  }
  if (res.structuredContent !== undefined && res.structuredContent !== null) {
    return res.structuredContent;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function main() {
  const [url, token, graph] = [
    process.argv[2] ?? process.env.INTEROP_URL,
    process.argv[3] ?? process.env.INTEROP_TOKEN,
    process.argv[4] ?? process.env.INTEROP_GRAPH,
  ];
  if (!url || !token || !graph) {
    fail('usage: ts_client.mjs URL TOKEN GRAPH (or INTEROP_URL, INTEROP_TOKEN, INTEROP_GRAPH)', 2);
  }
  const query = process.env.INTEROP_QUERY || 'CREATE (n:InteropClient {name: $name}) RETURN n.name AS name';
  let params = { name: 'ts-sdk' };
  if (process.env.INTEROP_PARAMS !== undefined) {
    params = process.env.INTEROP_PARAMS === '' ? undefined : JSON.parse(process.env.INTEROP_PARAMS);
  }
  const timeout = Number(process.env.INTEROP_TIMEOUT_MS || 30000);

  const { Client, StreamableHTTPClientTransport } = await loadSDK();
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'tenantgraph-interop-ts', version: '0.0.0' });
  try {
    await client.connect(transport, { timeout });
    out.protocol = transport.protocolVersion ?? null;

    const tools = await client.listTools(undefined, { timeout });
    out.tools = tools.tools.map((t) => t.name);

    const args = { graphName: graph, query };
    if (params !== undefined) args.parameters = params;
    out.query = toolOutput(
      'falkordb_query',
      await client.callTool({ name: 'falkordb_query', arguments: args }, undefined, { timeout }),
    );

    const listed = toolOutput(
      'falkordb_list_graphs',
      await client.callTool({ name: 'falkordb_list_graphs', arguments: {} }, undefined, { timeout }),
    );
    if (!listed || !Array.isArray(listed.graphs)) {
      throw new Error(`falkordb_list_graphs: no "graphs" array in ${JSON.stringify(listed)}`);
    }
    out.graphs = listed.graphs;
  } catch (e) {
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
    fail(e instanceof Error ? e.message : String(e));
  }
  // DELETE the session when there is one (stateful servers); a stateless
  // server answers 405, which the SDK accepts.
  await transport.terminateSession().catch(() => {});
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
