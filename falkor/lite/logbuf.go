package lite

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// logBufferSize is how much of the server log is kept in memory: at least the last
// logBufferSize bytes, at most twice that (trimming only then keeps writes O(1)).
const logBufferSize = 64 << 10

// logBuffer keeps the end of what is written to it and copies everything to an optional
// writer. It is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > 2*logBufferSize {
		over := len(l.buf) - logBufferSize
		// Drop whole lines where possible so the first kept line is not cut.
		cut := over
		if i := bytes.IndexByte(l.buf[over:], '\n'); i >= 0 && i < 1024 {
			cut = over + i + 1
		}
		l.buf = append(l.buf[:0], l.buf[cut:]...)
	}
	if l.out != nil {
		// A failing log copy must not stop the server: ignore its error.
		_, _ = l.out.Write(p)
	}
	return len(p), nil
}

// lines returns all kept, non-empty lines.
func (l *logBuffer) lines() []string {
	l.mu.Lock()
	s := string(l.buf)
	l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimRight(line, "\r"); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// tail returns the last n non-empty lines.
func (l *logBuffer) tail(n int) []string {
	ls := l.lines()
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return ls
}

// contains reports whether the kept log contains s.
func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.buf, []byte(s))
}

// reset forgets the kept log (used on restart).
func (l *logBuffer) reset() {
	l.mu.Lock()
	l.buf = l.buf[:0]
	l.mu.Unlock()
}
