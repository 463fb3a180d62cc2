package main

import (
	"context"
	"fmt"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// issue starts the manager and measures the first tokens: by default the
// benchmark client applies N requests to the running manager (apply → all
// Ready); with cfg.Precreate the requests exist before the manager starts
// (manager start → all Ready), so the window holds no request creates, as
// the floor's does not. Profiling starts with the window.
func issue(ctx context.Context, cfg config, cp *harness.ControlPlane, sim *vendorsim.Server, watch *watcher,
	fx harness.QrveyFixture, bin string, res *results) (*harness.Manager, <-chan struct{}, error) {
	create := func() error {
		return harness.CreateParallel(ctx, cfg.N, clientWorkers, func(ctx context.Context, i int) error {
			return cp.Client.Create(ctx, fx.Request(requestName(i), benchLifetime))
		})
	}
	allReady := func() error { return watch.waitFor(ctx, func() bool { return watch.readyCount() == cfg.N }) }
	var m *harness.Manager
	var profileDone <-chan struct{}
	var err error
	if !cfg.Precreate {
		var pprofAddr string
		if m, pprofAddr, err = startManager(ctx, cfg, bin, cp.Kubeconfig, res); err != nil {
			return nil, nil, err
		}
		if st, err := harness.ReadProcStats(m.PID()); err == nil {
			res.IdleRSS = st.RSS
		}
		step(fmt.Sprintf("applying %d EmbedTokenRequests and waiting until all are Ready", cfg.N))
		profileDone = captureProfiles(ctx, cfg, cp, pprofAddr, res)
		res.Issue, err = measure(ctx, cp, sim, func() int { return m.PID() }, func() error {
			if err := create(); err != nil {
				return err
			}
			return allReady()
		})
		return m, profileDone, err
	}
	step(fmt.Sprintf("creating %d EmbedTokenRequests while the manager is not running (untimed)", cfg.N))
	if err := create(); err != nil {
		return nil, nil, err
	}
	step("starting the manager and waiting until all are Ready")
	apiOnly := cfg
	apiOnly.Profile = 0
	apiDone := captureProfiles(ctx, apiOnly, cp, "", res)
	var managerDone <-chan struct{}
	res.Issue, err = measure(ctx, cp, sim, func() int {
		if m == nil {
			return 0
		}
		return m.PID()
	}, func() error {
		start := time.Now()
		var pprofAddr string
		if m, pprofAddr, err = startManager(ctx, cfg, bin, cp.Kubeconfig, res); err != nil {
			return err
		}
		res.ManagerStartup = time.Since(start)
		managerOnly := cfg
		managerOnly.APIProfile = 0
		managerDone = captureProfiles(ctx, managerOnly, cp, pprofAddr, res)
		return allReady()
	})
	done := make(chan struct{})
	go func() {
		<-apiDone
		if managerDone != nil {
			<-managerDone
		}
		close(done)
	}()
	return m, done, err
}

// floors measures the four floors after the manager has stopped, each in a
// namespace of its own: unthrottled and with the manager's QPS, each with the
// requests created beforehand and with them applied inside the window.
func floors(ctx context.Context, cp *harness.ControlPlane, cfg config, res *results) error {
	var err error
	step("floor: a plain client with no rate limit creating N Secrets and N status updates")
	if res.FloorUnthrottled, err = floor(ctx, cp, cfg, "floor-unthrottled", false); err != nil {
		return err
	}
	step("floor with the apply, no rate limit: the same, with the N requests created inside the timed window")
	if res.FloorWithApplyUnthrottled, err = floorWithApply(ctx, cp, cfg, "floor-apply-unthrottled", false); err != nil {
		return err
	}
	step("floor at the manager's QPS")
	if res.Floor, err = floor(ctx, cp, cfg, "floor", true); err != nil {
		return err
	}
	step("floor with the apply at the manager's QPS")
	res.FloorWithApply, err = floorWithApply(ctx, cp, cfg, "floor-apply", true)
	return err
}
