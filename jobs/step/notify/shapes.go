package notify

// The message shape of each service's incoming webhook, as documented:
// Slack (api.slack.com/messaging/webhooks: text, with Block Kit blocks),
// Discord (discord.com/developers/docs/resources/webhook#execute-webhook:
// content and embeds) and Microsoft Teams (a message with one Adaptive
// Card attachment, which Workflows' "When a Teams webhook request is
// received" and the older connectors both take).

import (
	"strconv"
	"strings"
	"time"
)

// slackEscape escapes what Slack's mrkdwn reads as control characters.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackMessage(s Summary) map[string]any {
	title := slackEscape.Replace(s.Title())
	var lines []string
	for _, v := range s.Values {
		lines = append(lines, "*"+slackEscape.Replace(v[0])+"*: "+slackEscape.Replace(v[1]))
	}
	if s.More > 0 {
		lines = append(lines, "_and "+strconv.Itoa(s.More)+" more_")
	}
	text := title
	if s.Link != "" {
		text = "<" + s.Link + "|" + title + ">"
	}
	blocks := []any{
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*" + text + "*"}},
	}
	if len(lines) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Join(lines, "\n")}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{
		map[string]any{"type": "mrkdwn", "text": "Received " + s.ReceivedAt.Format(time.RFC1123) + " · " + s.ID},
	}})
	// text is the fallback of notifications and old clients.
	return map[string]any{"text": title + fallbackLink(s), "blocks": blocks}
}

func fallbackLink(s Summary) string {
	if s.Link == "" {
		return ""
	}
	return ": " + s.Link
}

func discordMessage(s Summary) map[string]any {
	embed := map[string]any{"title": s.Title(), "timestamp": s.ReceivedAt.Format(time.RFC3339), "footer": map[string]any{"text": s.ID}}
	if s.Link != "" {
		embed["url"] = s.Link
	}
	var fields []any
	for _, v := range s.Values {
		fields = append(fields, map[string]any{"name": v[0], "value": v[1], "inline": len(v[1]) <= 40})
	}
	if len(fields) > 0 {
		embed["fields"] = fields
	}
	if s.More > 0 {
		embed["description"] = "and " + strconv.Itoa(s.More) + " more"
	}
	// No value may ping anyone: mentions in submitted text stay text.
	return map[string]any{"content": s.Title(), "embeds": []any{embed}, "allowed_mentions": map[string]any{"parse": []any{}}}
}

func teamsMessage(s Summary) map[string]any {
	facts := []any{}
	for _, v := range s.Values {
		facts = append(facts, map[string]any{"title": v[0], "value": v[1]})
	}
	body := []any{
		map[string]any{"type": "TextBlock", "text": s.Title(), "weight": "Bolder", "size": "Medium", "wrap": true},
		map[string]any{"type": "TextBlock", "text": "Received " + s.ReceivedAt.Format(time.RFC1123) + " · " + s.ID, "isSubtle": true, "spacing": "None", "wrap": true},
	}
	if len(facts) > 0 {
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	if s.More > 0 {
		body = append(body, map[string]any{"type": "TextBlock", "text": "and " + strconv.Itoa(s.More) + " more", "isSubtle": true})
	}
	card := map[string]any{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4", "body": body}
	if s.Link != "" {
		card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Open in the inbox", "url": s.Link}}
	}
	return map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card},
	}}
}
