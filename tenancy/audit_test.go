package tenancy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func auditLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestAuditEvents(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	e := newEnv(t, Config{Auditor: NewSlogAuditor(logger, nil)})
	query := "MATCH (n:Secret {ssn: '123-45-6789'}) RETURN n"
	sum := sha256.Sum256([]byte(query))

	res, err := callTool(t, e.connect(acmeRO), "falkordb_query", map[string]any{"graphName": "users", "query": query})
	require.NoError(t, err)
	require.False(t, res.IsError)
	require.NotContains(t, buf.String(), "123-45-6789", "the query text is never logged by default")
	require.NotContains(t, buf.String(), "acme_users", "the audit holds logical names")
	lines := auditLines(t, &buf)
	require.Len(t, lines, 1)
	ev := lines[0]
	require.Equal(t, "tenancy.call", ev["msg"])
	require.Equal(t, "INFO", ev["level"])
	require.NotEmpty(t, ev["request_id"])
	require.Equal(t, "tools/call", ev["method"])
	require.Equal(t, "acme", ev["tenant"])
	require.Equal(t, "acme-user", ev["subject"])
	require.Equal(t, "falkordb_query", ev["tool"])
	require.Equal(t, "falkordb_ro_query", ev["routed_to"])
	require.Equal(t, "users", ev["graph"])
	require.Equal(t, hex.EncodeToString(sum[:]), ev["query_sha256"])
	require.Equal(t, "ok", ev["outcome"])
	require.Equal(t, "", ev["class"])
	require.EqualValues(t, 3, ev["rows"], "rows of the structured result")
	require.Contains(t, ev, "duration")

	// A refusal.
	_, err = callTool(t, e.connect(acmeRW), "falkordb_delete_graph", map[string]any{"graphName": "users"})
	require.NoError(t, err)
	lines = auditLines(t, &buf)
	require.Len(t, lines, 1)
	require.Equal(t, "WARN", lines[0]["level"])
	require.Equal(t, "refused", lines[0]["outcome"])
	require.Equal(t, "forbidden", lines[0]["class"])
	require.EqualValues(t, -1, lines[0]["rows"])

	// No identity: audited without a tenant.
	_, err = callTool(t, e.connect(nil), "whoami", map[string]any{})
	require.Error(t, err)
	lines = auditLines(t, &buf)
	require.Len(t, lines, 1)
	require.Equal(t, "", lines[0]["tenant"])
	require.Equal(t, "no_identity", lines[0]["class"])

	// A list counts graphs.
	_, err = callTool(t, e.connect(bobRW), "falkordb_list_graphs", map[string]any{})
	require.NoError(t, err)
	lines = auditLines(t, &buf)
	require.EqualValues(t, 1, lines[0]["rows"])

	// Tool errors.
	_, err = callTool(t, e.connect(acmeRW), "fail", map[string]any{"graphName": "users", "text": "boom on $GRAPH"})
	require.NoError(t, err)
	lines = auditLines(t, &buf)
	require.Equal(t, "tool_error", lines[0]["outcome"])
	require.Equal(t, "tool_error", lines[0]["class"])
	require.NotContains(t, lines[0], "error", "error texts are off by default")
}

func TestAuditOptions(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{AddSource: true}))
	e := newEnv(t, Config{
		Auditor:        NewSlogAuditor(logger, &SlogAuditorOptions{Message: "audit", IncludeErrors: true}),
		AuditQueryText: true,
	})
	_, err := callTool(t, e.connect(acmeRW), "falkordb_query", map[string]any{"graphName": "g", "query": "RETURN \"x\""})
	require.NoError(t, err)
	lines := auditLines(t, &buf)
	require.Equal(t, "audit", lines[0]["msg"])
	require.Equal(t, `RETURN "x"`, lines[0]["query"])
	require.NotContains(t, lines[0], "source", "no source position (it would always be this package's line)")

	_, err = callTool(t, e.connect(acmeRW), "fail", map[string]any{"text": "at 10.0.0.1"})
	require.NoError(t, err)
	lines = auditLines(t, &buf)
	require.Equal(t, "internal", lines[0]["class"])
	require.Contains(t, lines[0]["error"], "10.0.0.1", "the operator sees the original error")
}

func TestAuditHashOfEscapedQuery(t *testing.T) {
	var got *Event
	e := newEnv(t, Config{Auditor: AuditFunc(func(_ context.Context, ev *Event) { cp := *ev; got = &cp })})
	q := "RETURN \"é\\n\""
	_, err := callTool(t, e.connect(acmeRW), "falkordb_query", map[string]any{"graphName": "g", "query": q})
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(q))
	require.Equal(t, hex.EncodeToString(sum[:]), got.QueryHash, "the hash is of the decoded query")
	require.Empty(t, got.Query)
}
