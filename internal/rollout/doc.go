// Package rollout makes workloads use a request's new token once it is
// stored: pods that read the token from environment variables are restarted
// through their Deployment, StatefulSet or DaemonSet (Restart, coalescing
// restarts of one workload within RestartCoalesceWindow), and running pods
// that mount the Secret are annotated so the kubelet syncs their volumes at
// once (Propagate, at most MaxPropagatedPods per token). Each acts once per
// token digest, which the request's status records.
package rollout
