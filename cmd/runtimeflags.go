package main

import (
	"flag"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// runtimeFlags are the manager settings that tests and benchmarks tune: a
// fast leader-election failover in the chaos tests, a pprof endpoint for CPU
// profiles of a large fleet. The defaults are controller-runtime's.
type runtimeFlags struct {
	leaderElectionNamespace                 string
	leaseDuration, renewDeadline, retryTime time.Duration
	pprofAddr                               string
}

// bind registers the flags on fs.
func (f *runtimeFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader-election Lease; defaults to the pod's namespace (required out of cluster).")
	fs.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", 15*time.Second,
		"How long non-leaders wait after the last renewal before taking over.")
	fs.DurationVar(&f.renewDeadline, "leader-elect-renew-deadline", 10*time.Second,
		"How long the leader keeps retrying to renew before giving up leadership.")
	fs.DurationVar(&f.retryTime, "leader-elect-retry-period", 2*time.Second,
		"How often leader-election clients retry acquiring or renewing the Lease.")
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "",
		"Address of the net/http/pprof endpoint (e.g. 127.0.0.1:6060); empty disables it.")
}

// apply copies the flags into the manager options.
func (f *runtimeFlags) apply(o *ctrl.Options) {
	o.LeaderElectionNamespace = f.leaderElectionNamespace
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = &f.leaseDuration, &f.renewDeadline, &f.retryTime
	o.PprofBindAddress = f.pprofAddr
}
