// Package tsgen writes TypeScript from JSON Schema: the types of formq's
// answers from its OpenAPI document and, per action, the values, webhook
// payload and answers of an actions file (`api types`). The schemas it
// reads are formq's own, so it knows the keywords they use ($ref to
// components, allOf, anyOf, oneOf, enum, const, type, properties,
// required, items, additionalProperties) and reads any other as unknown.
package tsgen

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Schema is a JSON Schema as decoded from JSON.
type Schema = map[string]any

// identifier is a property name TypeScript takes without quotes.
var identifier = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)

// Type is the TypeScript type of s, indented by indent for the lines of
// an object type. A $ref names its component's last path segment.
func Type(s Schema, indent string) string {
	if s == nil {
		return "unknown"
	}
	if ref, ok := s["$ref"].(string); ok {
		return ref[strings.LastIndex(ref, "/")+1:]
	}
	if c, ok := s["const"]; ok {
		return literal(c)
	}
	if e, ok := s["enum"].([]any); ok {
		parts := make([]string, len(e))
		for i, v := range e {
			parts[i] = literal(v)
		}
		return strings.Join(parts, " | ")
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if list, ok := s[key].([]any); ok {
			return join(list, " | ", indent)
		}
	}
	if list, ok := s["allOf"].([]any); ok {
		// The keywords beside allOf hold too.
		rest := Schema{}
		for k, v := range s {
			if k != "allOf" {
				rest[k] = v
			}
		}
		return join(append([]any{rest}, list...), " & ", indent)
	}
	switch t := s["type"].(type) {
	case string:
		return ofType(t, s, indent)
	case []any:
		parts := make([]string, len(t))
		for i, v := range t {
			name, _ := v.(string)
			parts[i] = ofType(name, s, indent)
		}
		return strings.Join(parts, " | ")
	}
	if _, ok := s["properties"]; ok {
		return ofType("object", s, indent)
	}
	return "unknown"
}

// join is the union or intersection of list; in an intersection, members
// that only add rules TypeScript cannot say (a pattern, a not) drop out.
func join(list []any, sep, indent string) string {
	var parts []string
	for _, v := range list {
		sub, _ := v.(Schema)
		t := Type(sub, indent)
		if t == "unknown" && sep == " & " {
			continue
		}
		parts = append(parts, "("+t+")")
	}
	switch len(parts) {
	case 0:
		return "unknown"
	case 1:
		return strings.TrimSuffix(strings.TrimPrefix(parts[0], "("), ")")
	}
	return strings.Join(parts, sep)
}

func ofType(t string, s Schema, indent string) string {
	switch t {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "null":
		return "null"
	case "array":
		items, _ := s["items"].(Schema)
		return "Array<" + Type(items, indent) + ">"
	case "object":
		return object(s, indent)
	}
	return "unknown"
}

// object is an object type: its properties (optional unless required),
// then an index signature for additionalProperties.
func object(s Schema, indent string) string {
	props, _ := s["properties"].(Schema)
	required := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, v := range r {
			name, _ := v.(string)
			required[name] = true
		}
	}
	extra := ""
	switch ap := s["additionalProperties"].(type) {
	case Schema:
		extra = Type(ap, indent+"  ")
	case bool:
		if ap {
			extra = "unknown"
		}
	case nil:
		if len(props) == 0 {
			extra = "unknown"
		}
	}
	if len(props) == 0 {
		if extra == "" {
			return "Record<string, never>"
		}
		return "Record<string, " + extra + ">"
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{\n")
	for _, name := range names {
		sub, _ := props[name].(Schema)
		Comment(&b, indent+"  ", sub)
		key := name
		if !identifier.MatchString(name) {
			key = literal(name)
		}
		opt := "?"
		if required[name] {
			opt = ""
		}
		fmt.Fprintf(&b, "%s  %s%s: %s;\n", indent, key, opt, Type(sub, indent+"  "))
	}
	if extra != "" {
		// An index signature must admit the declared properties' types.
		fmt.Fprintf(&b, "%s  [key: string]: unknown;\n", indent)
	}
	b.WriteString(indent + "}")
	return b.String()
}

// Comment writes s's title and description as a doc comment.
func Comment(b *strings.Builder, indent string, s Schema) {
	var lines []string
	for _, k := range []string{"title", "description"} {
		if v, ok := s[k].(string); ok && v != "" {
			lines = append(lines, strings.Split(strings.ReplaceAll(v, "*/", "*\\/"), "\n")...)
		}
	}
	if len(lines) == 0 {
		return
	}
	if len(lines) == 1 {
		fmt.Fprintf(b, "%s/** %s */\n", indent, lines[0])
		return
	}
	fmt.Fprintf(b, "%s/**\n", indent)
	for _, l := range lines {
		fmt.Fprintf(b, "%s * %s\n", indent, l)
	}
	fmt.Fprintf(b, "%s */\n", indent)
}

// literal is v as a TypeScript literal (JSON is one).
func literal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// PascalCase turns an action name (letters, digits, - and _) into a type
// name: create-user is CreateUser; one starting with a digit gets an A.
func PascalCase(name string) string {
	var b strings.Builder
	up := true
	for _, r := range name {
		switch {
		case r == '-' || r == '_' || r == '.':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(r)))
			up = false
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "A" + s
	}
	return s
}
