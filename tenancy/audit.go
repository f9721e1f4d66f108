package tenancy

import (
	"context"
	"log/slog"
	"time"
)

// Outcome is how a call ended, as an audit [Event] records it.
type Outcome string

// Outcomes of calls.
const (
	OutcomeOK        Outcome = "ok"         // the tool ran and succeeded
	OutcomeToolError Outcome = "tool_error" // the tool ran and reported an error
	OutcomeRefused   Outcome = "refused"    // the middleware refused; the tool did not run
	OutcomeError     Outcome = "error"      // the server answered with a JSON-RPC error
)

// Event is the audit record of one tools/call (or of a refused resources or
// prompts request). The tenant and subject come from the verified identity
// only, never from arguments or headers. Events never hold the query text
// unless [Config].AuditQueryText is set.
type Event struct {
	Time      time.Time     // when the request arrived
	RequestID string        // also in generic error messages shown to the client
	Method    string        // "tools/call", or the refused method
	Tenant    string        // empty when no valid identity was found
	Subject   string        // the token's subject
	Tool      string        // the tool the client named
	RoutedTo  string        // the tool that ran instead (read-only routing), or ""
	Graph     string        // the first logical graph name of the arguments, or ""
	QueryHash string        // hex SHA-256 of the query argument, or ""
	Query     string        // the query text, only with Config.AuditQueryText
	Outcome   Outcome       // how the call ended
	Class     string        // error class, "" when Outcome is OutcomeOK; see Err
	Err       error         // the refusal or failure; may hold internal detail: never show it to clients
	Duration  time.Duration // time spent in the middleware and the tool
	Rows      int           // rows (or graphs) returned when the result says, else -1
	Cached    bool          // the result came from the [ResultCache]; the tool did not run
}

// An Auditor receives one [Event] per call. Audit is called synchronously
// on the request path and must be safe for concurrent use; it should not
// block for long.
type Auditor interface {
	Audit(ctx context.Context, e *Event)
}

// AuditFunc adapts a function to the [Auditor] interface.
type AuditFunc func(ctx context.Context, e *Event)

// Audit calls f(ctx, e).
func (f AuditFunc) Audit(ctx context.Context, e *Event) { f(ctx, e) }

// SlogAuditorOptions configure the [Auditor] of [NewSlogAuditor].
type SlogAuditorOptions struct {
	// Message is the log message; empty means "tenancy.call".
	Message string

	// Level is the level of successful calls; refusals and errors are logged
	// at slog.LevelWarn or higher. The zero value is slog.LevelInfo.
	Level slog.Level

	// IncludeErrors adds the internal error text (attribute "error"), which
	// may contain details the client never saw (and, for database errors,
	// fragments of the query).
	IncludeErrors bool
}

// NewSlogAuditor returns an [Auditor] that writes each event as one log
// record with the attributes request_id, method, tenant, subject, tool,
// routed_to, graph, query_sha256, outcome, class, duration and rows (and
// query and error when configured). Records carry no source position
// (with slog.HandlerOptions.AddSource it would always be this package's
// line). opts may be nil.
func NewSlogAuditor(l *slog.Logger, opts *SlogAuditorOptions) Auditor {
	a := &slogAuditor{l: l, msg: "tenancy.call"}
	if opts != nil {
		if opts.Message != "" {
			a.msg = opts.Message
		}
		a.level = opts.Level
		a.errs = opts.IncludeErrors
	}
	return a
}

type slogAuditor struct {
	l     *slog.Logger
	msg   string
	level slog.Level
	errs  bool
}

func (a *slogAuditor) Audit(ctx context.Context, e *Event) {
	level := a.level
	if e.Outcome != OutcomeOK {
		level = max(level, slog.LevelWarn)
	}
	h := a.l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	// The record goes to the handler without a caller's pc: it would
	// always be this line, and finding it (runtime.Callers, as
	// Logger.LogAttrs does) was a third of the line's cost.
	r := slog.NewRecord(time.Now(), level, a.msg, 0)
	r.AddAttrs(
		slog.String("request_id", e.RequestID),
		slog.String("method", e.Method),
		slog.String("tenant", e.Tenant),
		slog.String("subject", e.Subject),
		slog.String("tool", e.Tool),
	)
	if e.RoutedTo != "" {
		r.AddAttrs(slog.String("routed_to", e.RoutedTo))
	}
	r.AddAttrs(
		slog.String("graph", e.Graph),
		slog.String("query_sha256", e.QueryHash),
	)
	if e.Query != "" {
		r.AddAttrs(slog.String("query", e.Query))
	}
	r.AddAttrs(
		slog.String("outcome", string(e.Outcome)),
		slog.String("class", e.Class),
		slog.Duration("duration", e.Duration),
		slog.Int("rows", e.Rows),
	)
	if a.errs && e.Err != nil {
		r.AddAttrs(slog.String("error", e.Err.Error()))
	}
	_ = h.Handle(ctx, r)
}
