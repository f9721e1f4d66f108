package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// printBanner writes what a person starting the proxy needs to stdout: the
// endpoint and, with the development issuer, the tenant tokens and a Claude
// Desktop configuration. Tokens go to stdout only, never to the logs.
func printBanner(w io.Writer, p *proxy) error {
	endpoint := p.URL() + "/mcp"
	if p.dev == nil {
		_, err := fmt.Fprintf(w, "tenantgraph proxy\nMCP endpoint: %s\n", endpoint)
		return err
	}
	alpha, err := p.dev.Mint(devTenantRW, []string{"read", "write"}, devTokenTTL)
	if err != nil {
		return err
	}
	beta, err := p.dev.Mint(devTenantRO, []string{"read"}, devTokenTTL)
	if err != nil {
		return err
	}
	type server struct {
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	}
	desktop := map[string]map[string]server{
		"mcpServers": {"falkordb": {
			Command: "npx",
			Args:    []string{"mcp-remote", endpoint, "--header", "Authorization: Bearer ${AUTH_TOKEN}"},
			Env:     map[string]string{"AUTH_TOKEN": alpha},
		}},
	}
	conf, err := json.MarshalIndent(desktop, "", "  ")
	if err != nil {
		return err
	}
	line := strings.Repeat("=", 78)
	_, err = fmt.Fprintf(w, `%[1]s
DEVELOPMENT ONLY. This proxy runs a development token issuer: its signing key
was generated at start and is lost at exit, and anyone holding the tokens below
acts as their tenant. Never expose it. For real use set BEARER_ISSUER,
BEARER_AUDIENCE and BEARER_JWKS_URI (see README.md).
%[1]s

MCP endpoint: %[2]s

%[3]s token (scopes "read write"), valid %[7]s:
%[4]s

%[5]s token (scope "read"), valid %[7]s:
%[6]s

Claude Desktop (claude_desktop_config.json), as %[3]s:
%[8]s

`, line, endpoint, devTenantRW, alpha, devTenantRO, beta, devTokenTTL, conf)
	return err
}
