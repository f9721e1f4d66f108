package tenancy

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// UsageToolName is the name of the tool of [AddUsageTool].
const UsageToolName = "tenant_usage"

// Bounds of the days argument of the usage tool.
const (
	usageToolDefaultDays = 7
	usageToolMaxDays     = 90
)

// usageToolIn is the input of the usage tool. It deliberately has no tenant:
// the tenant is always the caller's own.
type usageToolIn struct {
	Days *int `json:"days,omitempty"`
}

// AddUsageTool adds the tool [UsageToolName] to s: it reports the usage
// of the caller's own tenant (see [Usage.Report]) over the last "days" UTC
// days, today included (an optional integer, 7 by default, at most 90 and at
// most [Usage.MaxReportDays]), as structured content and as JSON text. It
// flushes u first, so that the report includes the calls this replica has
// seen.
//
// The tenant comes from the identity the tenancy middleware put into the
// context ([FromContext]); the tool takes no tenant argument, and without
// an identity it returns a tool error. Put [UsageTools] into the middleware's
// [Config].Tools, which admits callers with [ScopeAdmin] only.
func AddUsageTool(s *mcp.Server, u *Usage) {
	mcp.AddTool(s, &mcp.Tool{
		Name:  UsageToolName,
		Title: "Show your usage",
		Description: "Show your tenant's usage over the last days (UTC, today included): per day and per tool the " +
			"calls, errors, refused calls, rows returned and query time in milliseconds, with totals. " +
			"Counts of the last second or so may be missing.",
		InputSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"days": map[string]any{
					"type":        "integer",
					"minimum":     1,
					"maximum":     usageToolMaxDays,
					"description": fmt.Sprintf("Number of days to report, today included (default %d, at most %d).", usageToolDefaultDays, usageToolMaxDays),
				},
			},
			"additionalProperties": false,
		},
		Annotations: &mcp.ToolAnnotations{
			Title:          "Show your usage",
			ReadOnlyHint:   true,
			IdempotentHint: true,
			OpenWorldHint:  new(false),
		},
	}, func(ctx context.Context, _ *mcp.CallToolRequest, in usageToolIn) (*mcp.CallToolResult, *UsageReport, error) {
		id, ok := FromContext(ctx)
		if !ok {
			return nil, nil, fmt.Errorf("%s: %w", UsageToolName, ErrNoIdentity)
		}
		days := usageToolDefaultDays
		if in.Days != nil {
			days = *in.Days
		}
		limit := min(usageToolMaxDays, u.MaxReportDays())
		if days < 1 || days > limit {
			return nil, nil, fmt.Errorf("days must be between 1 and %d", limit)
		}
		// A failed flush is logged by u; the report then shows what the
		// store holds.
		_ = u.Flush(ctx)
		r, err := u.Report(ctx, id.Tenant, days)
		if err != nil {
			return nil, nil, err
		}
		return nil, r, nil
	})
}

// UsageTools returns the policy of the tool of [AddUsageTool], a fresh map
// to merge into [Config].Tools ([MergeTools]): callers need [ScopeAdmin], and
// the tool takes no graph argument.
func UsageTools() map[string]ToolPolicy {
	return map[string]ToolPolicy{
		UsageToolName: {Scopes: []string{ScopeAdmin}, GraphArguments: []string{}},
	}
}
