package superset

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fetcher returns a login function that counts its calls and hands out
// "token-1", "token-2", ... valid for an hour.
func fetcher(n *int) func(context.Context) (login, error) {
	return func(context.Context) (login, error) {
		*n++
		return login{accessToken: "token-" + strconv.Itoa(*n), until: epoch.Add(time.Hour)}, nil
	}
}

func TestLoginCacheIsBounded(t *testing.T) {
	c, client, n := newLoginCache(2), &http.Client{}, 0
	keys := []loginKey{
		c.key(client, "https://a", "u", "db", "p"),
		c.key(client, "https://b", "u", "db", "p"),
		c.key(client, "https://c", "u", "db", "p"),
	}
	for _, k := range keys {
		if _, cached, err := c.get(context.Background(), k, epoch, fetcher(&n)); cached || err != nil {
			t.Fatalf("first get of %s: cached %v, %v", k.url, cached, err)
		}
	}
	if c.entries.Len() != 2 {
		t.Errorf("the cache holds %d logins, want 2", c.entries.Len())
	}
	if _, cached, _ := c.get(context.Background(), keys[0], epoch, fetcher(&n)); cached {
		t.Errorf("the oldest login was not evicted")
	}
	if _, cached, _ := c.get(context.Background(), keys[2], epoch, fetcher(&n)); !cached {
		t.Errorf("the newest login was evicted")
	}
}

func TestLoginCacheDropKeepsANewerLogin(t *testing.T) {
	c, n := newLoginCache(4), 0
	k := c.key(&http.Client{}, "https://a", "u", "db", "p")
	old, _, _ := c.get(context.Background(), k, epoch, fetcher(&n))
	c.drop(k, old)
	newer, cached, _ := c.get(context.Background(), k, epoch, fetcher(&n))
	if cached || newer == old {
		t.Fatalf("a dropped login was reused")
	}
	c.drop(k, old) // a late caller refused the old token: the newer one stays
	if got, cached, _ := c.get(context.Background(), k, epoch, fetcher(&n)); !cached || got != newer {
		t.Errorf("drop of a replaced token removed its replacement")
	}
}

func TestLoginKeyFingerprintsThePassword(t *testing.T) {
	c, other, client := newLoginCache(1), newLoginCache(1), &http.Client{}
	a, b := c.key(client, "u", "n", "db", "one"), c.key(client, "u", "n", "db", "two")
	if a == b || a != c.key(client, "u", "n", "db", "one") {
		t.Errorf("keys do not follow the password")
	}
	if a.password == other.key(client, "u", "n", "db", "one").password {
		t.Errorf("the fingerprint is the same in another cache: it is not keyed")
	}
	if a == c.key(&http.Client{}, "u", "n", "db", "one") {
		t.Errorf("two clients share a key")
	}
}
