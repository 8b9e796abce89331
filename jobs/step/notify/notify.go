// Package notify is the built-in notify step: it posts a short summary of
// each submission, with a link to its inbox page, to a team chat's
// incoming webhook, in the message shape each service documents (Slack,
// Discord, Microsoft Teams). Only the worker links it; the API checks
// notify steps with jobs/step/builtin.
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/jobs/step"
	"github.com/formq/formq/jobs/step/builtin"
	"github.com/formq/formq/jobs/step/webhook"
	"github.com/formq/formq/submission"
)

// Poster posts a JSON body to a URL and answers the HTTP status;
// *webhook.Client is the implementation, with its address guard.
type Poster interface {
	PostJSON(ctx context.Context, url string, body []byte, log func(submission.DeliveryAttempt)) (int, error)
}

var _ Poster = (*webhook.Client)(nil)

// Config is what the notify step takes from the deployment.
type Config struct {
	// InboxURL is the inbox pages' address (FORMQ_PUBLIC_URL +
	// /admin/inbox); empty, messages carry no link.
	InboxURL string
	// Getenv reads url_env; os.Getenv when nil.
	Getenv func(string) string
}

// Limits of a message: at most MaxFields values, each cut to MaxValue
// characters (below every service's own limits: Discord's 1,024 per
// embed field and 25 fields, Slack's 3,000 per text block).
const (
	MaxFields = 10
	MaxValue  = 300
)

// Step is the notify step type.
func Step(client Poster, cfg Config) step.Type {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return step.Type{
		Timeout: 15 * time.Second,
		Check:   builtin.CheckNotify(getenv),
		Run: func(ctx context.Context, r step.Run) error {
			var c builtin.NotifySettings
			if err := step.Decode(r.Config, &c); err != nil {
				return step.Permanent("bad configuration: %v", err)
			}
			url := getenv(c.URLEnv)
			if err := builtin.CheckNotifyURL(url); err != nil {
				return step.Permanent("url_env %s: %v", c.URLEnv, err)
			}
			body, err := Message(c.Service, Summarize(r.Submission, c.Fields, cfg.InboxURL))
			if err != nil {
				return step.Permanent("%v", err)
			}
			status, err := client.PostJSON(ctx, url, body, hidePath(r.LogDelivery))
			if err != nil {
				return err
			}
			return judge(c.Service, status)
		},
	}
}

// hidePath keeps the secret of a chat webhook URL (its path: Slack's
// /services/T/B/token, Discord's /api/webhooks/id/token) out of the
// delivery log: only the scheme and host are shown.
func hidePath(log func(submission.DeliveryAttempt)) func(submission.DeliveryAttempt) {
	if log == nil {
		return nil
	}
	return func(a submission.DeliveryAttempt) {
		if u, err := neturl.Parse(a.URL); err == nil {
			a.URL = u.Scheme + "://" + u.Host + "/…"
		}
		log(a)
	}
}

// judge turns the service's answer into the step's outcome: 2xx is done;
// 408, 429 and 5xx are retried; any other answer (a wrong or revoked URL,
// a refused payload, a redirect) will not change by trying again.
func judge(service string, status int) error {
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("%s answered %d", service, status)
	default:
		return step.Permanent("%s answered %d: check the incoming-webhook URL", service, status)
	}
}

// Summary is what a message says: the action, when, the values shown and
// the link to the submission's inbox page.
type Summary struct {
	Action, ID string
	ReceivedAt time.Time
	Values     [][2]string // field name, value
	// More is how many values were left out.
	More int
	Link string
}

// Title is the message's first line.
func (s Summary) Title() string { return "New submission to " + s.Action }

// Summarize picks the values a message shows: the named fields in their
// order, or every value by field name; the link is the inbox page of the
// submission.
func Summarize(sub *submission.Submission, fields []string, inboxURL string) Summary {
	s := Summary{Action: sub.Action, ID: sub.ID, ReceivedAt: sub.ReceivedAt.UTC()}
	if inboxURL != "" {
		s.Link = strings.TrimRight(inboxURL, "/") + "/" + sub.ID
	}
	names := fields
	if len(names) == 0 {
		for k := range sub.Values {
			names = append(names, k)
		}
		slices.Sort(names)
	}
	for _, name := range names {
		v := strings.TrimSpace(submission.CardText(sub.Values[name]))
		if v == "" {
			continue
		}
		if len(s.Values) == MaxFields {
			s.More++
			continue
		}
		if r := []rune(v); len(r) > MaxValue {
			v = string(r[:MaxValue-1]) + "…"
		}
		s.Values = append(s.Values, [2]string{name, v})
	}
	if n := len(sub.Files); n > 0 {
		s.Values = append(s.Values, [2]string{"files", fmt.Sprintf("%d attached", n)})
	}
	return s
}

// Message is the JSON body a service's incoming webhook takes.
func Message(service string, s Summary) ([]byte, error) {
	switch service {
	case builtin.ServiceSlack:
		return json.Marshal(slackMessage(s))
	case builtin.ServiceDiscord:
		return json.Marshal(discordMessage(s))
	case builtin.ServiceTeams:
		return json.Marshal(teamsMessage(s))
	}
	return nil, fmt.Errorf("service %q: want slack, discord or teams", service)
}
