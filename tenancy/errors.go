package tenancy

import (
	"errors"
	"fmt"
)

// Errors of the middleware. The middleware reports them to clients as
// JSON-RPC errors or tool errors (see [New]); audit events carry them in
// [Event].Err, and a custom [Config].Identify may return the first two.
// Test for them with [errors.Is].
var (
	// ErrNoIdentity: the request carries no verified identity (no bearer
	// token info on its transport).
	ErrNoIdentity = errors.New("tenancy: no verified identity")

	// ErrNoTenant: the identity names no tenant.
	ErrNoTenant = errors.New("tenancy: no tenant in the identity")

	// ErrInvalidTenant: the identity's tenant is not valid for the
	// resolver. It is joined with graphname.ErrInvalidTenant.
	ErrInvalidTenant = errors.New("tenancy: invalid tenant")

	// ErrUnknownTool: the tool is not in the policy (and the policy does
	// not admit unlisted tools).
	ErrUnknownTool = errors.New("tenancy: unknown tool")

	// ErrForbidden: the identity lacks a scope the tool requires.
	ErrForbidden = errors.New("tenancy: insufficient scope")

	// ErrInvalidArguments: the tool arguments are not a JSON object, or a
	// graph argument is not a string (or array of strings), is spelled in
	// another case, or appears twice.
	ErrInvalidArguments = errors.New("tenancy: invalid arguments")

	// ErrInvalidGraph: a graph argument is not a valid graph name. It is
	// joined with graphname.ErrInvalidGraph when the resolver refused it.
	ErrInvalidGraph = errors.New("tenancy: invalid graph name")

	// ErrRateLimited: the tenant's rate limit is exhausted.
	ErrRateLimited = errors.New("tenancy: rate limit exceeded")

	// ErrConcurrency: the tenant already has its maximum of calls in flight.
	ErrConcurrency = errors.New("tenancy: too many concurrent calls")

	// ErrLimiter: the rate limiter failed; the call is refused (fail closed).
	ErrLimiter = errors.New("tenancy: rate limiter unavailable")

	// ErrLimiterFull: a [LocalLimiter] holds its maximum of keys, all busy.
	ErrLimiterFull = errors.New("tenancy: rate limiter full")

	// ErrMethodRefused: the MCP method (resources, prompts, completion) is
	// not allowed through the middleware.
	ErrMethodRefused = errors.New("tenancy: method not available")

	// ErrInternal: the tool or server failed with a message that would
	// reveal internals; the client got a generic message with the request id.
	ErrInternal = errors.New("tenancy: internal error")

	// ErrToolError: the tool reported an error (CallToolResult.IsError) that
	// was passed on after cleaning.
	ErrToolError = errors.New("tenancy: tool error")

	// ErrServer: the server answered with a JSON-RPC error that was passed on
	// after cleaning.
	ErrServer = errors.New("tenancy: server error")

	// ErrNoPlan: the [PlanSource] assigns no plan to the caller; every call
	// is refused.
	ErrNoPlan = errors.New("tenancy: no plan for the tenant")

	// ErrGraphNotAllowed: a graph argument names a graph outside the
	// caller's plan ([Plan].Graphs).
	ErrGraphNotAllowed = errors.New("tenancy: graph not allowed by the plan")

	// ErrQuota: a quota of the caller's plan (graph count, graph memory,
	// total memory) is used up. Test with [errors.As] for [*QuotaError].
	ErrQuota = errors.New("tenancy: quota exceeded")

	// ErrQuotaCheck: a quota could not be checked (no [Config].Store, or
	// the store failed); the call is refused (fail closed).
	ErrQuotaCheck = errors.New("tenancy: quota check failed")

	// ErrInvalidPolicy: a policy or policy file is not valid.
	ErrInvalidPolicy = errors.New("tenancy: invalid policy")

	// ErrInvalidConfig: [New] refused the [Config].
	ErrInvalidConfig = errors.New("tenancy: invalid config")
)

// errorClass names the error classes of audit events.
func errorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNoIdentity):
		return "no_identity"
	case errors.Is(err, ErrNoTenant):
		return "no_tenant"
	case errors.Is(err, ErrInvalidTenant):
		return "invalid_tenant"
	case errors.Is(err, ErrUnknownTool):
		return "unknown_tool"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrInvalidArguments):
		return "invalid_arguments"
	case errors.Is(err, ErrInvalidGraph):
		return "invalid_graph"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrConcurrency):
		return "concurrency"
	case errors.Is(err, ErrLimiter), errors.Is(err, ErrLimiterFull):
		return "limiter"
	case errors.Is(err, ErrMethodRefused):
		return "method_refused"
	case errors.Is(err, ErrNoPlan):
		return "no_plan"
	case errors.Is(err, ErrGraphNotAllowed):
		return "graph_not_allowed"
	case errors.Is(err, ErrQuota):
		return "quota"
	case errors.Is(err, ErrQuotaCheck):
		return "quota_check"
	case errors.Is(err, ErrInternal):
		return "internal"
	case errors.Is(err, ErrToolError):
		return "tool_error"
	case errors.Is(err, ErrServer):
		return "server_error"
	}
	return "other"
}

// QuotaError reports a quota of a [Plan] that a call would exceed. It
// matches [ErrQuota].
type QuotaError struct {
	Plan  string // the plan's name
	Quota string // "maxGraphs", "maxGraphMemory" or "maxTotalMemory"
	Limit int64  // the quota's value (graphs or bytes)
	Used  int64  // what the tenant holds (graphs or bytes)
	Graph string // the logical graph, for maxGraphMemory
}

// Error describes the quota in words a client can act on.
func (e *QuotaError) Error() string {
	switch e.Quota {
	case "maxGraphs":
		return fmt.Sprintf("quota exceeded: plan %q allows at most %d graphs (maxGraphs) and the tenant holds %d; delete a graph first", e.Plan, e.Limit, e.Used)
	case "maxGraphMemory":
		return fmt.Sprintf("quota exceeded: plan %q allows %s per graph (maxGraphMemory) and graph %q uses %s; delete data from it first", e.Plan, FormatBytes(e.Limit), e.Graph, FormatBytes(e.Used))
	}
	return fmt.Sprintf("quota exceeded: plan %q allows %s in all graphs (%s) and the tenant's graphs use %s; delete data first", e.Plan, FormatBytes(e.Limit), e.Quota, FormatBytes(e.Used))
}

// Unwrap returns [ErrQuota].
func (e *QuotaError) Unwrap() error { return ErrQuota }
