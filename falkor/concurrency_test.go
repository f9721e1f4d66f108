package falkor_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantgraph/tenantgraph/falkor"
)

// One Client, 16 goroutines × 200 mixed queries returning nodes and edges,
// with labels, types and property keys appearing concurrently (so the name
// cache is refreshed while others read it). Run with -race.
func TestConcurrentQueries(t *testing.T) {
	const workers, perWorker = 16, 200
	db := startDB(t)
	c := open(t, db, falkor.Options{PoolSize: 8})
	graphs := []string{db.Graph("conc0"), db.Graph("conc1")}
	ctx := context.Background()
	for _, g := range graphs {
		_, err := c.Query(ctx, g, "CREATE (:Seed {v: 0})", nil)
		require.NoError(t, err)
	}

	check := func(w, i int) error {
		g := graphs[w%len(graphs)]
		label, rel, key := fmt.Sprintf("L%d", w), fmt.Sprintf("R%d", w), fmt.Sprintf("k%d", w)
		switch i % 4 {
		case 0:
			res, err := c.Query(ctx, g, "CREATE (n:"+label+" {i: $i}) SET n."+key+" = $w RETURN n",
				map[string]any{"i": i, "w": w})
			if err != nil {
				return err
			}
			n, ok := res.Rows[0][0].(falkor.Node)
			if !ok || !slices.Equal(n.Labels, []string{label}) || n.Properties[key] != int64(w) || n.Properties["i"] != int64(i) {
				return fmt.Errorf("created node %+v", res.Rows[0][0])
			}
		case 1:
			res, err := c.ROQuery(ctx, g, "MATCH (n:"+label+" {i: $i}) RETURN n", map[string]any{"i": float64(i - 1)})
			if err != nil {
				return err
			}
			if len(res.Rows) != 1 {
				return fmt.Errorf("found %d nodes", len(res.Rows))
			}
			if n := res.Rows[0][0].(falkor.Node); n.Properties[key] != int64(w) {
				return fmt.Errorf("read node %+v", n)
			}
		case 2:
			res, err := c.ROQuery(ctx, g, "MATCH (n) RETURN n, labels(n) ORDER BY id(n) DESC LIMIT 20", nil)
			if err != nil {
				return err
			}
			for _, row := range res.Rows {
				n := row[0].(falkor.Node)
				var want []string
				for _, l := range row[1].([]any) {
					want = append(want, l.(string))
				}
				if !slices.Equal(n.Labels, want) {
					return fmt.Errorf("node labels %v, server says %v", n.Labels, want)
				}
			}
		case 3:
			res, err := c.Query(ctx, g, "CREATE (a:"+label+")-[r:"+rel+" {"+key+": $i}]->(b:Seed) RETURN r, type(r)", map[string]any{"i": i})
			if err != nil {
				return err
			}
			e := res.Rows[0][0].(falkor.Edge)
			if e.Type != rel || e.Type != res.Rows[0][1] || e.Properties[key] != int64(i) {
				return fmt.Errorf("edge %+v", e)
			}
		}
		return nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if err := check(w, i); err != nil {
					errs <- fmt.Errorf("worker %d query %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := int64(0)
	for _, g := range graphs {
		total += count(t, c, g, "(n)")
	}
	require.Equal(t, int64(2+workers*perWorker/4*3), total)
}
