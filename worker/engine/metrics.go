package engine

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/formq/formq/internal/telemetry"
	"github.com/formq/formq/jobs/step"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Outcomes of a task or a step: the values of the outcome label.
const (
	OutcomeOK    = "ok"    // done
	OutcomeRetry = "retry" // failed; asynq tries again later
	OutcomeFail  = "fail"  // failed for good (SkipRetry)
	OutcomeSkip  = "skip"  // a step that chose not to act (an autoresponder over its limit)
	// OutcomeRejected is a step whose app refused the submission.
	OutcomeRejected = "rejected"
)

// Metrics are the worker's Prometheus series. Labels are bounded: task
// and step types come from code and the actions file, queues from the
// configuration; never ids. A nil *Metrics records nothing.
type Metrics struct {
	tasks    *prometheus.CounterVec
	taskDur  *prometheus.HistogramVec
	retries  *prometheus.CounterVec
	steps    *prometheus.CounterVec
	stepDur  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// NewMetrics registers the worker's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 600}
	m := &Metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_tasks_total",
			Help: "Tasks run, by type, queue and outcome (ok, retry, fail).",
		}, []string{"type", "queue", "outcome"}),
		taskDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "formq_task_duration_seconds", Help: "Time to run one task, by type.", Buckets: buckets,
		}, []string{"type"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_task_retries_total",
			Help: "Tasks started again after a failure, by type and queue.",
		}, []string{"type", "queue"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formq_steps_total",
			Help: "Follow-up steps run, by step type and outcome (ok, retry, fail, skip, rejected).",
		}, []string{"step", "outcome"}),
		stepDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "formq_step_duration_seconds", Help: "Time to run one step, by step type.", Buckets: buckets,
		}, []string{"step"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "formq_tasks_in_flight", Help: "Tasks this worker is running now.",
		}),
	}
	reg.MustRegister(m.tasks, m.taskDur, m.retries, m.steps, m.stepDur, m.inFlight)
	return m
}

// outcome names how err ends a task or step.
func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case isSkip(err):
		return OutcomeSkip
	case isRejection(err):
		return OutcomeRejected
	case errors.Is(err, asynq.SkipRetry):
		return OutcomeFail
	default:
		return OutcomeRetry
	}
}

func isRejection(err error) bool {
	_, ok := step.Rejected(err)
	return ok
}

// ObserveStep records one run of a step.
func (m *Metrics) ObserveStep(step string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.steps.WithLabelValues(step, outcome(err)).Inc()
	m.stepDur.WithLabelValues(step).Observe(d.Seconds())
}

// ObserveTask records one run of a task; retry is asynq's retry count.
func (m *Metrics) ObserveTask(typ, queue string, retry int, d time.Duration, err error) {
	if m == nil {
		return
	}
	if retry > 0 {
		m.retries.WithLabelValues(typ, queue).Inc()
	}
	m.tasks.WithLabelValues(typ, queue, outcome(err)).Inc()
	m.taskDur.WithLabelValues(typ).Observe(d.Seconds())
}

// Middleware instruments every task: it continues the trace the API
// started (from the task headers), opens a log scope with the submission
// id (the task id), the action and the request id, and records the
// task's metrics. Install it with mux.Use.
func Middleware(m *Metrics, tracer trace.Tracer) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			id, _ := asynq.GetTaskID(ctx)
			queue, _ := asynq.GetQueueName(ctx)
			retry, _ := asynq.GetRetryCount(ctx)
			ctx = telemetry.FromTaskHeaders(ctx, t.Headers())
			attrs := []slog.Attr{slog.String(telemetry.KeySubmission, id)}
			if rid := t.Headers()[telemetry.HeaderRequestID]; rid != "" {
				attrs = append(attrs, slog.String(telemetry.KeyRequestID, rid))
			}
			ctx = telemetry.WithLogAttrs(ctx, attrs...)
			ctx, span := tracer.Start(ctx, "task "+t.Type(),
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(
					attribute.String("messaging.system", "asynq"),
					attribute.String("messaging.destination.name", queue),
					attribute.String("formq.submission", id),
					attribute.Int("formq.retry", retry),
				))
			defer span.End()
			if m != nil {
				m.inFlight.Inc()
				defer m.inFlight.Dec()
			}
			err := next.ProcessTask(ctx, t)
			endSpan(span, err)
			m.ObserveTask(t.Type(), queue, retry, time.Since(start), err)
			return err
		})
	}
}

// Traced returns steps with every attempt of every step wrapped in a
// span, a child of the task's span (their metrics are recorded by the
// task handler, Deps.Metrics). Steps registered on the result later are
// not wrapped.
func Traced(s step.Steps, tracer trace.Tracer) step.Steps {
	out := make(step.Steps, len(s))
	for name, t := range s {
		run := t.Run
		t.Run = func(ctx context.Context, r step.Run) error {
			ctx, span := tracer.Start(ctx, "step "+name, trace.WithAttributes(
				attribute.String("formq.step", name),
				attribute.Int("formq.step.index", r.Index),
				attribute.Int("formq.step.attempt", r.Attempt),
			))
			defer span.End()
			err := run(ctx, r)
			endSpan(span, err)
			return err
		}
		out[name] = t
	}
	return out
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, outcome(err))
	}
}

// Queue states reported by QueueCollector: the state label's values.
var queueStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// QueueCollector reports the depth and latency of asynq's queues, read
// from Redis when Prometheus scrapes. A slow Redis costs at most timeout
// per scrape: queues not read in time are left out of that scrape, and a
// scrape started while the last one is still reading reports nothing.
type QueueCollector struct {
	inspector *asynq.Inspector
	queues    []string
	timeout   time.Duration
	busy      sync.Mutex

	depth   *prometheus.Desc
	latency *prometheus.Desc
	paused  *prometheus.Desc
	errors  prometheus.Counter
}

var _ prometheus.Collector = (*QueueCollector)(nil)

// NewQueueCollector reports the queues in queues and any other queue
// asynq knows of.
func NewQueueCollector(inspector *asynq.Inspector, queues []string, timeout time.Duration) *QueueCollector {
	return &QueueCollector{
		inspector: inspector, queues: queues, timeout: timeout,
		depth: prometheus.NewDesc("formq_queue_depth",
			"Tasks in an asynq queue, by queue and state (pending, active, scheduled, retry, archived, completed).",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("formq_queue_latency_seconds",
			"Age of the oldest pending task of a queue: how far behind the workers are.",
			[]string{"queue"}, nil),
		paused: prometheus.NewDesc("formq_queue_paused", "1 when a queue is paused.", []string{"queue"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "formq_queue_inspect_errors_total",
			Help: "Scrapes that could not read a queue's state from Redis in time.",
		}),
	}
}

// Describe sends the descriptions of the series.
func (q *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- q.depth
	ch <- q.latency
	ch <- q.paused
	q.errors.Describe(ch)
}

// Collect reads every queue's state within the timeout.
func (q *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	defer q.errors.Collect(ch)
	if !q.busy.TryLock() {
		q.errors.Inc()
		return
	}
	infos := make(chan []*asynq.QueueInfo, 1)
	go func() {
		defer q.busy.Unlock()
		infos <- q.read()
	}()
	select {
	case list := <-infos:
		for _, info := range list {
			counts := []int{info.Pending, info.Active, info.Scheduled, info.Retry, info.Archived, info.Completed}
			for i, state := range queueStates {
				ch <- prometheus.MustNewConstMetric(q.depth, prometheus.GaugeValue, float64(counts[i]), info.Queue, state)
			}
			ch <- prometheus.MustNewConstMetric(q.latency, prometheus.GaugeValue, info.Latency.Seconds(), info.Queue)
			paused := 0.0
			if info.Paused {
				paused = 1
			}
			ch <- prometheus.MustNewConstMetric(q.paused, prometheus.GaugeValue, paused, info.Queue)
		}
	case <-time.After(q.timeout):
		q.errors.Inc()
	}
}

// read asks Redis for each queue's state. A configured queue that has
// never held a task (asynq does not know it yet) reads as empty.
func (q *QueueCollector) read() []*asynq.QueueInfo {
	known, err := q.inspector.Queues()
	if err != nil {
		q.errors.Inc()
		return nil
	}
	names := slices.Concat(q.queues, known)
	slices.Sort(names)
	names = slices.Compact(names)
	var out []*asynq.QueueInfo
	for _, name := range names {
		if !slices.Contains(known, name) {
			out = append(out, &asynq.QueueInfo{Queue: name})
			continue
		}
		info, err := q.inspector.GetQueueInfo(name)
		if err != nil {
			q.errors.Inc()
			continue
		}
		out = append(out, info)
	}
	return out
}

func isSkip(err error) bool { _, ok := step.Skipped(err); return ok }
