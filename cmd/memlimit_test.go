package main

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/go-logr/logr"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestSetGCPercent proves the manager runs at cacheGCPercent by default and
// that GOGC in the environment wins.
func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())
	for _, tc := range []struct {
		name, env string
		set       bool
		want      int
	}{
		{"unset GOGC gives the cache's percent", "", false, cacheGCPercent},
		{"GOGC in the environment is kept", "200", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(200) // what the runtime read from the environment
			if tc.set {
				t.Setenv("GOGC", tc.env)
			} else {
				t.Setenv("GOGC", "") // restored after the test
				if err := os.Unsetenv("GOGC"); err != nil {
					t.Fatal(err)
				}
			}
			setGCPercent(logr.Discard())
			if got := gcPercent(); got != tc.want {
				t.Errorf("GC percent = %d, want %d", got, tc.want)
			}
		})
	}
}
