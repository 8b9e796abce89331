package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// BenchmarkInboxList100k measures the inbox's reads over 100,000 indexed
// submissions with cards: a plain page of 50, a search that finds
// nothing (one page stops at the 20,000-entry budget), the same search
// carried through the whole index by its cursors (5 pages), and a search
// whose words are in every tenth submission (one full page of 50).
func BenchmarkInboxList100k(b *testing.B) {
	const n = 100_000
	rdb := testRedis(b)
	ctx := context.Background()
	x := NewIndex(rdb, nil)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 1000 {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j := i; j < i+1000; j++ {
				id := fmt.Sprintf("01BENCH%019d", j)
				entry := submission.IndexEntry(start.Add(time.Duration(j)*time.Second), "contact", id)
				card := map[string]string{"name": fmt.Sprintf("Person %d", j), "email": fmt.Sprintf("p%d@example.com", j),
					"message": "Hello, I would like to know more about your pricing and the plans for teams of my size."}
				if j%10 == 0 {
					card["message"] = "Invoice question: the totals of last month look doubled."
				}
				raw, _ := json.Marshal(card)
				p.ZAdd(ctx, submission.IndexAll, redis.Z{Member: entry})
				p.ZAdd(ctx, submission.IndexActionKey("contact"), redis.Z{Member: entry})
				p.HSet(ctx, submission.IndexIDs, id, entry)
				p.HSet(ctx, submission.IndexCards, id, raw)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string, q submission.Query, follow bool) {
		b.Run(name, func(b *testing.B) {
			scanned, found := 0, 0
			for b.Loop() {
				scanned, found = 0, 0
				q := q
				for {
					page, err := x.List(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					scanned += page.Scanned
					found += len(page.Items)
					if !follow || page.Next == "" {
						break
					}
					q.Cursor = page.Next
				}
			}
			b.ReportMetric(float64(scanned), "scanned")
			b.ReportMetric(float64(found), "found")
		})
	}
	run("page", submission.Query{}, false)
	run("search-miss-one-page", submission.Query{Search: "no-such-word"}, false)
	run("search-miss-whole-index", submission.Query{Search: "no-such-word"}, true)
	run("search-hit-every-tenth", submission.Query{Search: "invoice doubled"}, false)
	run("flag-starred-none", submission.Query{Flag: "starred"}, false)
}
