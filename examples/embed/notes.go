package main

// This file stands for "your existing server": a go-sdk MCP server with a
// tool of its own. The only trace of tenantgraph here is tenancy.FromContext,
// which tells the tool whose call it is running.

import (
	"context"
	"errors"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tenantgraph/tenantgraph/tenancy"
)

// newNotesServer returns an MCP server with one tool, "notes".
func newNotesServer() *mcp.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1.0.0"}, nil)
	book := &notebook{notes: map[string][]string{}}
	mcp.AddTool(server, &mcp.Tool{Name: "notes", Description: "Add a note (optional), then list your notes."}, book.call)
	return server
}

// notebook keeps notes in memory, per tenant.
type notebook struct {
	mu    sync.Mutex
	notes map[string][]string // by tenant
}

type notesIn struct {
	Add string `json:"add,omitempty" jsonschema:"a note to add; leave out to only list your notes"`
}

type notesOut struct {
	Notes []string `json:"notes"`
}

func (b *notebook) call(ctx context.Context, _ *mcp.CallToolRequest, in notesIn) (*mcp.CallToolResult, notesOut, error) {
	id, ok := tenancy.FromContext(ctx) // the verified caller, set by the tenancy middleware
	if !ok {
		return nil, notesOut{}, errors.New("notes: no tenant (is the tenancy middleware installed?)")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if in.Add != "" {
		b.notes[id.Tenant] = append(b.notes[id.Tenant], in.Add)
	}
	return nil, notesOut{Notes: append([]string{}, b.notes[id.Tenant]...)}, nil
}
