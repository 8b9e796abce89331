package worker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/formq/formq/internal/testenv"
	"github.com/hibiken/asynq"
)

// BenchmarkIdleWorkerPickup measures how long a task waits in Redis before
// an idle worker, polling as RunWorker's does (taskCheckInterval), starts
// it. asynq polls instead of blocking, so this is the floor under every
// submission's time to its first step. Reported, not asserted.
func BenchmarkIdleWorkerPickup(b *testing.B) {
	rdb := testenv.StartRedis(b).Client(b)
	started := make(chan time.Time, 1)
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       2,
		Queues:            map[string]int{"critical": 6, "default": 3, "low": 1},
		TaskCheckInterval: taskCheckInterval,
		LogLevel:          asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("pickup", func(context.Context, *asynq.Task) error { started <- time.Now(); return nil })
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)
	const samples = 25
	for b.Loop() {
		var waits []time.Duration
		for range samples {
			// Let the worker go idle: its queues empty, its poll asleep.
			time.Sleep(150 * time.Millisecond)
			at := time.Now()
			if _, err := client.Enqueue(asynq.NewTask("pickup", nil)); err != nil {
				b.Fatal(err)
			}
			waits = append(waits, (<-started).Sub(at))
		}
		slices.Sort(waits)
		b.ReportMetric(float64(waits[len(waits)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(waits[len(waits)*9/10].Microseconds())/1000, "p90-ms")
		b.ReportMetric(float64(waits[len(waits)-1].Microseconds())/1000, "max-ms")
	}
}
