package builtin

import (
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/formq/formq/jobs/step"
)

// Notify is the name of the notify step type: a message to a team chat.
const Notify = "notify"

// The chat services a notify step posts to.
const (
	ServiceSlack   = "slack"
	ServiceDiscord = "discord"
	ServiceTeams   = "teams"
)

// NotifyServices are the services a notify step names.
var NotifyServices = []string{ServiceSlack, ServiceDiscord, ServiceTeams}

// NotifySettings are the declaration of a notify step: the chat service
// and the environment variable holding its incoming-webhook URL (a
// secret: whoever has it posts to the channel), and optionally the
// fields the message shows, in order (all of them, by name, otherwise).
type NotifySettings struct {
	Service string   `json:"service"`
	URLEnv  string   `json:"url_env"`
	Fields  []string `json:"fields"`
}

// Check reports what is wrong with the settings, the URL aside.
func (c NotifySettings) Check() error {
	if !slices.Contains(NotifyServices, c.Service) {
		return fmt.Errorf("service %q: want slack, discord or teams", c.Service)
	}
	if !envNamePattern.MatchString(c.URLEnv) {
		return errors.New("url_env: want the name of the environment variable holding the incoming-webhook URL")
	}
	for _, f := range c.Fields {
		if f == "" {
			return errors.New("fields: want field names")
		}
	}
	return nil
}

// CheckNotifyURL reports whether the URL a notify step's url_env holds is one
// it can post to.
func CheckNotifyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("want the service's incoming-webhook URL (https://...)")
	}
	return nil
}

// CheckNotify checks a notify step's settings; with getenv, also that its
// url_env holds a URL in this process.
func CheckNotify(getenv func(string) string) step.CheckFunc {
	return func(cfg map[string]any) error {
		var c NotifySettings
		if err := step.Decode(cfg, &c); err != nil {
			return err
		}
		if err := c.Check(); err != nil {
			return err
		}
		if getenv != nil {
			v := getenv(c.URLEnv)
			if v == "" {
				return fmt.Errorf("url_env %s: not set in this environment (want the %s incoming-webhook URL)", c.URLEnv, c.Service)
			}
			if err := CheckNotifyURL(v); err != nil {
				return fmt.Errorf("url_env %s: %v", c.URLEnv, err)
			}
		}
		return nil
	}
}
