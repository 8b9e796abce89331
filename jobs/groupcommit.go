package jobs

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"
)

// groupCommit sends the commands that concurrent callers mark with its
// context together, as one pipeline: while one batch is on the wire, the
// commands that arrive wait and then go as the next batch. A caller alone
// sends its command at once, so an idle API waits for nothing; a busy one
// makes one write and one read for many submissions instead of one each
// (the syscalls, the pool's connection check and the wake-ups were most of
// what an accepted form cost beyond net/http). Replies, and errors, stay
// per command, so callers see what they would have seen alone. It is a
// go-redis hook, because asynq runs its enqueue script on the client it is
// given: the hook is where that script's command can be caught.
type groupCommit struct {
	rdb *redis.Client

	mu    sync.Mutex
	queue []*groupCall
	busy  bool // a batch is being sent; its sender hands on to the next
}

type groupCall struct {
	cmd redis.Cmder
	// lead is sent true when this call is to send the next batch, false
	// when its command has been sent as part of another's batch.
	lead chan bool
}

type groupCommitKey struct{}

// newGroupCommit installs the hook on rdb.
func newGroupCommit(rdb *redis.Client) *groupCommit {
	g := &groupCommit{rdb: rdb}
	rdb.AddHook(g)
	return g
}

// withGroupCommit marks ctx: commands sent with it are grouped.
func withGroupCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, groupCommitKey{}, true)
}

func (g *groupCommit) DialHook(next redis.DialHook) redis.DialHook { return next }

func (g *groupCommit) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (g *groupCommit) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(groupCommitKey{}) == nil {
			return next(ctx, cmd)
		}
		return g.do(ctx, cmd, next)
	}
}

func (g *groupCommit) do(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
	call := &groupCall{cmd: cmd, lead: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, call)
	if g.busy {
		g.mu.Unlock()
		if !<-call.lead {
			return cmd.Err()
		}
	} else {
		g.busy = true
		g.mu.Unlock()
	}
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	if len(batch) == 1 {
		// Alone (the batch always holds the sender's own command): sent
		// as it would have gone without the hook.
		// The hook's answer is the command's error: go-redis sets it on
		// the command only after the hooks return.
		if err := next(detached(ctx), cmd); err != nil {
			cmd.SetErr(err)
		}
	} else {
		g.send(ctx, batch)
	}
	for _, c := range batch {
		if c != call {
			c.lead <- false
		}
	}
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.busy = false
	} else {
		g.queue[0].lead <- true
	}
	g.mu.Unlock()
	return cmd.Err()
}

// send runs the batch as one pipeline.
func (g *groupCommit) send(ctx context.Context, batch []*groupCall) {
	ctx = detached(ctx)
	pipe := g.rdb.Pipeline()
	for _, c := range batch {
		_ = pipe.Process(ctx, c.cmd)
	}
	_, err := pipe.Exec(ctx)
	var reply redis.Error
	if err == nil || errors.As(err, &reply) {
		return // each command carries its own reply or Redis's error
	}
	// The round trip failed (go-redis leaves a failed dial's error off the
	// commands). A command whose reply was read before the failure is
	// marked failed too: a submission refused that was queued can be sent
	// again, one acknowledged that was not would be lost.
	for _, c := range batch {
		if c.cmd.Err() == nil {
			c.cmd.SetErr(err)
		}
	}
}

// detached is ctx for a batch on the wire: without the sender's
// cancellation, since the sender's client leaving must not fail the
// others' commands (the client's read and write timeouts still bound the
// round trip), and without the mark, since go-redis sends a new
// connection's HELLO and SELECT through the hooks with the command's
// context, and those must not wait behind the batch they are part of.
func detached(ctx context.Context) context.Context {
	return context.WithValue(context.WithoutCancel(ctx), groupCommitKey{}, nil)
}
