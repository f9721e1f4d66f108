package lite_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantgraph/tenantgraph/falkor/lite"
)

// Start a private FalkorDB, query it with go-redis, stop it. (No Output line: the example
// is compiled but not run, since it may download the binaries.)
func ExampleStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := lite.Start(ctx, lite.Options{Password: "secret", UnixSocket: true})
	var se *lite.StartError
	if errors.As(err, &se) && se.MissingLibrary != "" {
		log.Fatalf("install the system package %s first: %v", se.Package, err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	res, err := rdb.Do(ctx, "GRAPH.QUERY", "movies", "CREATE (:Movie {title: 'Heat'}) RETURN 1").Result()
	fmt.Println(res, err)
}

// FindBinaries tells where redis-server and the module come from, provisioning them into
// the user's cache if needed; useful to warm the cache before tests run in parallel.
func ExampleFindBinaries() {
	b, err := lite.FindBinaries(context.Background(), lite.Options{})
	if errors.Is(err, lite.ErrBinaryNotFound) {
		log.Fatalf("no FalkorDB binaries: %v", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.RedisServer, b.Module)
}

func ExampleLibraryPackage() {
	pkg, _ := lite.LibraryPackage("libgomp.so.1")
	fmt.Println(pkg)
	// Output: libgomp1
}

// Start a cluster of three primaries with a replica each, write a graph through
// go-redis' cluster client, and fail a primary over to its replica. (No Output line: the
// example is compiled but not run.)
func ExampleStartCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := lite.StartCluster(ctx, lite.ClusterOptions{Primaries: 3, ReplicasPerPrimary: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), MaxRedirects: -1, MaxRetries: -1})
	defer rdb.Close()
	fmt.Println(rdb.Do(ctx, "GRAPH.QUERY", "movies", "CREATE (:Movie {title: 'Heat'})").Err())

	primary := cl.Primaries()[0]
	if err := primary.Kill(); err != nil {
		log.Fatal(err)
	}
	if err := cl.Failover(ctx, cl.ReplicasOf(primary)[0]); err != nil {
		log.Fatal(err)
	}
	fmt.Println(cl.WaitHealthy(ctx))
}
