// Package jobs is what formq's API and workers write to and read from
// Redis, the queue and its data: the asynq task that carries an accepted
// submission and its Enqueuer (group commit, replica waits), the status
// of submissions (StatusStore) and its streams (Hub), the inbox index,
// the revalidation events (RedisPublisher), redeliveries, and the one
// file that knows asynq's key layout (the recoverer, task withdrawal).
//
// Both binaries link it, so it holds no step code and no worker loop: the
// worker runtime that processes tasks is worker/engine, the step and sink
// API is jobs/step and the built-in steps and sinks live under jobs/step
// and jobs/sink. It keeps the name jobs because every Redis key and task
// type it owns (submission:process, formq:events, ...) is named here and
// the API and tests already know it by that name.
package jobs
