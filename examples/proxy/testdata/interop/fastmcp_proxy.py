#!/usr/bin/env python3
"""fastmcp_proxy.py: a FastMCP proxy that verifies JWTs in front of an MCP server.

A peer for benchmarks: the Python way of putting bearer-JWT authentication in
front of the official FalkorDB MCP server (npm @falkordb/mcpserver), with no
tenancy. Requires requirements-fastmcp.txt (fastmcp 4.x; FastMCP.as_proxy and
BearerAuthProvider of fastmcp 2.x no longer exist: this uses
fastmcp.server.create_proxy and fastmcp.server.auth.providers.jwt.JWTVerifier).

Environment (names follow the seed proxy where it had them):

    UPSTREAM_URL       upstream Streamable HTTP endpoint, e.g. http://127.0.0.1:3000/mcp (required)
    UPSTREAM_API_KEY   sent upstream as "Authorization: Bearer KEY" (the official server's MCP_API_KEY);
                       the client's own token is never forwarded (FastMCP strips Authorization)
    BEARER_JWKS_URI    JWKS URL of the issuer                 } exactly one of these two
    BEARER_PUBLIC_KEY  PEM public key, or @/path/to/key.pem    }
    BEARER_ISSUER      expected iss (required)
    BEARER_AUDIENCE    expected aud (required)
    BEARER_ALGORITHM   one algorithm, default RS256 (FastMCP's JWTVerifier accepts exactly one)
    BEARER_REQUIRED_SCOPES  optional, space or comma separated
    PROXY_HOST         default 127.0.0.1
    PROXY_PORT         default 0 (a free port)
    PROXY_PATH         default /mcp
    PROXY_STATELESS    "1" for stateless Streamable HTTP (default stateful)
    PROXY_REUSE_UPSTREAM  "1" keeps one upstream session for all callers (FastMCP warns this may mix
                       request contexts); default: a fresh upstream session per front request, which
                       costs an initialize and a DELETE upstream on every call

On start it prints one line to stdout, then serves until SIGINT/SIGTERM:

    FASTMCP_PROXY_LISTENING http://127.0.0.1:PORT/mcp
"""

from __future__ import annotations

import os
import socket
import sys


def env(name: str, default: str | None = None, required: bool = False) -> str | None:
    v = os.environ.get(name, "").strip() or default
    if required and not v:
        sys.exit(f"fastmcp_proxy: {name} is required")
    return v


def main() -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport
    from fastmcp.server import create_proxy
    from fastmcp.server.auth.providers.jwt import JWTVerifier

    upstream_url = env("UPSTREAM_URL", required=True)
    upstream_key = env("UPSTREAM_API_KEY")
    jwks_uri = env("BEARER_JWKS_URI")
    public_key = env("BEARER_PUBLIC_KEY")
    if public_key and public_key.startswith("@"):
        with open(public_key[1:], encoding="utf-8") as f:
            public_key = f.read()
    if bool(jwks_uri) == bool(public_key):
        sys.exit("fastmcp_proxy: set exactly one of BEARER_JWKS_URI and BEARER_PUBLIC_KEY")
    scopes = env("BEARER_REQUIRED_SCOPES")

    verifier = JWTVerifier(
        jwks_uri=jwks_uri,
        public_key=public_key,
        issuer=env("BEARER_ISSUER", required=True),
        audience=env("BEARER_AUDIENCE", required=True),
        algorithm=env("BEARER_ALGORITHM", "RS256"),
        required_scopes=scopes.replace(",", " ").split() if scopes else None,
    )

    # A disconnected Client: FastMCP opens a fresh upstream session for each
    # front request (initialize, call, DELETE), so no state is shared between
    # callers. That costs round trips; it is FastMCP's documented default.
    # A connected Client (PROXY_REUSE_UPSTREAM=1) is reused for every request.
    upstream = Client(StreamableHttpTransport(upstream_url, auth=upstream_key or None))
    reuse = env("PROXY_REUSE_UPSTREAM", "") == "1"

    host = env("PROXY_HOST", "127.0.0.1")
    port = int(env("PROXY_PORT", "0"))
    path = env("PROXY_PATH", "/mcp")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    actual = sock.getsockname()[1]
    print(f"FASTMCP_PROXY_LISTENING http://{host}:{actual}{path}", flush=True)

    run_kwargs = dict(
        transport="http",
        host=host,
        port=actual,
        path=path,
        sockets=[sock],
        show_banner=False,
        log_level=env("PROXY_LOG_LEVEL", "warning"),
        stateless_http=env("PROXY_STATELESS", "") == "1",
    )

    async def serve() -> None:
        if reuse:
            async with upstream:
                proxy = create_proxy(upstream, name="fastmcp-jwt-proxy", auth=verifier)
                await proxy.run_http_async(**run_kwargs)
        else:
            proxy = create_proxy(upstream, name="fastmcp-jwt-proxy", auth=verifier)
            await proxy.run_http_async(**run_kwargs)

    import anyio

    anyio.run(serve)


if __name__ == "__main__":
    main()
