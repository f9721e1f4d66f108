package tenancy_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/tenantgraph/tenantgraph/tenancy"
)

// Count every tenant's calls in the FalkorDB (or Redis) that all replicas
// share, log them as well, and let tenant admins read their own usage with
// the tool tenant_usage.
func ExampleUsage() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", MaxRetries: -1})
	defer rdb.Close()
	usage := tenancy.NewUsage(rdb, nil) // flushes every second
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := usage.Close(ctx); err != nil { // the last flush
			log.Print(err)
		}
	}()
	logged := tenancy.NewSlogAuditor(slog.Default(), nil)

	server := mcp.NewServer(&mcp.Implementation{Name: "graphs", Version: "1"}, nil)
	// falkor.AddTools(server, client, nil) and tools of your own here.
	tenancy.AddUsageTool(server, usage)
	mw, err := tenancy.New(tenancy.Config{
		Tools: tenancy.MergeTools(tenancy.FalkorTools(), tenancy.UsageTools()),
		Auditor: tenancy.AuditFunc(func(ctx context.Context, e *tenancy.Event) {
			logged.Audit(ctx, e)
			usage.Audit(ctx, e)
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	server.AddReceivingMiddleware(mw)

	// Operators read any tenant's usage directly.
	report, err := usage.Report(context.Background(), "acme", 30)
	if err == nil {
		fmt.Println(report.Total.Calls, "calls in 30 days")
	}
}

// The keys of one tenant, for SCAN or for inspection.
func ExampleUsage_Keys() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	usage := tenancy.NewUsage(rdb, nil)
	defer usage.Close(context.Background()) // nothing to flush: no connection

	fmt.Println(usage.Keys("acme"))
	fmt.Println(usage.Keys("*"))
	tenant, day, ok := usage.ParseKey("tenantgraph:usage:{YWNtZQ}:2026-11-29")
	fmt.Println(tenant, day.Format(time.DateOnly), ok)
	// Output:
	// tenantgraph:usage:{YWNtZQ}:*
	// tenantgraph:usage:{Kg}:*
	// acme 2026-11-29 true
}
