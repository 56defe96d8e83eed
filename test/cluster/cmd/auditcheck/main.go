// auditcheck reads audit.k8s.io/v1 Events, one JSON object a line, on stdin and
// checks each against the API server's own Go types (k8s.io/apiserver
// pkg/apis/audit/v1): strict decoding (unknown or mistyped fields are errors,
// names case-sensitive) and the fields the type requires (no omitempty).
// Exit 1 with one line per problem.
package main

import (
	"bufio"
	"fmt"
	"os"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	sigsjson "sigs.k8s.io/json"
)

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 0, 1<<20), 64<<20)
	line, problems, events := 0, 0, 0
	report := func(format string, args ...any) {
		problems++
		fmt.Printf("line %d: %s\n", line, fmt.Sprintf(format, args...))
	}
	for scanner.Scan() {
		line++
		text := scanner.Bytes()
		if len(text) == 0 {
			continue
		}
		events++
		var event auditv1.Event
		strict, err := sigsjson.UnmarshalStrict(text, &event)
		if err != nil {
			report("not an Event: %v", err)
			continue
		}
		for _, e := range strict {
			report("%v", e)
		}
		if event.APIVersion != "audit.k8s.io/v1" || event.Kind != "Event" {
			report("apiVersion/kind %q/%q, want audit.k8s.io/v1 Event", event.APIVersion, event.Kind)
		}
		switch event.Level {
		case auditv1.LevelNone, auditv1.LevelMetadata, auditv1.LevelRequest, auditv1.LevelRequestResponse:
		default:
			report("level %q", event.Level)
		}
		switch event.Stage {
		case auditv1.StageRequestReceived, auditv1.StageResponseStarted, auditv1.StageResponseComplete, auditv1.StagePanic:
		default:
			report("stage %q", event.Stage)
		}
		if event.AuditID == "" || event.RequestURI == "" || event.Verb == "" || event.User.Username == "" {
			report("auditID, requestURI, verb and user.username are required")
		}
		if event.RequestReceivedTimestamp.IsZero() || event.StageTimestamp.IsZero() {
			report("requestReceivedTimestamp and stageTimestamp are required")
		}
	}
	if err := scanner.Err(); err != nil {
		report("read: %v", err)
	}
	if events == 0 {
		fmt.Println("no events")
		os.Exit(1)
	}
	if problems > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d events valid\n", events)
}
