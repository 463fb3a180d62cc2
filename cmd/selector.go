package main

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
)

// labelSelector is the value of --watch-label-selector: the shard of
// EmbedTokenRequests this instance serves, parsed at startup so a typo fails
// fast instead of leaving the instance serving the wrong requests or none.
type labelSelector struct {
	raw string
	sel labels.Selector
}

// String implements flag.Value.
func (l *labelSelector) String() string { return l.raw }

// Set implements flag.Value.
func (l *labelSelector) Set(value string) error {
	sel, err := labels.Parse(value)
	if err != nil {
		return fmt.Errorf("invalid label selector %q: %w", value, err)
	}
	l.raw, l.sel = value, sel
	return nil
}

// selector is the parsed selector, nil (every request) when the flag was
// not given or empty.
func (l *labelSelector) selector() labels.Selector {
	if l.sel == nil || l.sel.Empty() {
		return nil
	}
	return l.sel
}
