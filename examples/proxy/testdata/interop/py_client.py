#!/usr/bin/env python3
"""py_client.py: an interop client built on the official MCP Python SDK (PyPI mcp).

Usage:

    python py_client.py URL TOKEN GRAPH
    INTEROP_URL=... INTEROP_TOKEN=... INTEROP_GRAPH=... python py_client.py

It connects over Streamable HTTP with "Authorization: Bearer TOKEN", lists the
tools, calls falkordb_query to create a node in GRAPH, calls
falkordb_list_graphs, and prints one JSON line to stdout:

    {"tools": [...], "query": <structured content, else text>, "graphs": [...], "protocol": "...", "error": null}

On failure it prints the same line with "error" set, writes the error to stderr
and exits with status 1 (status 2 for bad usage).

Run it with the interpreter of the virtual environment where requirements.txt
is installed. With mcp 2.x (pinned) it uses mcp.Client over
streamable_http_client(url, http_client=<client with the header>); with mcp
1.x it falls back to ClientSession over streamablehttp_client(url, headers=...).

Optional environment: INTEROP_QUERY (Cypher text, default creates one
:InteropClient node with a $name parameter), INTEROP_PARAMS (JSON object,
default {"name": "py-sdk"}; "" sends no parameters), INTEROP_PY_MODE (mcp 2.x
only: "auto" probes server/discover and falls back to initialize, the SDK's
default; "legacy" always sends initialize), INTEROP_TIMEOUT_S (per request,
default 30).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio

OUT: dict[str, Any] = {"tools": [], "query": None, "graphs": [], "protocol": None, "error": None}

# HTTP error statuses seen (mcp 2.x only): the SDK reports a 401 or 403 as a
# bare "Server returned an error response", so the status is added to errors.
HTTP_ERRORS: list[str] = []


def fail(msg: str, code: int = 1) -> None:
    OUT["error"] = msg
    sys.stdout.write(json.dumps(OUT) + "\n")
    sys.stdout.flush()
    sys.stderr.write(f"py_client: {msg}\n")
    sys.exit(code)


def _field(obj: Any, *names: str) -> Any:
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


def tool_output(name: str, res: Any) -> Any:
    """Structured content of a tool result, else its text (parsed when JSON); isError is a failure."""
    texts = [c.text for c in (res.content or []) if getattr(c, "type", None) == "text"]
    text = "\n".join(texts)
    if _field(res, "is_error", "isError"):
        raise RuntimeError(f"{name} returned an error result: {text}")
    structured = _field(res, "structured_content", "structuredContent")
    if structured is not None:
        return structured
    try:
        return json.loads(text)
    except ValueError:
        return text


async def exercise(call_tool: Any, list_tools: Any, graph: str, query: str, params: Any) -> None:
    tools = await list_tools()
    OUT["tools"] = [t.name for t in tools.tools]
    args: dict[str, Any] = {"graphName": graph, "query": query}
    if params is not None:
        args["parameters"] = params
    OUT["query"] = tool_output("falkordb_query", await call_tool("falkordb_query", args))
    listed = tool_output("falkordb_list_graphs", await call_tool("falkordb_list_graphs", {}))
    if not isinstance(listed, dict) or not isinstance(listed.get("graphs"), list):
        raise RuntimeError(f'falkordb_list_graphs: no "graphs" array in {listed!r}')
    OUT["graphs"] = listed["graphs"]


async def run(url: str, token: str, graph: str, query: str, params: Any, timeout: float) -> None:
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"}
    try:
        from mcp import Client  # mcp >= 2
        from mcp.client.streamable_http import streamable_http_client
    except ImportError:
        Client = None  # noqa: N806

    if Client is not None:
        mode = os.environ.get("INTEROP_PY_MODE", "auto")
        async def on_response(resp: Any) -> None:
            if resp.status_code >= 400:
                HTTP_ERRORS.append(f"{resp.request.method} {resp.status_code}")

        async with create_mcp_http_client(headers=headers) as http:
            http.event_hooks["response"].append(on_response)
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode=mode, read_timeout_seconds=timeout, cache=None) as client:
                OUT["protocol"] = client.protocol_version
                await exercise(
                    lambda n, a: client.call_tool(n, a),
                    lambda: client.list_tools(),
                    graph,
                    query,
                    params,
                )
        return

    # mcp 1.x
    from datetime import timedelta

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write, read_timeout_seconds=timedelta(seconds=timeout)) as session:
            init = await session.initialize()
            OUT["protocol"] = init.protocolVersion
            await exercise(
                lambda n, a: session.call_tool(n, a),
                lambda: session.list_tools(),
                graph,
                query,
                params,
            )


def _describe(e: BaseException) -> str:
    # anyio task groups wrap errors in ExceptionGroups; report the innermost ones.
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(_describe(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


def main() -> None:
    argv = sys.argv[1:]
    url = argv[0] if len(argv) > 0 else os.environ.get("INTEROP_URL")
    token = argv[1] if len(argv) > 1 else os.environ.get("INTEROP_TOKEN")
    graph = argv[2] if len(argv) > 2 else os.environ.get("INTEROP_GRAPH")
    if not url or not token or not graph:
        fail("usage: py_client.py URL TOKEN GRAPH (or INTEROP_URL, INTEROP_TOKEN, INTEROP_GRAPH)", 2)
    query = os.environ.get("INTEROP_QUERY") or "CREATE (n:InteropClient {name: $name}) RETURN n.name AS name"
    params: Any = {"name": "py-sdk"}
    if "INTEROP_PARAMS" in os.environ:
        params = json.loads(os.environ["INTEROP_PARAMS"]) if os.environ["INTEROP_PARAMS"] else None
    timeout = float(os.environ.get("INTEROP_TIMEOUT_S", "30"))
    try:
        anyio.run(run, url, token, graph, query, params, timeout)
    except BaseException as e:  # noqa: BLE001 - one line of diagnosis is the point
        if isinstance(e, SystemExit):
            raise
        msg = _describe(e)
        if HTTP_ERRORS:
            msg += f" (HTTP error statuses seen: {', '.join(HTTP_ERRORS)})"
        fail(msg)
    sys.stdout.write(json.dumps(OUT) + "\n")


if __name__ == "__main__":
    main()
