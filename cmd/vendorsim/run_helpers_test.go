package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
)

// startRun runs the command with args and env as a user would start it, and
// returns its base URL and a stop function that shuts it down and returns
// everything it logged, for tests that check what a flag or variable does
// and that no credential reaches the logs.
func startRun(t *testing.T, args []string, env map[string]string) (string, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, func(k string) string { return env[k] }, pw)
		_ = pw.Close()
		done <- err
	}()
	logs := bufio.NewReader(pr)
	first, err := logs.ReadString('\n')
	_, base, ok := strings.Cut(first, "listening on ")
	if err != nil || !ok {
		t.Fatalf("first log line = %q (%v)", first, err)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(logs); rest <- string(b) }()
	return strings.TrimSpace(base), func() string {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		return first + <-rest
	}
}
