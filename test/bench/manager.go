package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

// startManager runs the manager with the benchmark's client settings and a
// pprof endpoint, and waits until its controllers run.
func startManager(ctx context.Context, cfg config, bin, kubeconfig string, res *results) (*harness.Manager, string, error) {
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	res.pprofAddr = pprofAddr
	if res.metricsAddr, err = freeAddr(); err != nil {
		return nil, "", err
	}
	res.ManagerLog = filepath.Join(cfg.OutDir, "manager.log")
	_ = os.Remove(res.ManagerLog)
	var env []string
	if cfg.ManagerMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+cfg.ManagerMemLimit)
	}
	if cfg.ManagerGOGC != "" {
		env = append(env, "GOGC="+cfg.ManagerGOGC)
	}
	m, err := harness.StartManagerWithEnv(bin, kubeconfig, res.ManagerLog, env,
		"--metrics-bind-address="+res.metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=0", "--token-endpoint-bind-address=0", "--pprof-bind-address="+pprofAddr,
		fmt.Sprintf("--kube-api-qps=%g", cfg.QPS), fmt.Sprintf("--kube-api-burst=%d", cfg.Burst),
		fmt.Sprintf("--max-concurrent-reconciles=%d", cfg.Concurrency),
		// Every request is in one namespace and the wave follows the last
		// first token closely: the bench measures the operator's whole
		// throughput, not one namespace's share or the refresh floor.
		"--namespace-write-share=1", "--min-refresh-interval=1s",
		harness.AllowSimulator, "--zap-time-encoding=rfc3339nano")
	if err != nil {
		return nil, "", err
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := m.WaitLog(wait, "Starting workers"); err != nil {
		_ = m.Kill()
		return nil, "", err
	}
	return m, pprofAddr, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// scrape fetches the manager's metrics once and counts the per-request
// series, which the operator computes from its cache at scrape time.
func scrape(ctx context.Context, addr string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("scraping metrics: HTTP %d", resp.StatusCode)
	}
	return took, bytes.Count(body, []byte("\nembedtoken_ready{")), nil
}
