package actions

import (
	"fmt"
	"strconv"
	"strings"
)

// Public is the part of an action a browser may know: its fields, their
// rules and messages, and the upload limits. It is what
// GET /actions/{name}/schema answers, for client.js's checks before a
// form is sent and for developers writing their own front end. It never
// holds origins, auth, rate limits, bound arguments, steps or redirects.
type Public struct {
	Name     string         `json:"name"`
	Title    string         `json:"title"`
	URL      string         `json:"url"` // where the form posts
	MaxBody  int64          `json:"maxBody"`
	Honeypot string         `json:"honeypot,omitempty"`
	Fields   []PublicField  `json:"fields"`
	Uploads  []PublicUpload `json:"uploads"`
	Theme    *Theme         `json:"theme,omitempty"`
	// MinFillTime is the action's min_fill_time in milliseconds: its
	// posts need a _rendered stamp (GET /actions/{name}/stamp) that old.
	MinFillTime int64 `json:"minFillTime,omitempty"`
	// Wait is the action's wait in milliseconds: its answers wait for the
	// steps, so client.js follows a 202 to the outcome (a refusal of the
	// app's shows beside the fields) before it follows the redirect.
	Wait int64 `json:"wait,omitempty"`
}

// PublicField is one field of Public: its rules, its hosted-form hints
// (embedded groups, whose keys JSON writes inline) and its messages.
type PublicField struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Label string `json:"label"`
	PublicRules
	Multiple  bool `json:"multiple,omitempty"`
	Sensitive bool `json:"sensitive,omitempty"`
	InputHints
	Messages map[string]string `json:"messages"` // by rule, filled in as the server would say them
	// Checks are the rules without a key of their own, each with the
	// hint a browser checks it by.
	Checks []PublicCheck `json:"checks,omitempty"`
}

// PublicRules are a field's rules as the public declaration states them.
// Pattern is the full, anchored expression the server matches (RE2
// syntax; the common subset reads the same as a JavaScript RegExp with
// the u flag).
type PublicRules struct {
	Required  bool     `json:"required"`
	MinLength *int     `json:"minLength,omitempty"`
	MaxLength *int     `json:"maxLength,omitempty"`
	Pattern   string   `json:"pattern,omitempty"`
	Min       *float64 `json:"min,omitempty"`
	Max       *float64 `json:"max,omitempty"`
	Options   []Option `json:"options,omitempty"`
}

// PublicUpload is one upload field of Public.
type PublicUpload struct {
	Name     string            `json:"name"`
	Label    string            `json:"label"`
	Required bool              `json:"required"`
	MaxSize  int64             `json:"maxSize"`
	MaxFiles int               `json:"maxFiles"`
	Types    []string          `json:"types,omitempty"`
	Accept   string            `json:"accept,omitempty"` // for <input type=file accept>
	Limits   string            `json:"limits"`           // "PNG, JPEG or WebP, up to 5 MB"
	Messages map[string]string `json:"messages"`         // required, max_size, max_files, types ({type} left for the client)
	// Resumable says the field's files may go over tus at /uploads/tus/
	// (client.js sends them so and submits the reference).
	Resumable bool `json:"resumable,omitempty"`
}

// Public returns the action's public declaration; url is where its form
// posts.
func (a *Action) Public(url string, theme *Theme) Public {
	p := Public{Name: a.Name, Title: a.Title, URL: url, MaxBody: a.MaxBody, Honeypot: a.Honeypot,
		Fields: []PublicField{}, Uploads: []PublicUpload{}, Theme: theme, MinFillTime: a.MinFillTime.Milliseconds(),
		Wait: a.Wait.Milliseconds()}
	for _, f := range a.Fields {
		pf := PublicField{
			Name: f.Name, Type: f.Type, Label: f.Label,
			Multiple: f.Multiple, Sensitive: f.Sensitive(), InputHints: f.InputHints,
			Messages: f.publicMessages(),
		}
		for _, r := range fieldRules {
			if r.public != nil && r.declared(f) {
				r.public(f, &pf)
			}
		}
		p.Fields = append(p.Fields, pf)
	}
	for _, u := range a.Uploads {
		p.Uploads = append(p.Uploads, PublicUpload{
			Name: u.Name, Label: u.Label, Required: u.Required, MaxSize: u.MaxSize, MaxFiles: u.MaxFiles,
			Types: u.Types, Accept: strings.Join(u.Types, ","), Limits: u.Limits(), Resumable: u.Resumable,
			Messages: map[string]string{
				"required": u.RequiredMessage(), "max_size": u.TooLargeMessage(), "max_files": u.TooManyMessage(),
				"types": u.msg("types", "File type {type} not allowed (allowed: {types})", map[string]string{"types": HumanTypes(u.Types)}),
			},
		})
	}
	return p
}

// publicMessages are the field's messages by rule, as Validate says them.
func (f *Field) publicMessages() map[string]string {
	m := map[string]string{}
	for i := range fieldRules {
		if fieldRules[i].declared(f) {
			m[fieldRules[i].key] = f.ruleMessage(&fieldRules[i])
		}
	}
	switch f.Type {
	case "email":
		m["format"] = f.msg("format", "{label} must be a valid email address", nil)
	case "url":
		m["format"] = f.msg("format", "{label} must be a valid http or https URL", nil)
	case "date":
		m["format"] = f.msg("format", "{label} must be a date (YYYY-MM-DD)", nil)
	case "number":
		m["format"] = f.msg("format", "{label} must be a number", nil)
	case "integer":
		m["format"] = f.msg("format", "{label} must be a whole number", nil)
	}
	return m
}

// typeNames are the short names of common types, for limits people read.
var typeNames = map[string]string{
	"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP", "image/gif": "GIF", "image/avif": "AVIF",
	"image/heic": "HEIC", "image/heif": "HEIF", "image/svg+xml": "SVG", "image/tiff": "TIFF", "image/*": "images",
	"application/pdf": "PDF", "text/plain": "text", "text/csv": "CSV", "application/json": "JSON",
	"application/octet-stream": "unknown binary", "text/html": "HTML", "text/xml": "XML", "application/xml": "XML",
	"application/zip": "ZIP", "application/gzip": "gzip", "video/*": "videos", "audio/*": "audio files",
	"video/mp4": "MP4", "audio/mpeg": "MP3",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word (.docx)",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":       "Excel (.xlsx)",
	"application/vnd.oasis.opendocument.text":                                 "OpenDocument text",
}

// HumanSize writes a byte count for people: 5 MB, 512 KB, 1.5 GB.
func HumanSize(n int64) string {
	unit := func(v float64, u string) string {
		s := strconv.FormatFloat(v, 'f', 1, 64)
		return strings.TrimSuffix(s, ".0") + " " + u
	}
	switch {
	case n >= 1<<30:
		return unit(float64(n)/(1<<30), "GB")
	case n >= 1<<20:
		return unit(float64(n)/(1<<20), "MB")
	case n >= 1<<10:
		return unit(float64(n)/(1<<10), "KB")
	case n == 1:
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}

// HumanTypes names allowed types for people: "PNG, JPEG or WebP".
func HumanTypes(types []string) string {
	names := make([]string, len(types))
	for i, t := range types {
		if n, ok := typeNames[t]; ok {
			names[i] = n
		} else if _, sub, ok := strings.Cut(t, "/"); ok && sub != "*" {
			names[i] = strings.ToUpper(strings.TrimPrefix(sub, "x-"))
		} else {
			names[i] = t
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Limits describes an upload's limits for people: "PNG, JPEG or WebP, up
// to 5 MB" or "Up to 3 files, 10 MB each".
func (u *Upload) Limits() string {
	var s string
	if u.MaxFiles > 1 {
		s = fmt.Sprintf("up to %d files, %s each", u.MaxFiles, HumanSize(u.MaxSize))
	} else {
		s = "up to " + HumanSize(u.MaxSize)
	}
	if t := HumanTypes(u.Types); t != "" {
		return t + ", " + s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
