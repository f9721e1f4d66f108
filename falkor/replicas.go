package falkor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// replicaSet is the connection pools of the replicas that read-only calls
// go to (Options.ReadFromReplicas).
type replicaSet struct {
	clients []*redis.Client
	next    atomic.Uint64 // round robin
}

// checkReplicas validates Options.Replicas and ReadFromReplicas. Error
// messages name the position of a bad address, never the address.
func (o *Options) checkReplicas() error {
	if len(o.Replicas) == 0 {
		if o.ReadFromReplicas {
			return errors.New("falkor: invalid options: ReadFromReplicas needs Replicas")
		}
		return nil
	}
	if o.Cluster || len(o.ClusterAddrs) > 0 {
		return errors.New("falkor: invalid options: Replicas cannot be combined with Cluster or ClusterAddrs (a cluster client finds its nodes itself)")
	}
	for i, a := range o.Replicas {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("falkor: invalid options: Replicas[%d] is not a \"host:port\" address", i)
		}
	}
	return nil
}

// newReplicaSet makes one go-redis client per replica address with the
// primary's settings base (as given to go-redis: no retries, same
// credentials, timeouts and TLS). It connects lazily: a replica that is
// down does not stop Open.
func newReplicaSet(base *redis.Options, opts Options) *replicaSet {
	rs := &replicaSet{}
	for _, a := range opts.Replicas {
		ro := *base
		ro.Network = "tcp"
		ro.Addr = a
		// A replica that refuses connections is skipped at once instead of
		// after go-redis' 5 dial attempts with back-off.
		ro.DialerRetries = 1
		ro.DialerRetryTimeout = time.Microsecond // go-redis waits this long even after its last attempt
		if ro.TLSConfig != nil {
			ro.TLSConfig = ro.TLSConfig.Clone()
			if opts.TLSConfig == nil {
				// From a rediss:// URL: verify the replica's own name.
				ro.TLSConfig.ServerName, _, _ = net.SplitHostPort(a)
			}
		}
		rs.clients = append(rs.clients, redis.NewClient(&ro))
	}
	return rs
}

// close closes every replica's pool.
func (rs *replicaSet) close() error {
	var errs []error
	for _, r := range rs.clients {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// onReader runs a read-only call f on a replica: the next in turn, then the
// others, then the primary, moving on only when f failed without sending
// its command (see notSent). Without ReadFromReplicas f runs once on the
// primary. f returns go-redis' error, unmapped.
func (c *Client) onReader(ctx context.Context, f func(redis.UniversalClient) error) error {
	if c.replicas == nil {
		return f(c.rdb)
	}
	n := uint64(len(c.replicas.clients))
	start := c.replicas.next.Add(1)
	for i := range n {
		err := f(c.replicas.clients[(start+i)%n])
		if !notSent(err) || ctx.Err() != nil {
			return err
		}
	}
	return f(c.rdb)
}

// doRead sends a read-only command (see onReader); in cluster mode, or
// without ReadFromReplicas, it is c.do.
func (c *Client) doRead(ctx context.Context, args ...any) (any, error) {
	if c.replicas == nil {
		return c.do(ctx, args...)
	}
	var reply any
	err := c.onReader(ctx, func(r redis.UniversalClient) error {
		var err error
		reply, err = r.Do(ctx, args...).Result()
		return err
	})
	return reply, err
}

// notSent reports an error after which the command certainly did not run:
// connecting failed (dial error: nothing was sent), or the server answered
// that it is loading its data or lost its primary (LOADING, MASTERDOWN),
// which it does before running anything. A timeout or a broken connection
// is not among them: the command may have run.
func notSent(err error) bool {
	if err == nil {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		return strings.HasPrefix(msg, "LOADING ") || strings.HasPrefix(msg, "MASTERDOWN ")
	}
	var oerr *net.OpError
	return errors.As(err, &oerr) && oerr.Op == "dial"
}
