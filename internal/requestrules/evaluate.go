package requestrules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/cel-go/common/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// EvalTimeout bounds the wall time of one request's evaluation, whatever
// the cost accounting says; other users of Rule bound theirs the same way.
const EvalTimeout = time.Second

// Denial says which rule refused a request and why. Its message is meant
// for the request's owner: the rule's message (or expression), and the
// evaluation error when the rule could not be evaluated.
type Denial struct {
	// Index of the rule in spec.requestValidations.
	Index int
	// Message is the rule's message, or its expression when it has none.
	Message string
	// Err is why the rule could not be evaluated (a missing key, a
	// non-bool result, a cost limit), or nil when it returned false.
	Err error
}

// Error implements error.
func (d *Denial) Error() string {
	if d.Err == nil {
		return d.Message
	}
	return fmt.Sprintf("%s (spec.requestValidations[%d] could not be evaluated: %v)", d.Message, d.Index, d.Err)
}

// Unwrap returns the evaluation error.
func (d *Denial) Unwrap() error { return d.Err }

// Evaluate runs every rule against the request and its Namespace, in order,
// and returns the first Denial, or nil when all rules admit the request.
// A rule that fails to evaluate denies: a rules that cannot be checked
// must not let a request through.
func (p *RuleSet) Evaluate(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, ns *corev1.Namespace) *Denial {
	if p.Empty() {
		return nil
	}
	vars, err := variables(etr, ns)
	if err != nil {
		return &Denial{Index: p.rules[0].index, Message: p.rules[0].text(), Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, EvalTimeout)
	defer cancel()
	remaining := p.budget
	for _, r := range p.rules {
		ok, cost, err := r.eval(ctx, vars)
		if err == nil && cost > remaining {
			err = fmt.Errorf("the rules together exceed the cost budget %d", p.budget)
		}
		if err != nil {
			return &Denial{Index: r.index, Message: r.text(), Err: err}
		}
		remaining -= cost
		if !ok {
			return &Denial{Index: r.index, Message: r.text()}
		}
	}
	return nil
}

func (r *rule) text() string {
	if r.message != "" {
		return r.message
	}
	return "failed rule: " + r.expression
}

// eval runs one rule and returns its result and actual cost.
func (r *rule) eval(ctx context.Context, vars map[string]any) (bool, uint64, error) {
	return r.program.Eval(ctx, vars)
}

// Eval runs the rule on vars and returns its result and actual cost. Errors
// (a missing key, a non-bool result, the cost limit, ctx's deadline) are
// worded for the rule's author and never quote the variables' values.
func (r *Rule) Eval(ctx context.Context, vars map[string]any) (bool, uint64, error) {
	out, details, err := r.program.ContextEval(ctx, vars)
	var cost uint64
	if details != nil && details.ActualCost() != nil {
		cost = *details.ActualCost()
	}
	if err != nil {
		return false, cost, evalError(err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, cost, fmt.Errorf("the rule returned %s, not a bool", out.Type())
	}
	return bool(b), cost, nil
}

// evalError rewords cel-go's errors for the request's owner.
func evalError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "operation cancelled: actual cost limit exceeded"):
		return errors.New("the rule exceeded its cost limit")
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "operation interrupted"):
		return fmt.Errorf("the rule took longer than %s", EvalTimeout)
	}
	return err
}

// variables builds object and namespaceObject as unstructured maps, the
// form a ValidatingAdmissionPolicy sees. Labels and annotations are always
// present (empty when unset), so a rule reading a missing label fails with
// "no such key: <label>", not on the map itself.
func variables(etr *v1alpha1.EmbedTokenRequest, ns *corev1.Namespace) (map[string]any, error) {
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&etr.Spec)
	if err != nil {
		return nil, fmt.Errorf("converting the request: %w", err)
	}
	object := map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "EmbedTokenRequest",
		"metadata": map[string]any{
			"name":        etr.Name,
			"namespace":   etr.Namespace,
			"labels":      stringMap(etr.Labels),
			"annotations": stringMap(etr.Annotations),
		},
		"spec": spec,
	}
	return map[string]any{ObjectVar: object, NamespaceVar: NamespaceObject(etr.Namespace, ns)}, nil
}

// NamespaceObject is the namespaceObject variable for the Namespace named
// name: ns's apiVersion, kind and metadata (name, labels, annotations), or
// the name alone with empty labels and annotations when ns is nil (not
// read), so every rule sees the Namespace in the same form.
func NamespaceObject(name string, ns *corev1.Namespace) map[string]any {
	namespace := map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{}, "annotations": map[string]any{}},
	}
	if ns != nil {
		namespace["metadata"] = map[string]any{
			"name":        ns.Name,
			"labels":      stringMap(ns.Labels),
			"annotations": stringMap(ns.Annotations),
		}
	}
	return namespace
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
