package falkor_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tenantgraph/tenantgraph/falkor"
)

func ExampleOpen() {
	ctx := context.Background()
	c, err := falkor.Open(ctx, "redis://localhost:6379", falkor.Options{
		MaxTimeout:  10 * time.Second, // no call waits longer
		MaxRows:     1000,             // longer results are cut and marked Truncated
		MaxQueryLen: 64 << 10,
		DenyLoadCSV: true, // tenant-facing: the server must not fetch URLs
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Connect to a Redis Cluster of FalkorDB nodes: the URL is the first seed and
// gives the password of every node.
func ExampleOpen_cluster() {
	ctx := context.Background()
	c, err := falkor.Open(ctx, "redis://:secret@10.0.0.1:6379", falkor.Options{
		ClusterAddrs: []string{"10.0.0.2:6379", "10.0.0.3:6379"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	graphs, err := c.ListGraphs(ctx) // the union over every primary
	if errors.Is(err, falkor.ErrUnavailable) {
		log.Print("a primary is down; try again later")
	}
	fmt.Println(graphs, err)
}

// Connect to a primary with two replicas and read from the replicas; writes
// go to the primary. A read may not yet see a write just made.
func ExampleOpen_replicas() {
	ctx := context.Background()
	c, err := falkor.Open(ctx, "redis://:secret@10.0.0.1:6379", falkor.Options{
		Replicas:         []string{"10.0.0.2:6379", "10.0.0.3:6379"},
		ReadFromReplicas: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Query(ctx, "movies", "CREATE (:Movie {title: 'Alien'})", nil); err != nil {
		log.Fatal(err) // never resent: it may have run
	}
	res, err := c.ROQuery(ctx, "movies", "MATCH (m:Movie) RETURN count(m)", nil) // a replica
	fmt.Println(res, err)
}

func ExampleClient_Query() {
	ctx := context.Background()
	c, err := falkor.Open(ctx, "redis://localhost:6379", falkor.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Values travel as parameters, never pasted into the query text. JSON
	// numbers (float64) that are integral arrive as integers.
	res, err := c.Query(ctx, "movies",
		"CREATE (m:Movie {title: $title, year: $year}) RETURN m",
		map[string]any{"title": `Dr. Strangelove or: How I Learned to Stop Worrying and Love the "Bomb"`, "year": 1964.0})
	if err != nil {
		log.Fatal(err)
	}
	m := res.Rows[0][0].(falkor.Node)
	fmt.Println(m.Labels, m.Properties["year"], res.Stats.NodesCreated)
}

func ExampleClient_ROQuery() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := falkor.Open(ctx, "redis://localhost:6379", falkor.Options{MaxRows: 100})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	res, err := c.ROQuery(ctx, "movies", "MATCH (m:Movie) WHERE m.year < $year RETURN m.title", map[string]any{"year": 1970})
	switch {
	case errors.Is(err, falkor.ErrGraphNotFound):
		fmt.Println("no such graph")
	case errors.Is(err, falkor.ErrReadOnly):
		fmt.Println("the query tried to write")
	case errors.Is(err, falkor.ErrTimeout):
		fmt.Println("too slow")
	case err != nil:
		var qe *falkor.QueryError
		if errors.As(err, &qe) {
			fmt.Println("FalkorDB says:", qe.Message)
		}
	default:
		for _, row := range res.Rows {
			fmt.Println(row[0])
		}
		if res.Truncated {
			fmt.Println("... and more")
		}
	}
}

func ExampleAddTools() {
	ctx := context.Background()
	c, err := falkor.Open(ctx, "redis://localhost:6379", falkor.Options{MaxRows: 500, DenyLoadCSV: true})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	server := mcp.NewServer(&mcp.Implementation{Name: "graphs", Version: "v1"}, nil)
	falkor.AddTools(server, c, &falkor.ToolOptions{ReadOnly: true}) // ro_query, list_graphs, graph_schema, explain
	if err := server.Run(ctx, &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}

func ExampleMentionsLoadCSV() {
	for _, q := range []string{
		"LOAD CSV FROM 'https://example.com/x.csv' AS row RETURN row",
		"load /* hidden */\n csv from $url as row return row",
		"MATCH (d:Download {format: $format}) RETURN d",
	} {
		fmt.Println(falkor.MentionsLoadCSV(q))
	}
	// Output:
	// true
	// true
	// false
}
