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
	"context"
	"time"

	"golang.org/x/sync/singleflight"
)

// share runs fn once for every concurrent call of share with the same key
// and gives each its result; started is true for the call whose fn ran.
// fn runs under a context of its own, bounded by timeout, so a caller that
// gives up does not fail the others; each caller waits no longer than its
// own ctx.
func share[T any](ctx context.Context, g *singleflight.Group, key string, timeout time.Duration,
	fn func(context.Context) (T, error)) (result T, started bool, err error) {
	me := new(byte)
	ch := g.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		v, err := fn(fctx)
		return flight[T]{value: v, by: me}, err
	})
	select {
	case <-ctx.Done():
		return result, false, ctx.Err()
	case res := <-ch:
		f, _ := res.Val.(flight[T])
		return f.value, f.by == me, res.Err
	}
}

// flight is a shared call's result and the call that started it.
type flight[T any] struct {
	value T
	by    *byte
}
