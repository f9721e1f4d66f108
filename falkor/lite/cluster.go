package lite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// numSlots is the number of Redis Cluster hash slots.
const numSlots = 16384

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Options are those of every node (binaries, password, extra Args, Log). UnixSocket
	// is not supported: cluster nodes listen on 127.0.0.1 ports.
	Options
	// Primaries is the number of primaries (at least 1; 3 when 0). The hash slots are
	// split evenly between them in order.
	Primaries int
	// ReplicasPerPrimary is the number of replicas of each primary (0 or more).
	ReplicasPerPrimary int
	// NodeTimeout is cluster-node-timeout: how long a node may be unreachable before
	// the others consider it failed (and a replica takes over). Default 2 s.
	NodeTimeout time.Duration
}

// Cluster is a running Redis Cluster of FalkorDB nodes on loopback ports, started by
// StartCluster. Its methods are safe for concurrent use.
type Cluster struct {
	nodes    []*Node
	password string
}

// Node is one node of a Cluster: its Server (Kill, Restart and Addr work as for a
// single server) and its place in the cluster as formed by StartCluster.
type Node struct {
	*Server
	// ID is the node's cluster ID (CLUSTER MYID).
	ID string
	// ReplicaOf is the ID of the primary this node was made a replica of, or "" for a
	// primary. It is not updated after a failover: ask Role.
	ReplicaOf string
	// Slots is the first and last hash slot given to a primary (empty for a replica).
	Slots [2]int
}

// Role asks the node for its current role: "master" or "slave" (ROLE).
func (n *Node) Role(ctx context.Context) (string, error) {
	c := n.client()
	defer c.Close()
	reply, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", fmt.Errorf("lite: ROLE: %w", err)
	}
	if len(reply) == 0 {
		return "", errors.New("lite: empty ROLE reply")
	}
	role, _ := reply[0].(string)
	return role, nil
}

// client is a short-lived admin connection to the node; the caller closes it.
func (n *Node) client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            n.addr,
		Password:        n.password,
		Protocol:        2,
		DisableIdentity: true,
		MaxRetries:      -1,
		DialTimeout:     time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		PoolSize:        1,
	})
}

// running reports whether the node's process is alive (not killed or closed).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.proc == nil {
		return false
	}
	select {
	case <-s.proc.done:
		return false
	default:
		return true
	}
}

// StartCluster starts a Redis Cluster of FalkorDB nodes (Primaries ×
// (1 + ReplicasPerPrimary) servers, each as Start would start it, with cluster-enabled
// and its cluster config file in its private dir), forms it with CLUSTER MEET,
// CLUSTER ADDSLOTSRANGE and CLUSTER REPLICATE, and returns once every node reports
// cluster_state:ok with the same slot map, every replica is in sync, and GRAPH.QUERY
// answers on every primary. No external tool is needed.
//
// On failure every node started is stopped. ctx bounds the whole start (60 seconds if
// it has no deadline).
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Primaries == 0 {
		opts.Primaries = 3
	}
	switch {
	case opts.Primaries < 1 || opts.ReplicasPerPrimary < 0 || opts.NodeTimeout < 0:
		return nil, errors.New("lite: invalid cluster options: negative Primaries, ReplicasPerPrimary or NodeTimeout")
	case opts.UnixSocket:
		return nil, errors.New("lite: invalid cluster options: cluster nodes cannot use unix sockets")
	}
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = 2 * time.Second
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	bins, err := FindBinaries(ctx, opts.Options)
	if err != nil {
		return nil, err
	}
	n := opts.Primaries * (1 + opts.ReplicasPerPrimary)
	cl := &Cluster{nodes: make([]*Node, n), password: opts.Password}
	errs := make([]error, n)
	var wg sync.WaitGroup
	conf := clusterConf{enabled: true, nodeTimeout: opts.NodeTimeout}
	for i := range n {
		wg.Go(func() {
			s, err := startNode(ctx, bins, opts.Options, freePort, conf)
			if err != nil {
				errs[i] = err
				return
			}
			cl.nodes[i] = &Node{Server: s}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = cl.Close()
		return nil, err
	}
	if err := cl.form(ctx, opts.Primaries); err != nil {
		_ = cl.Close()
		return nil, err
	}
	return cl, nil
}

// form joins the started nodes into a cluster: nodes [0, primaries) are primaries, the
// others replicas of primary i % primaries.
func (cl *Cluster) form(ctx context.Context, primaries int) error {
	clients := make([]*redis.Client, len(cl.nodes))
	for i, nd := range cl.nodes {
		clients[i] = nd.client()
	}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for i, c := range clients {
		id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("lite: CLUSTER MYID: %w", err)
		}
		cl.nodes[i].ID = id
	}
	for i, nd := range cl.nodes[1:] {
		host, port, _ := net.SplitHostPort(nd.addr)
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", host, port, strconv.Itoa(nd.cluster.busPort)).Err(); err != nil {
			return fmt.Errorf("lite: CLUSTER MEET node %d: %w", i+1, err)
		}
	}
	for i := range primaries {
		first, last := i*numSlots/primaries, (i+1)*numSlots/primaries-1
		cl.nodes[i].Slots = [2]int{first, last}
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			return fmt.Errorf("lite: CLUSTER ADDSLOTSRANGE: %w", err)
		}
	}
	// A replica can follow only a primary it knows: wait until every node knows all.
	if err := poll(ctx, func() error {
		for i, c := range clients {
			nodes, err := c.Do(ctx, "CLUSTER", "NODES").Text()
			if err != nil {
				return err
			}
			if got := len(strings.Split(strings.TrimSpace(nodes), "\n")); got != len(clients) {
				return fmt.Errorf("node %d knows %d of %d nodes", i, got, len(clients))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for i := primaries; i < len(cl.nodes); i++ {
		primary := cl.nodes[i%primaries].ID
		cl.nodes[i].ReplicaOf = primary
		if err := clients[i].Do(ctx, "CLUSTER", "REPLICATE", primary).Err(); err != nil {
			return fmt.Errorf("lite: CLUSTER REPLICATE: %w", err)
		}
	}
	if err := cl.WaitHealthy(ctx); err != nil {
		return err
	}
	for i := range primaries {
		if err := probeGraph(ctx, clients[i]); err != nil {
			return fmt.Errorf("lite: primary %d: %w", i, err)
		}
	}
	return nil
}

// probeGraph runs GRAPH.QUERY on a key of one of the node's own slots.
func probeGraph(ctx context.Context, c *redis.Client) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	own, err := ownSlots(ctx, c)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		key := "lite-ready-" + hex.EncodeToString(rnd[:]) + "-" + strconv.Itoa(i)
		slot, err := c.Do(ctx, "CLUSTER", "KEYSLOT", key).Int()
		if err != nil {
			return err
		}
		if !own[slot] {
			continue
		}
		if err := c.Do(ctx, "GRAPH.QUERY", key, "RETURN 1").Err(); err != nil {
			return fmt.Errorf("GRAPH.QUERY: %w", err)
		}
		return c.Do(ctx, "GRAPH.DELETE", key).Err()
	}
}

// ownSlots returns the slots the node serves as a primary, from CLUSTER NODES.
func ownSlots(ctx context.Context, c *redis.Client) (map[int]bool, error) {
	text, err := c.Do(ctx, "CLUSTER", "NODES").Text()
	if err != nil {
		return nil, err
	}
	own := map[int]bool{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "myself") {
			continue
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			a, b, found := strings.Cut(r, "-")
			if !found {
				b = a
			}
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("unexpected CLUSTER NODES slot range %q", r)
			}
			for s := lo; s <= hi; s++ {
				own[s] = true
			}
		}
	}
	if len(own) == 0 {
		return nil, errors.New("the node serves no slot")
	}
	return own, nil
}

// WaitHealthy waits until every running node reports cluster_state:ok, all of them
// agree on which node serves which slots (every slot served) and list every other running
// node in CLUSTER SLOTS, and every running replica has its link to its primary up. Use it after a failover or a Restart. Killed nodes
// are left out.
func (cl *Cluster) WaitHealthy(ctx context.Context) error {
	return poll(ctx, func() error {
		var ref string
		for i, nd := range cl.nodes {
			if !nd.running() {
				continue
			}
			c := nd.client()
			err := func() error {
				defer c.Close()
				info, err := c.Do(ctx, "CLUSTER", "INFO").Text()
				if err != nil {
					return err
				}
				if st := infoField(info, "cluster_state"); st != "ok" {
					return fmt.Errorf("node %d: cluster_state %s", i, st)
				}
				m, err := slotMap(ctx, c)
				if err != nil {
					return err
				}
				// Every running replica is listed, so that clients that
				// reach "every node" through the slot map reach it too
				// (a replica is listed once its offset is gossiped).
				for j, r := range cl.nodes {
					if r.running() && r != nd && !strings.Contains(m, " "+r.addr) {
						return fmt.Errorf("node %d does not list node %d", i, j)
					}
				}
				if ref == "" {
					ref = m
				} else if m != ref {
					return fmt.Errorf("node %d disagrees on the slot map", i)
				}
				repl, err := c.Info(ctx, "replication").Result()
				if err != nil {
					return err
				}
				if infoField(repl, "role") == "slave" && infoField(repl, "master_link_status") != "up" {
					return fmt.Errorf("node %d: replica link down", i)
				}
				return nil
			}()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// slotMap is a canonical text of the node's view: "first-last primary-addr replica-addrs"
// per range, sorted, covering every slot.
func slotMap(ctx context.Context, c *redis.Client) (string, error) {
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	var lines []string
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			return "", errors.New("slot range without a node")
		}
		covered += s.End - s.Start + 1
		line := fmt.Sprintf("%05d-%05d %s", s.Start, s.End, s.Nodes[0].Addr)
		var replicas []string
		for _, r := range s.Nodes[1:] {
			replicas = append(replicas, r.Addr)
		}
		sort.Strings(replicas)
		for _, r := range replicas {
			line += " " + r
		}
		lines = append(lines, line)
	}
	if covered != numSlots {
		return "", fmt.Errorf("%d of %d slots served", covered, numSlots)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), nil
}

// poll calls f until it returns nil or ctx ends.
func poll(ctx context.Context, f func() error) error {
	delay := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lite: cluster not ready (last check: %v): %w", err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// Addrs returns the "127.0.0.1:port" addresses of all nodes (seed addresses for a
// cluster client), primaries first.
func (cl *Cluster) Addrs() []string {
	out := make([]string, len(cl.nodes))
	for i, nd := range cl.nodes {
		out[i] = nd.addr
	}
	return out
}

// Password returns the password every node requires ("" if none).
func (cl *Cluster) Password() string { return cl.password }

// Nodes returns the nodes, primaries first (in slot order), then the replicas.
func (cl *Cluster) Nodes() []*Node { return append([]*Node(nil), cl.nodes...) }

// Primaries returns the nodes started as primaries, in slot order.
func (cl *Cluster) Primaries() []*Node {
	var out []*Node
	for _, nd := range cl.nodes {
		if nd.ReplicaOf == "" {
			out = append(out, nd)
		}
	}
	return out
}

// ReplicasOf returns the nodes started as replicas of primary.
func (cl *Cluster) ReplicasOf(primary *Node) []*Node {
	var out []*Node
	for _, nd := range cl.nodes {
		if nd.ReplicaOf != "" && nd.ReplicaOf == primary.ID {
			out = append(out, nd)
		}
	}
	return out
}

// Failover makes replica take over its primary's slots at once (CLUSTER FAILOVER
// TAKEOVER, which needs no agreement from the other nodes, so it works with the primary
// killed). It returns when the command is accepted; follow with WaitHealthy.
func (cl *Cluster) Failover(ctx context.Context, replica *Node) error {
	c := replica.client()
	defer c.Close()
	if err := c.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
		return fmt.Errorf("lite: CLUSTER FAILOVER TAKEOVER: %w", err)
	}
	return nil
}

// Close stops every node and removes their directories. It is safe to call more
// than once.
func (cl *Cluster) Close() error {
	errs := make([]error, len(cl.nodes))
	var wg sync.WaitGroup
	for i, nd := range cl.nodes {
		if nd == nil {
			continue
		}
		wg.Go(func() { errs[i] = nd.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
