/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package endpointbench holds the token endpoint's Go benchmarks, run by
// `make bench` (not by `make test`): a real kube-apiserver and etcd (the
// envtest assets), the operator's controllers and issuance path in process,
// the vendor simulator's Qrvey endpoint, and the endpoint served over TLS
// by the manager's own server with the certificate the operator's rotator
// writes. Callers are pkg/tokenclient clients holding real ServiceAccount
// tokens minted by TokenRequest. See docs/benchmarks.md, "Token endpoint".
package endpointbench
