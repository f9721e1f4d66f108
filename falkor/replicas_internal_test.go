package falkor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestNotSent checks which failures let a read-only call move on to another
// server: only those after which the command certainly did not run.
func TestNotSent(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"dial refused", dial, true},
		{"dial wrapped", fmt.Errorf("pool: %w", dial), true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
		{"write reset", &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}, false},
		{"EOF", io.EOF, false},
		{"context deadline", context.DeadlineExceeded, false},
		{"pool timeout", redis.ErrPoolTimeout, false},
		{"closed", redis.ErrClosed, false},
		{"loading", redisError("LOADING Redis is loading the dataset in memory"), true},
		{"masterdown", redisError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{"read-only query", redisError("graph.RO_QUERY is to be executed only on read-only queries"), false},
		{"other server error", redisError("ERR something"), false},
		{"plain error", errors.New("dial"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, notSent(tt.err))
		})
	}
}
