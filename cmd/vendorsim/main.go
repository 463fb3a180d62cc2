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
// Every vendor declares its own flags (vendorsim.NewFlags); it never logs
// API keys or tokens.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8089", "address to listen on")
	vendorFlags := vendorsim.NewFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	opts, err := vendorFlags.Options()
	if err != nil {
		return err
	}

	logger := log.New(stderr, "", log.LstdFlags)
	sim := vendorsim.New(opts)
	if err := sim.StartOn(*listen); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logger.Printf("Vendor simulator listening on %s", sim.URL())
	for _, line := range sim.Banner() {
		logger.Print(line)
	}

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
