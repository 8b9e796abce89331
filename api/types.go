package api

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/formq/formq/actions"
	"github.com/formq/formq/internal/openapi"
	"github.com/formq/formq/internal/tsgen"
)

// TypesFile is the `api types FILE` subcommand: it prints TypeScript for
// the actions of FILE, so a form, a Next.js route handler receiving the
// webhook and the code reading formq's answers are checked by tsc. First
// the answers of every action, from the OpenAPI document the API serves
// (SubmissionStatus, Accepted, ValidationError, SubmissionRecord...) and
// the two answers an app may give a webhook step; then per action its
// values (as the server keeps them: the data of the webhook), its field
// names, its webhook payload and its answers with those names; last an
// Actions map from action name to all of them.
func TypesFile(path string, stdout io.Writer) error {
	list, err := actions.LoadFile(path)
	if err != nil {
		return err
	}
	var doc struct {
		Components struct {
			Schemas map[string]tsgen.Schema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		return fmt.Errorf("the OpenAPI document: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// TypeScript of formq's actions in %s, written by `api types`; write it again\n", path)
	b.WriteString("// when the actions file changes. The shared answers come from formq's\n// OpenAPI document (/openapi.json).\n\n")

	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := doc.Components.Schemas[name]
		tsgen.Comment(&b, "", s)
		fmt.Fprintf(&b, "export type %s = %s;\n\n", name, tsgen.Type(s, ""))
	}
	b.WriteString(shared)

	var entries []string
	for _, a := range list {
		n := tsgen.PascalCase(a.Name)
		// As JSON reads it: lists as []any, objects as maps.
		var schema tsgen.Schema
		if err := json.Unmarshal(must(json.Marshal(a.JSONSchema(""))), &schema); err != nil {
			return fmt.Errorf("the JSON Schema of %s: %w", a.Name, err)
		}
		fields := make([]string, 0, len(a.Fields)+len(a.Uploads))
		for _, f := range a.Fields {
			fields = append(fields, f.Name)
		}
		uploads := make([]string, 0, len(a.Uploads))
		for _, u := range a.Uploads {
			uploads = append(uploads, u.Name)
		}
		fmt.Fprintf(&b, "// Action %q.\n\n", a.Name)
		tsgen.Comment(&b, "", tsgen.Schema{"description": schema["description"]})
		fmt.Fprintf(&b, "export type %sValues = %s;\n\n", n, tsgen.Type(schema, ""))
		fmt.Fprintf(&b, "/** The upload fields of %s: a file, or the reference POST /uploads answered. */\n", a.Name)
		fmt.Fprintf(&b, "export type %sUpload = %s;\n\n", n, union(uploads))
		fmt.Fprintf(&b, "/** Every field name of %s, for errors by field. */\n", a.Name)
		fmt.Fprintf(&b, "export type %sField = %s;\n\n", n, union(append(fields, uploads...)))
		fmt.Fprintf(&b, "/** The body the webhook steps of %s post to your app. */\n", a.Name)
		fmt.Fprintf(&b, "export type %[1]sWebhook = Omit<WebhookPayload, \"action\" | \"values\" | \"files\"> & {\n  action: %[2]s;\n  values: %[1]sValues;\n  files: Array<WebhookFile & { field: %[1]sUpload }>;\n};\n\n", n, quote(a.Name))
		fmt.Fprintf(&b, "/** What your app may answer a webhook step of %s. */\n", a.Name)
		fmt.Fprintf(&b, "export type %[1]sAppAnswer = AppData | AppRefusal<%[1]sField>;\n\n", n)
		fmt.Fprintf(&b, "/** The 422 answer to a post to %s that formq or your app refused. */\n", a.Name)
		fmt.Fprintf(&b, "export type %[1]sValidationError = Omit<ValidationError, \"errors\" | \"values\"> & {\n  errors: Partial<Record<%[1]sField, string[]>> & Record<string, string[]>;\n  values: Partial<Record<keyof %[1]sValues, unknown>>;\n};\n\n", n)
		entries = append(entries, fmt.Sprintf("  %s: {\n    values: %[2]sValues;\n    field: %[2]sField;\n    upload: %[2]sUpload;\n    webhook: %[2]sWebhook;\n    appAnswer: %[2]sAppAnswer;\n    validationError: %[2]sValidationError;\n  };\n", quote(a.Name), n))
	}
	b.WriteString("/** Every action of the file by name. */\nexport interface Actions {\n")
	for _, e := range entries {
		b.WriteString(e)
	}
	b.WriteString("}\n")
	_, err = io.WriteString(stdout, b.String())
	return err
}

// shared are the types every action's answers are made of.
const shared = `/** A submission's state, in its status and in answers that waited for it. */
export type SubmissionState = SubmissionStatus["status"];

/** A webhook step's answer with data: 2xx, application/json; the values fill {steps.NAME.KEY}. */
export interface AppData {
  data: Record<string, string | number | boolean | null>;
}

/**
 * A webhook step's refusal: 422, application/json, errors by field name (a
 * string counts as a list of one) and/or a message for the whole form; the
 * submission ends rejected.
 */
export type AppRefusal<F extends string = string> =
  | { errors: Partial<Record<F, string | string[]>>; message?: string }
  | { errors?: Partial<Record<F, string | string[]>>; message: string };

/** Every JSON answer of POST /actions/{name}: accepted (200, 202), refused (422) or failed. */
export type SubmitAnswer = Accepted | ValidationError | Error;

`

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err) // a schema of maps, strings and numbers always marshals
	}
	return b
}

func union(names []string) string {
	if len(names) == 0 {
		return "never"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, " | ")
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
