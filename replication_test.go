package formq_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/formq/formq/api"
	"github.com/formq/formq/internal/testenv"
	"github.com/formq/formq/internal/teststack"
	"github.com/formq/formq/submission"
	"github.com/redis/go-redis/v9"
)

// TestMinReplicasMakes202MeanReplicated runs the API with
// FORMQ_REDIS_MIN_REPLICAS=1 on a real primary and replica (no worker, so
// queued tasks stay where they are): while the replica follows, a
// submission is 202 and its task is on the replica; with the replica
// hung (SIGSTOP), a submission is 503 unavailable with Retry-After within
// the replica timeout (plus a margin for a loaded machine), and its task
// is not left behind on the primary.
func TestMinReplicasMakes202MeanReplicated(t *testing.T) {
	r, primary, replica := testenv.StartReplicated(t)
	s := testenv.StartS3(t)
	env := map[string]string{
		"FORMQ_ENV": "development", "FORMQ_ADDR": "127.0.0.1:0", "FORMQ_REDIS_URL": r.URL(),
		"FORMQ_S3_CREATE_BUCKET": "true", "FORMQ_ACTIONS": teststack.ActionsFile(t),
		"FORMQ_REDIS_MIN_REPLICAS": "1", "FORMQ_REDIS_REPLICA_TIMEOUT": "1s",
	}
	for k, v := range s.Env() {
		env[k] = v
	}
	apiURL := teststack.StartRun(t, "api", api.Main, env)
	onPrimary := redis.NewClient(&redis.Options{Addr: primary.Addr})
	onReplica := redis.NewClient(&redis.Options{Addr: replica.Addr})
	t.Cleanup(func() { onPrimary.Close(); onReplica.Close() })
	ctx := context.Background()
	taskKey := func(id string) string { return "asynq:{" + submission.DefaultQueue + "}:t:" + id }

	post := func() (*http.Response, string, time.Duration) {
		body, ctype := teststack.MultipartBody(t, map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"}, nil)
		start := time.Now()
		resp, b := teststack.Post(t, apiURL+"/actions/create-user", body, ctype, map[string]string{"Accept": "application/json"})
		var out struct {
			Submission struct{ ID string } `json:"submission"`
		}
		_ = json.Unmarshal(b, &out)
		return resp, out.Submission.ID, time.Since(start)
	}

	resp, id, took := post()
	t.Logf("replica following: %d in %s", resp.StatusCode, took)
	if resp.StatusCode != http.StatusAccepted || id == "" {
		t.Fatalf("submission with the replica following: %d, want 202", resp.StatusCode)
	}
	// 202 means the replica has the task already: read it there at once.
	if state, err := onReplica.HGet(ctx, taskKey(id), "state").Result(); err != nil || state != "pending" {
		t.Fatalf("the acknowledged task on the replica: %q, %v; want it pending there", state, err)
	}

	replica.Pause(t)
	pending := onPrimary.LLen(ctx, "asynq:{"+submission.DefaultQueue+"}:pending").Val()
	resp, _, took = post()
	t.Logf("replica hung: %d in %s", resp.StatusCode, took)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("submission with the replica hung: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The answer is due at the replica timeout (1s); 5s leaves room for a
	// loaded machine while still telling a bounded wait from a hang.
	if took > 5*time.Second {
		t.Errorf("the 503 took %s, want about FORMQ_REDIS_REPLICA_TIMEOUT (1s)", took)
	}
	if n := onPrimary.LLen(ctx, "asynq:{"+submission.DefaultQueue+"}:pending").Val(); n != pending {
		t.Errorf("pending tasks on the primary: %d before, %d after the refused submission; want it withdrawn", pending, n)
	}
	keys, err := onPrimary.Keys(ctx, "asynq:{"+submission.DefaultQueue+"}:t:*").Result()
	if err != nil || len(keys) != 1 || keys[0] != taskKey(id) {
		t.Errorf("tasks on the primary: %v, %v; want only the acknowledged one", keys, err)
	}

	replica.Resume(t)
	teststack.WaitFor(t, 20*time.Second, "a submission acknowledged once the replica follows again", func() bool {
		resp, _, _ := post()
		return resp.StatusCode == http.StatusAccepted
	})
}
