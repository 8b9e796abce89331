// Package formq is the configuration of formq, a form backend: an HTTP API
// that accepts form submissions and file uploads (package api) and a
// worker fleet that runs their follow-up steps (package worker), on Redis
// and S3.
//
// Config holds every setting, grouped by concern (RedisConfig, S3Config,
// UploadConfig, SinksConfig, ...) in embedded structs, so a setting reads
// as cfg.RedisURL. LoadConfig fills it from FORMQ_* variables over
// DefaultConfig and refuses a bad value in one line naming the variable;
// PrintSettings prints the reference the commands' --help shows. The API
// and the worker are built from the same Config:
//
//	cfg, err := formq.LoadConfig(os.Getenv) // or start from formq.DefaultConfig()
//	if err != nil { ... }                    // "invalid configuration: FORMQ_S3_BUCKET: is required"
//	forms, err := api.New(ctx, cfg, api.Options{})
//	work, err := worker.New(ctx, cfg, worker.Options{})
//
// The stable packages for embedding formq are this one, api, worker,
// jobs/step (step types and sinks of your own) and submission; the
// README's "Which packages are stable" says what else.
package formq
