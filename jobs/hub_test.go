package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

func startHub(t testing.TB, rdb *redis.Client) *Hub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hub := NewHub(rdb, quietLog())
	done := make(chan struct{})
	go func() { hub.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return hub
}

func publish(t testing.TB, p *RedisPublisher, sub string, tags ...string) string {
	t.Helper()
	id, err := p.Publish(context.Background(), submission.Event{Type: "revalidate", Action: "a", Submission: sub, Paths: []string{"/p"}, Tags: tags, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func next(t testing.TB, s submission.Subscription) *submission.Published {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	return ev
}

func TestHubDeliversLiveAndReplaysAfterLastID(t *testing.T) {
	rdb := testRedis(t)
	pub := NewRedisPublisher(rdb, 1000)
	old := publish(t, pub, "01OLD", "users") // before the hub: not live, replayable
	hub := startHub(t, rdb)
	ctx := context.Background()

	live, err := hub.Subscribe(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	id1 := publish(t, pub, "01A", "users")
	ev := next(t, live)
	var body map[string]any
	if err := json.Unmarshal(ev.JSON, &body); err != nil {
		t.Fatal(err)
	}
	if ev.ID != id1 || body["id"] != id1 || body["submission"] != "01A" || body["type"] != "revalidate" {
		t.Fatalf("event %s %s; want id %s in the data", ev.ID, ev.JSON, id1)
	}

	// A subscriber that last saw id1 reconnects after three more events:
	// it gets exactly those, then live ones, without repeats.
	id2 := publish(t, pub, "01B", "users")
	id3 := publish(t, pub, "01C", "users")
	id4 := publish(t, pub, "01D", "users")
	resumed, err := hub.Subscribe(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	id5 := publish(t, pub, "01E", "users")
	var got []string
	for range 4 {
		got = append(got, next(t, resumed).ID)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{id2, id3, id4, id5}) {
		t.Errorf("resumed got %v, want %v", got, []string{id2, id3, id4, id5})
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if ev, err := resumed.Next(wctx); err == nil {
		t.Errorf("unexpected extra event %s", ev.ID)
	}

	// Resuming from before the hub started replays that too.
	all, err := hub.Subscribe(ctx, "0-0")
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if first := next(t, all); first.ID != old {
		t.Errorf("full replay starts at %s, want %s", first.ID, old)
	}
}

func TestHubDropsSlowSubscriber(t *testing.T) {
	rdb := testRedis(t)
	pub := NewRedisPublisher(rdb, 1000)
	hub := startHub(t, rdb)
	slow, err := hub.Subscribe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for i := range hubBuffer + 1 {
		last = publish(t, pub, fmt.Sprintf("01S%03d", i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		hub.mu.Lock()
		n := len(hub.subs)
		hub.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slow subscriber never dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var err2 error
	for range hubBuffer + 1 {
		if _, err2 = slow.Next(context.Background()); err2 != nil {
			break
		}
	}
	if !errors.Is(err2, submission.ErrSubscriptionEnded) {
		t.Errorf("slow subscriber: %v; want it ended", err2)
	}
	_ = last
}

func TestHubThousandSubscribers(t *testing.T) {
	rdb := testRedis(t)
	pub := NewRedisPublisher(rdb, 1000)
	hub := startHub(t, rdb)
	subs := make([]submission.Subscription, 1000)
	for i := range subs {
		s, err := hub.Subscribe(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs[i] = s
	}
	id := publish(t, pub, "01K", "users")
	for i, s := range subs {
		if ev := next(t, s); ev.ID != id {
			t.Fatalf("subscriber %d got %s, want %s", i, ev.ID, id)
		}
	}
	// One reader for all: the hub holds one blocking connection, not one
	// per subscriber.
	if n := rdb.PoolStats().TotalConns; n > 5 {
		t.Errorf("%d Redis connections for 1000 subscribers", n)
	}
}

// BenchmarkIdleSubscribers measures what an idle /events subscriber costs
// in the hub: a goroutine waiting in Next plus its subscription.
func BenchmarkIdleSubscribers(b *testing.B) {
	rdb := testRedis(b)
	hub := startHub(b, rdb)
	const n = 1000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, n)
		for range n {
			s, err := hub.Subscribe(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _, _ = s.Next(ctx); s.Close(); done <- struct{}{} }()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "bytes/subscriber")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/subscriber")
		cancel()
		for range n {
			<-done
		}
	}
}
