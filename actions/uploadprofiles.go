package actions

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/formq/formq/internal/bytesize"
	"github.com/formq/formq/uploads"
	"go.yaml.in/yaml/v3"
)

// Lifetimes of upload references.
const (
	DefaultUploadRefTTL = time.Hour
	// MaxUploadRefTTL bounds a profile's ttl; the janitor keeps staged
	// files at least this long.
	MaxUploadRefTTL = 24 * time.Hour
)

// UploadProfile is a named set of upload limits from the actions file's
// upload_profiles, for clients that upload before they submit: POST
// /uploads and POST /uploads/presign take their limits from it, and the
// references they answer live for TTL.
type UploadProfile struct {
	Upload
	TTL time.Duration
	// Gate holds who may stage files with the profile: its origins,
	// strict_origin, auth and rate_limit, checked as for an action.
	Gate *Action
}

// UploadProfiles are the profiles of an actions file, by name.
type UploadProfiles map[string]*UploadProfile

type rawProfile struct {
	Label     string            `yaml:"label"`
	MaxSize   string            `yaml:"max_size"`
	MaxFiles  int               `yaml:"max_files"`
	Types     []string          `yaml:"types"`
	Messages  map[string]string `yaml:"messages"`
	TTL       string            `yaml:"ttl"`
	Origins   []string          `yaml:"origins"`
	Strict    bool              `yaml:"strict_origin"`
	Auth      string            `yaml:"auth"`
	Rate      string            `yaml:"rate_limit"`
	Resumable bool              `yaml:"resumable"`
}

func parseProfiles(file string, node *yaml.Node) (UploadProfiles, []Problem) {
	profiles := UploadProfiles{}
	if node.Kind == 0 {
		return profiles, nil
	}
	var problems []Problem
	add := func(line int, name, format string, args ...any) {
		problems = append(problems, Problem{File: file, Line: line, Field: name, Msg: "upload profile: " + fmt.Sprintf(format, args...)})
	}
	if node.Kind != yaml.MappingNode {
		add(node.Line, "", "want a mapping of profile names to limits under 'upload_profiles:'")
		return nil, problems
	}
	for name, n := range pairs(node) {
		if !namePattern.MatchString(name) {
			add(n.Line, name, "name must be letters, digits, - or _, starting with a letter")
		}
		var rp rawProfile
		unknown, err := decodeStrict(n, &rp)
		if unknown != nil {
			add(n.Line, name, "%v", unknown)
		}
		if err != nil {
			add(n.Line, name, "%v", err)
			continue
		}
		p := &UploadProfile{
			Upload: Upload{Name: name, Label: rp.Label, MaxFiles: rp.MaxFiles, Types: rp.Types, Messages: rp.Messages, Resumable: rp.Resumable},
			TTL:    DefaultUploadRefTTL,
			Gate:   &Action{Name: "upload-profile:" + name, Protection: Protection{Origins: rp.Origins, StrictOrigin: rp.Strict, Auth: rp.Auth}},
		}
		switch rp.Auth {
		case "", "required", "optional":
		default:
			add(n.Line, name, "auth %q: want required or optional", rp.Auth)
		}
		for _, o := range rp.Origins {
			if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				add(n.Line, name, "origin %q: want scheme://host[:port]", o)
			}
		}
		if rp.Rate != "" {
			rl, err := parseRateLimit(rp.Rate)
			if err != nil {
				add(n.Line, name, "rate_limit %q: %v", rp.Rate, err)
			}
			p.Gate.RateLimit = rl
		}
		if p.Label == "" {
			p.Label = "File"
		}
		if p.MaxFiles == 0 {
			p.MaxFiles = 1
		} else if p.MaxFiles < 0 {
			add(n.Line, name, "max_files must be positive")
		}
		if size, err := bytesize.Parse(rp.MaxSize); rp.MaxSize == "" || err != nil || size <= 0 {
			add(n.Line, name, "max_size %q: want a size like 5MB", rp.MaxSize)
		} else if size > uploads.MaxCopySize {
			add(n.Line, name, "max_size %q: at most 5GB (the largest object S3 copies in one request)", rp.MaxSize)
		} else {
			p.MaxSize = size
		}
		for i, t := range p.Types {
			p.Types[i] = strings.ToLower(strings.TrimSpace(t))
			if !strings.Contains(t, "/") {
				add(n.Line, name, "type %q: want a media type like image/png", t)
			}
		}
		for rule := range p.Messages {
			if !slices.Contains(uploadMessageRules, rule) {
				add(n.Line, name, "messages: unknown rule %q, want one of %s", rule, strings.Join(uploadMessageRules, ", "))
			}
		}
		if rp.TTL != "" {
			d, err := time.ParseDuration(rp.TTL)
			if err != nil || d <= 0 || d > MaxUploadRefTTL {
				add(n.Line, name, "ttl %q: want a duration from 1s to %s", rp.TTL, MaxUploadRefTTL)
			}
			p.TTL = d
		}
		profiles[name] = p
	}
	return profiles, problems
}
