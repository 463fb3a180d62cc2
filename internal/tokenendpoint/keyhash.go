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
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// keyHash hashes lists of strings so that no two different sequences of
// lists hash alike: each list is prefixed with its length and each string
// with its length, so "a","bc" and "ab","c" differ, as do ["a"],["b"] and
// ["a","b"],[].
type keyHash struct{ h hash.Hash }

// strings adds one list.
func (k *keyHash) strings(ss ...string) {
	if k.h == nil {
		k.h = sha256.New()
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(ss)))
	_, _ = k.h.Write(n[:])
	for _, s := range ss {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = k.h.Write(n[:])
		_, _ = k.h.Write([]byte(s))
	}
}

// sum is the SHA-256 of the lists added.
func (k *keyHash) sum() [sha256.Size]byte {
	if k.h == nil {
		k.h = sha256.New()
	}
	var out [sha256.Size]byte
	k.h.Sum(out[:0])
	return out
}
