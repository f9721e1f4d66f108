package falkor

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel errors. Test for them with [errors.Is]; the errors returned by
// [Client] methods wrap them with detail.
var (
	// ErrGraphNotFound reports that the graph does not exist (FalkorDB
	// answers "Invalid graph operation on empty key" to read-only queries,
	// EXPLAIN and DELETE on a missing graph).
	ErrGraphNotFound = errors.New("falkor: graph not found")

	// ErrReadOnly reports that a read-only query (GRAPH.RO_QUERY) tried to
	// write; the server refused it and nothing was changed.
	ErrReadOnly = errors.New("falkor: the query is read-only: it must not create, merge, set, delete or remove anything, nor change indexes")

	// ErrInvalidParameter reports a query parameter that cannot be sent
	// safely: a name that is not a Cypher identifier, a value of an
	// unsupported type, a non-finite number, a string with a NUL byte, ...
	// Nothing was sent to the server.
	ErrInvalidParameter = errors.New("falkor: invalid query parameter")

	// ErrQueryTooLong reports a query (with its encoded parameters) longer
	// than Options.MaxQueryLen. Nothing was sent to the server.
	ErrQueryTooLong = errors.New("falkor: query too long")

	// ErrLoadCSVDenied reports a query refused because it may use LOAD CSV
	// while Options.DenyLoadCSV is set. Nothing was sent to the server.
	ErrLoadCSVDenied = errors.New("falkor: LOAD CSV is not allowed")

	// ErrTimeout reports that a call did not finish in time: the context
	// deadline, Options.MaxTimeout or the server's own query timeout ran
	// out. A write query may still have run (completely) on the server.
	// When the context deadline was the cause, the error also matches
	// [context.DeadlineExceeded].
	ErrTimeout = errors.New("falkor: timeout")

	// ErrUnavailable reports that the server could not be reached or the
	// connection broke (refused, reset, closed, loading). It is worth
	// retrying later; a write query whose connection broke may or may not
	// have run.
	ErrUnavailable = errors.New("falkor: FalkorDB unavailable")

	// ErrClosed reports a call on a closed Client.
	ErrClosed = errors.New("falkor: client is closed")
)

// QueryError is an error reported by FalkorDB (or Redis) for a command, such
// as a syntax error or a type error in a query, or an ACL refusal. Message is
// the server's message, unchanged.
//
// Errors of known kinds (graph not found, read-only violation, server-side
// timeout) are QueryErrors that also match the sentinel in Kind with
// [errors.Is].
type QueryError struct {
	// Message is the server's error message.
	Message string
	// Kind is the sentinel this error matches, or nil.
	Kind error
}

// Error returns the sentinel's text for errors of a known kind, and the
// server's message otherwise.
func (e *QueryError) Error() string {
	if e.Kind != nil {
		return e.Kind.Error()
	}
	return "falkor: server error: " + e.Message
}

// Unwrap returns Kind.
func (e *QueryError) Unwrap() error { return e.Kind }

// connError is a transport-level failure or an interrupted call. Its text
// never contains the server address (net errors do); the causes, the first
// of which is the sentinel, stay reachable with errors.Is and errors.As.
type connError struct {
	msg    string
	causes []error
}

func (e *connError) Error() string   { return e.msg }
func (e *connError) Unwrap() []error { return e.causes }

func newConnError(kind error, detail string, causes ...error) error {
	msg := kind.Error()
	if detail != "" {
		msg += ": " + detail
	}
	return &connError{msg: msg, causes: append([]error{kind}, causes...)}
}

// timeoutError is the error of a call whose time ran out before it was sent.
func timeoutError(ctx context.Context) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	if errors.Is(cause, context.Canceled) {
		return &connError{msg: "falkor: call canceled", causes: []error{cause}}
	}
	return newConnError(ErrTimeout, "the deadline passed before the query was sent", cause)
}

// Server error messages we classify. They are FalkorDB's own texts.
const (
	msgEmptyKey   = "Invalid graph operation on empty key"
	msgReadOnly   = "is to be executed only on read-only queries"
	msgTimedOut   = "Query timed out"
	msgUnknownCmd = "unknown command"
)

// mapError turns an error from go-redis into one of this package's errors.
func mapError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return serverError(rerr.Error())
	}
	if errors.Is(err, redis.ErrClosed) {
		return newConnError(ErrClosed, "", err)
	}
	ctxErr := ctx.Err()
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return newConnError(ErrTimeout, "context deadline exceeded", ctxErr, err)
	case ctxErr != nil || errors.Is(err, context.Canceled):
		return &connError{msg: "falkor: call canceled", causes: []error{context.Canceled, err}}
	case errors.Is(err, context.DeadlineExceeded):
		return newConnError(ErrTimeout, "context deadline exceeded", err)
	case errors.Is(err, redis.ErrPoolTimeout):
		return newConnError(ErrUnavailable, "all connections are busy (pool exhausted)", err)
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		// The socket deadline is the context deadline when that is the
		// nearer one; the socket may notice a moment before the context.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 10*time.Millisecond {
			return newConnError(ErrTimeout, "context deadline exceeded", context.DeadlineExceeded, err)
		}
		return newConnError(ErrTimeout, "no reply within Options.MaxTimeout", err)
	}
	detail := "connection failed"
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		detail = "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		detail = "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		detail = "connection closed by the server"
	case errors.Is(err, os.ErrNotExist):
		detail = "socket not found"
	case errors.Is(err, os.ErrPermission):
		detail = "permission denied"
	default:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			detail = "host name not resolved"
		}
	}
	return newConnError(ErrUnavailable, detail, err)
}

// serverError classifies an error reply of the server.
func serverError(msg string) error {
	switch {
	case strings.Contains(msg, msgEmptyKey):
		return &QueryError{Message: msg, Kind: ErrGraphNotFound}
	case strings.HasPrefix(msg, "NOPERM"):
		return &QueryError{Message: msg, Kind: ErrPermission}
	case strings.Contains(msg, msgReadOnly):
		return &QueryError{Message: msg, Kind: ErrReadOnly}
	case strings.HasPrefix(msg, msgTimedOut):
		return &QueryError{Message: msg, Kind: ErrTimeout}
	case strings.HasPrefix(msg, "MOVED "), strings.HasPrefix(msg, "ASK "):
		// Not run: the key's slot is served by another node (cluster mode).
		// Keep the node's address out of the message.
		return &QueryError{Message: firstWord(msg) + ": the graph's slot is being moved to another node", Kind: ErrUnavailable}
	case strings.HasPrefix(msg, "LOADING"), strings.HasPrefix(msg, "MASTERDOWN"),
		strings.HasPrefix(msg, "TRYAGAIN"), strings.HasPrefix(msg, "CLUSTERDOWN"),
		strings.HasPrefix(msg, "BUSY "):
		return &QueryError{Message: msg, Kind: ErrUnavailable}
	}
	return &QueryError{Message: msg}
}
