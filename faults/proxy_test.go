//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/formq/formq/internal/testenv"
)

// faultProxy is a Shopify toxiproxy proxy run inside the test process
// between formq and one dependency: toxics slow the connections through
// it (latency, bandwidth) or cut them off without refusing them (every
// byte dropped, connections left open), and are removed again to heal.
type faultProxy struct {
	p *toxiproxy.Proxy
}

// newFaultProxy listens on a free loopback port and forwards to upstream
// until the test ends.
func newFaultProxy(t *testing.T, name, upstream string) *faultProxy {
	t.Helper()
	// toxiproxy logs with zerolog, some of it through the global logger.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("fault proxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{p: p}
}

// Addr is where formq connects instead of the dependency.
func (f *faultProxy) Addr() string { return f.p.Listen }

// toxic is one toxiproxy toxic: its type, its stream (upstream is
// formq to the dependency, downstream the way back) and attributes.
type toxic struct {
	typ, stream string
	attrs       map[string]any
}

// slowed adds latency each way and limits the bandwidth each way.
func slowed(latency time.Duration, kbps int) []toxic {
	var ts []toxic
	for _, s := range []string{"upstream", "downstream"} {
		ts = append(ts,
			toxic{"latency", s, map[string]any{"latency": latency.Milliseconds()}},
			toxic{"bandwidth", s, map[string]any{"rate": kbps}})
	}
	return ts
}

// blackholed drops every byte both ways and never closes a connection:
// new connections are accepted and then hang, as across a partition
// whose far side does not answer.
func blackholed() []toxic {
	return []toxic{
		{"timeout", "upstream", map[string]any{"timeout": 0}},
		{"timeout", "downstream", map[string]any{"timeout": 0}},
	}
}

// add puts the toxics on the proxy; the func it returns removes them.
func (f *faultProxy) add(t *testing.T, ts []toxic) (heal func()) {
	t.Helper()
	var names []string
	for _, x := range ts {
		name := x.typ + "_" + x.stream
		b, _ := json.Marshal(map[string]any{"name": name, "type": x.typ, "stream": x.stream, "toxicity": 1.0, "attributes": x.attrs})
		if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
			t.Fatalf("fault proxy: add %s: %v", name, err)
		}
		names = append(names, name)
	}
	return func() {
		for _, name := range names {
			if err := f.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
				t.Errorf("fault proxy: remove %s: %v", name, err)
			}
		}
	}
}

// proxied names a fault of a dependency reached through a faultProxy.
type proxied struct {
	name  string
	toxic func() []toxic
}

var proxiedFaults = []proxied{
	{"slowed (+50ms each way, 256 KB/s each way)", func() []toxic { return slowed(50*time.Millisecond, 256) }},
	{"partitioned (blackholed: connections hang)", blackholed},
}

// The fault's timeline under 50 posts/s for 22 s: normal for 5 s, the
// fault for 10 s, healed for the last 7 s.
const (
	proxyFaultAt  = 5 * time.Second
	proxyFaultFor = 10 * time.Second
	proxyLoad     = 22 * time.Second
)

// TestRedisThroughFaultProxy puts the queue's Redis behind a fault proxy
// (API and worker connect through it; the suite reads the events stream
// directly) and slows it, then partitions it, under load. Expected:
// nothing acknowledged lost or doubled, refusals are 503 with
// Retry-After, no request hangs past the client's 10 s, and posts are
// acknowledged again once the proxy heals.
func TestRedisThroughFaultProxy(t *testing.T) {
	for _, f := range proxiedFaults {
		name := "redis " + f.name + " for 10s, 50 posts/s"
		t.Run(strings.Fields(f.name)[0], func(t *testing.T) {
			started := time.Now()
			r := testenv.StartRedis(t)
			px := newFaultProxy(t, "redis", r.Addr)
			st := newStack(t, fmt.Sprintf("redis://%s/%d", px.Addr(), r.DB), testenv.StartS3(t), nil)
			runProxied(t, name, started, st, r.Client(t), px, f.toxic())
		})
	}
}

// TestS3ThroughFaultProxy is TestRedisThroughFaultProxy with versitygw
// behind the proxy.
func TestS3ThroughFaultProxy(t *testing.T) {
	r := testenv.StartRedis(t)
	for _, f := range proxiedFaults {
		name := "S3 " + f.name + " for 10s, 50 posts/s"
		t.Run(strings.Fields(f.name)[0], func(t *testing.T) {
			started := time.Now()
			s3 := testenv.StartS3(t)
			px := newFaultProxy(t, "s3", strings.TrimPrefix(s3.Endpoint, "http://"))
			s3.Endpoint = "http://" + px.Addr()
			st := newStack(t, r.URL(), s3, nil)
			runProxied(t, name, started, st, r.Client(t), px, f.toxic())
		})
	}
}

// runProxied starts an API and a worker, loads them, puts the toxics on
// the proxy for proxyFaultFor and heals it, and settles the row.
func runProxied(t *testing.T, name string, started time.Time, st *stack, rdb redis.UniversalClient, px *faultProxy, ts []toxic) {
	t.Helper()
	api := start(t, st.apiBin, "api", st.env)
	_ = start(t, st.workerBin, "worker", st.env)
	healed := make(chan time.Time, 1)
	go func() {
		time.Sleep(proxyFaultAt)
		heal := px.add(t, ts)
		time.Sleep(proxyFaultFor)
		heal()
		healed <- time.Now()
	}()
	l := runLoad(api.URL, 50, proxyLoad)
	at := <-healed
	r := measure(t, name, started, rdb, l, 60*time.Second, at)
	expect(t, &r.failed, r.otherFailure == 0, "%d answers neither 202 nor 503: %v", r.otherFailure, r.otherKinds)
	expect(t, &r.failed, r.backAfter >= 0, "no post was acknowledged after the proxy healed")
	record(t, r)
}
