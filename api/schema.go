package api

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/formq/formq/actions"
)

// SchemaFile is the `api schema FILE [ACTION]` subcommand: it prints the
// JSON Schema (draft 2020-12) of an action's values, the one the API
// serves at /actions/{name}/schema.json but without its $id; without
// ACTION, one JSON object of every action's schema by name.
func SchemaFile(path, action string, stdout io.Writer) error {
	list, err := actions.LoadFile(path)
	if err != nil {
		return err
	}
	var out any
	if action == "" {
		all := map[string]any{}
		for _, a := range list {
			all[a.Name] = a.JSONSchema("")
		}
		out = all
	} else {
		i := slices.IndexFunc(list, func(a *actions.Action) bool { return a.Name == action })
		if i < 0 {
			return fmt.Errorf("%s declares no action %q", path, action)
		}
		out = list[i].JSONSchema("")
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
