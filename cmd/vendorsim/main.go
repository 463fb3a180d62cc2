// Command vendorsim runs the vendor simulator as a standalone process, for
// local demos and end-to-end tests that drive it through its /_sim/ admin API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// shutdownGrace bounds how long in-flight requests may finish after a signal.
const shutdownGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "Vendor simulator failed: %v\n", err)
		}
		os.Exit(2)
	}
}

// run serves until ctx ends; it is separate from main so tests can drive it.
// It never logs API keys or tokens.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8089", "address to listen on")
	// The default is resolved after parsing so --help never prints a real key.
	qrveyKey := fs.String("qrvey-api-key", "", `x-api-key the Qrvey endpoint accepts (default $VENDORSIM_QRVEY_API_KEY, else "`+vendorsim.DefaultQrveyAPIKey+`")`)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *qrveyKey == "" {
		*qrveyKey = getenv("VENDORSIM_QRVEY_API_KEY")
	}

	logger := log.New(stderr, "", log.LstdFlags)
	sim := vendorsim.New(vendorsim.Options{QrveyAPIKey: *qrveyKey})
	if err := sim.StartOn(*listen); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logger.Printf("Vendor simulator listening on %s", sim.URL())
	logger.Printf("Qrvey token endpoint at %s%s", sim.URL(), vendorsim.QrveyTokenPath)

	<-ctx.Done()
	logger.Printf("Shutting down vendor simulator")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := sim.Shutdown(shutdownCtx); err != nil {
		sim.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}
