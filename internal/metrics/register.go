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

package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers *c with reg, or swaps in the equal collector that is
// already registered, so its series continue. It records the first failure
// in *errp and does nothing once *errp is set, so a constructor can
// register its collectors one after another and check once.
func Register[T prometheus.Collector](reg prometheus.Registerer, c *T, errp *error) {
	if *errp != nil {
		return
	}
	err := reg.Register(*c)
	var already prometheus.AlreadyRegisteredError
	switch {
	case errors.As(err, &already):
		existing, ok := already.ExistingCollector.(T)
		if !ok {
			*errp = fmt.Errorf("metric registered with another type: %w", err)
			return
		}
		*c = existing
	case err != nil:
		*errp = err
	}
}
