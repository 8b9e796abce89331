package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCloseStopsRunAndWaits(t *testing.T) {
	var l Loop
	started, finished := make(chan struct{}), make(chan struct{})
	go func() {
		_ = l.Run(context.Background(), func(ctx context.Context) {
			close(started)
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // cleanup Close must wait for
			close(finished)
		})
	}()
	<-started
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("Close returned before the work finished")
	}
	if err := l.Run(context.Background(), func(context.Context) { t.Error("work ran after Close") }); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

func TestRunEndsWithItsContext(t *testing.T) {
	var l Loop
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, func(ctx context.Context) { <-ctx.Done() }) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end with its context")
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after Run ended: %v", err)
	}
}
