package api

import (
	"net/http"

	"github.com/formq/formq"
	"github.com/formq/formq/actions/admin"
	"github.com/formq/formq/internal/wire"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// queueDashboard is asynqmon, the asynq web UI, mounted at
// /admin/queues/ behind the admin token; nil when admin is off.
func queueDashboard(cfg formq.Config) http.Handler {
	if cfg.AdminToken == "" {
		return nil
	}
	var opt asynq.RedisConnOpt
	if fo, _ := wire.SentinelOptions(cfg.RedisURL); fo != nil {
		opt = asynq.RedisFailoverClientOpt{MasterName: fo.MasterName, SentinelAddrs: fo.SentinelAddrs, Password: fo.Password, DB: fo.DB}
	} else {
		var err error
		if opt, err = asynq.ParseRedisURI(cfg.RedisURL); err != nil {
			return nil // LoadConfig checked the URL; go-redis parsed it already
		}
	}
	return asynqmon.New(asynqmon.Options{RootPath: admin.QueuesPath, RedisConnOpt: opt})
}
