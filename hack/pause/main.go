// Command pause is the local cluster's pod sandbox process
// (registry.k8s.io/pause:3.10 there): it holds the pod's namespaces open and
// exits on SIGTERM or SIGINT. The upstream image cannot be pulled on machines
// without a registry, so hack/local-cluster builds this one.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
