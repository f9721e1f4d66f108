package main

import (
	"io"
	"sync"
	"time"
)

// batchWriter writes log lines in batches: a line is written at most
// `every` after it arrived, together with the lines that arrived since, in
// one write. The proxy writes an access and an audit line per call; one
// write system call per line was about a tenth of its CPU per call
// (examples/bench). Lines are kept whole and in order. Close writes what
// is left; a crash loses at most the last `every` of lines (LOG_FLUSH=0
// writes each line at once instead).
type batchWriter struct {
	w     io.Writer
	every time.Duration

	mu      sync.Mutex
	buf     []byte
	spare   []byte // the last batch's buffer, for the next batch
	err     error  // the first write error, reported by Close
	closed  bool
	kick    chan struct{} // a batch has started
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when the flusher has returned

	flushMu sync.Mutex // orders the writes of batches
}

// batchLimit is the size of a batch that is written at once, without
// waiting for the interval.
const batchLimit = 64 << 10

func newBatchWriter(w io.Writer, every time.Duration) *batchWriter {
	b := &batchWriter{w: w, every: every, kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go b.flusher()
	return b
}

// Write adds p, one log line, to the batch. It does not fail: write errors
// of the underlying writer are reported by Close (a log line cannot be
// refused back to slog's caller anyway). After Close it writes at once.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.flushMu.Lock()
		defer b.flushMu.Unlock()
		b.flushLocked() // a batch Close is still writing goes first
		return b.w.Write(p)
	}
	first := len(b.buf) == 0
	b.buf = append(b.buf, p...)
	full := len(b.buf) >= batchLimit
	b.mu.Unlock()
	switch {
	case full:
		b.flush()
	case first:
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// flusher writes each batch `every` after it started.
func (b *batchWriter) flusher() {
	defer close(b.stopped)
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-b.kick:
		case <-b.done:
			return
		}
		t.Reset(b.every)
		select {
		case <-t.C:
			b.flush()
		case <-b.done:
			t.Stop()
			return
		}
	}
}

// flush writes the batch.
func (b *batchWriter) flush() {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.flushLocked()
}

// flushLocked writes the batch; b.flushMu is held.
func (b *batchWriter) flushLocked() {
	b.mu.Lock()
	data := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	if len(data) == 0 {
		return
	}
	_, err := b.w.Write(data)
	b.mu.Lock()
	if err != nil && b.err == nil {
		b.err = err
	}
	if cap(data) <= 2*batchLimit {
		b.spare = data[:0]
	}
	b.mu.Unlock()
}

// Close writes what is left and returns the first write error; later
// lines are written at once.
func (b *batchWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	<-b.stopped
	b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
