package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeRecorder records each Write it gets.
type writeRecorder struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (r *writeRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), r.err
}

func (r *writeRecorder) all() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.writes, ""), len(r.writes)
}

func TestBatchWriter(t *testing.T) {
	t.Run("lines of a burst go out in one write, whole and in order", func(t *testing.T) {
		rec := &writeRecorder{}
		bw := newBatchWriter(rec, 50*time.Millisecond)
		var want strings.Builder
		for i := range 100 {
			line := fmt.Sprintf("{\"n\":%d}\n", i)
			want.WriteString(line)
			n, err := bw.Write([]byte(line))
			require.NoError(t, err)
			require.Equal(t, len(line), n)
		}
		require.Eventually(t, func() bool { got, _ := rec.all(); return got == want.String() }, 5*time.Second, time.Millisecond)
		_, writes := rec.all()
		require.Less(t, writes, 10, "lines were not batched")
		require.NoError(t, bw.Close())
	})
	t.Run("a lone line is written within the interval, without Close", func(t *testing.T) {
		rec := &writeRecorder{}
		bw := newBatchWriter(rec, 5*time.Millisecond)
		defer bw.Close()
		bw.Write([]byte("one\n"))
		require.Eventually(t, func() bool { got, _ := rec.all(); return got == "one\n" }, 5*time.Second, time.Millisecond)
		bw.Write([]byte("two\n"))
		require.Eventually(t, func() bool { got, _ := rec.all(); return got == "one\ntwo\n" }, 5*time.Second, time.Millisecond)
	})
	t.Run("Close writes what is left, later lines go out at once", func(t *testing.T) {
		rec := &writeRecorder{}
		bw := newBatchWriter(rec, time.Hour)
		bw.Write([]byte("a\n"))
		bw.Write([]byte("b\n"))
		got, _ := rec.all()
		require.Empty(t, got, "written before the interval")
		require.NoError(t, bw.Close())
		got, writes := rec.all()
		require.Equal(t, "a\nb\n", got)
		require.Equal(t, 1, writes)
		bw.Write([]byte("c\n"))
		got, _ = rec.all()
		require.Equal(t, "a\nb\nc\n", got)
		require.NoError(t, bw.Close(), "second Close")
	})
	t.Run("a full batch is written without waiting", func(t *testing.T) {
		rec := &writeRecorder{}
		bw := newBatchWriter(rec, time.Hour)
		defer bw.Close()
		line := strings.Repeat("x", 1023) + "\n"
		for range batchLimit / len(line) {
			bw.Write([]byte(line))
		}
		got, writes := rec.all()
		require.Equal(t, 1, writes)
		require.Len(t, got, batchLimit)
	})
	t.Run("concurrent writers: every line whole, each writer's in order", func(t *testing.T) {
		rec := &writeRecorder{}
		bw := newBatchWriter(rec, time.Millisecond)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := range 500 {
					bw.Write(fmt.Appendf(nil, "w%d %d\n", w, i))
				}
			})
		}
		wg.Wait()
		require.NoError(t, bw.Close())
		got, _ := rec.all()
		next := map[string]int{}
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		require.Len(t, lines, 8*500)
		for _, l := range lines {
			var w string
			var i int
			_, err := fmt.Sscanf(l, "%s %d", &w, &i)
			require.NoError(t, err, l)
			require.Equal(t, next[w], i, "writer %s out of order", w)
			next[w]++
		}
	})
	t.Run("a write error is reported by Close, lines keep coming", func(t *testing.T) {
		broken := errors.New("disk full")
		rec := &writeRecorder{err: broken}
		bw := newBatchWriter(rec, time.Millisecond)
		_, err := bw.Write([]byte("a\n"))
		require.NoError(t, err)
		require.Eventually(t, func() bool { _, n := rec.all(); return n == 1 }, 5*time.Second, time.Millisecond)
		bw.Write([]byte("b\n"))
		require.ErrorIs(t, bw.Close(), broken)
		got, _ := rec.all()
		require.Equal(t, "a\nb\n", got)
	})
}

// TestLogFlushSetting: LOG_FLUSH batches log lines for 10 ms by default, 0
// turns batching off, anything else must be a duration. (TestQuickstart
// checks on the built binary that the last line, "stopped", is written.)
func TestLogFlushSetting(t *testing.T) {
	for _, tt := range []struct {
		val  string
		want time.Duration
		err  bool
	}{
		{"", 10 * time.Millisecond, false},
		{"0", 0, false},
		{"250ms", 250 * time.Millisecond, false},
		{"-1s", 0, true},
		{"soon", 0, true},
	} {
		env := map[string]string{"LOG_FLUSH": tt.val}
		if tt.val == "" {
			delete(env, "LOG_FLUSH")
		}
		cfg, err := parseConfig(nil, func(k string) string { return env[k] }, &bytes.Buffer{})
		if tt.err {
			require.ErrorContains(t, err, "LOG_FLUSH", tt.val)
			continue
		}
		require.NoError(t, err, tt.val)
		require.Equal(t, tt.want, cfg.LogFlush, tt.val)
	}
}
