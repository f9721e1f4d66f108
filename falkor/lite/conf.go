package lite

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// serverConfig is what goes into the redis.conf written to the server's private dir.
// Secrets (requirepass) are kept out of the command line, where other users could read
// them in the process list.
type serverConfig struct {
	dir      string
	port     int    // 0 with a unix socket
	socket   string // unix socket path, or ""
	password string
	module   string
	cluster  clusterConf
}

// clusterConf makes a server a Redis Cluster node (see StartCluster).
type clusterConf struct {
	enabled     bool
	busPort     int // cluster-port (the cluster bus); never 0 when enabled
	nodeTimeout time.Duration
}

func (c serverConfig) String() string {
	var b strings.Builder
	line := func(k string, vs ...string) {
		b.WriteString(k)
		for _, v := range vs {
			b.WriteByte(' ')
			b.WriteString(v)
		}
		b.WriteByte('\n')
	}
	line("daemonize", "no")
	line("logfile", `""`)
	line("dir", quoteConfig(c.dir))
	line("save", `""`)
	line("appendonly", "no")
	line("bind", "127.0.0.1")
	line("protected-mode", "yes")
	line("port", strconv.Itoa(c.port))
	if c.socket != "" {
		line("unixsocket", quoteConfig(c.socket))
		line("unixsocketperm", "700")
	}
	if c.password != "" {
		line("requirepass", quoteConfig(c.password))
	}
	if c.cluster.enabled {
		line("cluster-enabled", "yes")
		line("cluster-config-file", quoteConfig(filepath.Join(c.dir, "nodes.conf")))
		line("cluster-port", strconv.Itoa(c.cluster.busPort))
		line("cluster-node-timeout", strconv.FormatInt(c.cluster.nodeTimeout.Milliseconds(), 10))
		if c.password != "" {
			line("masterauth", quoteConfig(c.password)) // replicas log in to their primary
		}
	}
	line("loadmodule", quoteConfig(c.module))
	return b.String()
}

// quoteConfig quotes s for a redis.conf line: double quotes, with \" and \\ escaped and
// every byte outside printable ASCII written as \xHH (redis' sdssplitargs reads these
// back byte for byte).
func quoteConfig(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
