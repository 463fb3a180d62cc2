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

package tokenendpoint

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// maxRateLimiters bounds the token buckets held, one per template with a
// rateLimit; a bucket dropped for room starts full again, so the bound only
// matters with more limited templates than this answering calls at once.
const maxRateLimiters = 10000

// rateLimiters holds each template's spec.rateLimit bucket, by UID.
type rateLimiters struct {
	mu  sync.Mutex
	lru *lru.Cache
}

func newRateLimiters() *rateLimiters {
	return &rateLimiters{lru: lru.New(maxRateLimiters)}
}

// reserve takes one call from the template's bucket at now. It returns
// zero when the call may go ahead, or how long until it could.
func (l *rateLimiters) reserve(tmpl *v1alpha1.EmbedTokenTemplate, now time.Time) time.Duration {
	rl := tmpl.Spec.RateLimit
	if rl == nil || rl.RequestsPerMinute <= 0 {
		return 0
	}
	limit := rate.Limit(float64(rl.RequestsPerMinute) / 60)
	burst := int(rl.Burst)
	if burst <= 0 {
		burst = max(int(rl.RequestsPerMinute)/60, 1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var lim *rate.Limiter
	if v, ok := l.lru.Get(tmpl.UID); ok {
		lim = v.(*rate.Limiter)
		if lim.Limit() != limit {
			lim.SetLimitAt(now, limit)
		}
		if lim.Burst() != burst {
			lim.SetBurstAt(now, burst)
		}
	} else {
		lim = rate.NewLimiter(limit, burst)
		lim.SetLimitAt(now, limit) // start the bucket's clock at now, not the wall clock
		l.lru.Add(tmpl.UID, lim)
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// forget drops the template's bucket.
func (l *rateLimiters) forget(uid types.UID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lru.Remove(uid)
}
