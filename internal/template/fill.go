package template

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// Caller is who called the token endpoint, as the token review says; a
// parameter's validation sees it as `caller`.
type Caller struct {
	// Username is the caller's user name, e.g.
	// system:serviceaccount:shop:web.
	Username string
	// Namespace is the caller's ServiceAccount's namespace.
	Namespace string
	// ServiceAccount is the caller's ServiceAccount's name.
	ServiceAccount string
	// PodName is the pod the caller's token is bound to, or "".
	PodName string
}

// vars is the caller as the CEL variable.
func (c Caller) vars() map[string]string {
	return map[string]string{"username": c.Username, "namespace": c.Namespace, "serviceAccount": c.ServiceAccount, "podName": c.PodName}
}

// UsesNamespace reports whether a validation reads namespaceObject, so the
// caller of Fill reads the Namespace only when one needs it.
func (c *Compiled) UsesNamespace() bool { return c.usesNamespace }

// Parameters lists the parameters' names in the template's order.
func (c *Compiled) Parameters() []string {
	names := make([]string, len(c.params))
	for i, p := range c.params {
		names[i] = p.name
	}
	return names
}

// Fill checks a call's parameters and returns a copy of the template's
// vendor block with each value at its parameter's path. It refuses, with an
// *Error of reason InvalidParameters, a parameter the template does not
// declare, a missing one, an empty value, one longer than its maxLength or
// than its field admits, one that is not valid UTF-8 or breaks its field's
// pattern or enum, and one its validation refuses (the message is the
// validation's). ns is the template's Namespace, needed only when
// UsesNamespace says so. The template is never changed.
func (c *Compiled) Fill(params map[string]string, caller Caller, ns *corev1.Namespace) (*v1alpha1.VendorParams, error) {
	if err := c.check(params); err != nil {
		return nil, err
	}
	if err := c.validate(params, caller, ns); err != nil {
		return nil, err
	}
	out := c.block.DeepCopy()
	for _, p := range c.params {
		if err := p.set(out, params[p.name]); err != nil {
			return nil, invalid(p.name, "parameter %s cannot be filled in: %v", truncate(p.name), err)
		}
	}
	return out, nil
}

// check refuses unknown and missing parameters and values out of bounds,
// before any validation runs.
func (c *Compiled) check(params map[string]string) error {
	if len(params) > MaxParameters {
		return invalid("", "%d parameters sent, more than the %d a template may declare", len(params), MaxParameters)
	}
	var unknown []string
	for name := range params {
		if c.byName[name] == nil {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return invalid(unknown[0], "parameter %s is not declared by the template (it declares %s)", truncate(unknown[0]), c.declared())
	}
	for _, p := range c.params {
		value, ok := params[p.name]
		switch {
		case !ok:
			return invalid(p.name, "parameter %s is missing", truncate(p.name))
		case value == "":
			return invalid(p.name, "parameter %s is empty", truncate(p.name))
		case len(value) > p.maxLength:
			return invalid(p.name, "parameter %s is longer than its maxLength, %d bytes", truncate(p.name), p.maxLength)
		case !utf8.ValidString(value):
			return invalid(p.name, "parameter %s is not valid UTF-8", truncate(p.name))
		}
		if err := p.bounds.check(value); err != nil {
			return invalid(p.name, "parameter %s %v", truncate(p.name), err)
		}
	}
	return nil
}

// declared lists the parameters' names for messages.
func (c *Compiled) declared() string {
	if len(c.params) == 0 {
		return "none"
	}
	var b bytes.Buffer
	for i, p := range c.params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.name)
	}
	return b.String()
}

// validate runs every validation, within one wall-time limit and one cost
// budget, as a request's requestValidations run.
func (c *Compiled) validate(params map[string]string, caller Caller, ns *corev1.Namespace) error {
	var namespace map[string]any
	if c.usesNamespace {
		if ns == nil {
			return errors.New("the template's validations read namespaceObject but its Namespace was not given")
		}
		namespace = requestrules.NamespaceObject(ns.Name, ns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestrules.EvalTimeout)
	defer cancel()
	callerVars := caller.vars()
	remaining := uint64(requestrules.RuntimeCostBudget)
	for _, p := range c.params {
		if p.rule == nil {
			continue
		}
		vars := map[string]any{ValueVar: params[p.name], CallerVar: callerVars}
		if namespace != nil {
			vars[NamespaceVar] = namespace
		}
		ok, cost, err := p.rule.Eval(ctx, vars)
		if err == nil && cost > remaining {
			err = fmt.Errorf("the validations together exceed the cost budget %d", requestrules.RuntimeCostBudget)
		}
		if err != nil {
			return invalid(p.name, "parameter %s: %s (its validation could not be evaluated: %v)", truncate(p.name), p.text, err)
		}
		remaining -= cost
		if !ok {
			return invalid(p.name, "parameter %s: %s", truncate(p.name), p.text)
		}
	}
	return nil
}

// set writes value at p's path in block, a copy of the template's.
func (p *param) set(block *v1alpha1.VendorParams, value string) error {
	v := reflect.ValueOf(block).Elem()
	for _, s := range p.steps {
		v = alloc(v)
		switch s.kind {
		case stepField:
			v = v.Field(s.field)
		case stepIndex:
			if s.index >= v.Len() {
				return fmt.Errorf("the list holds %d items", v.Len())
			}
			v = v.Index(s.index)
		case stepMapKey:
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			v.SetMapIndex(reflect.ValueOf(s.key).Convert(v.Type().Key()), reflect.ValueOf(value).Convert(v.Type().Elem()))
			return nil
		case stepJSON:
			j := v.Addr().Interface().(*apiextensionsv1.JSON)
			raw, err := setJSON(j.Raw, s.json, value)
			if err != nil {
				return err
			}
			j.Raw = raw
			return nil
		}
	}
	v = alloc(v)
	v.SetString(value)
	return nil
}

// alloc follows pointers, allocating the nil ones, so a path through an
// optional block the template leaves unset creates it.
func alloc(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	return v
}

// setJSON returns raw with value, a JSON string, at steps below it. Keys on
// the way that do not exist become objects; the rest of the value is kept
// as written, numbers included.
func setJSON(raw []byte, steps []jsonStep, value string) ([]byte, error) {
	doc, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	if doc, err = setIn(doc, steps, value); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// setIn returns doc with value at steps below it.
func setIn(doc any, steps []jsonStep, value string) (any, error) {
	if len(steps) == 0 {
		return value, nil
	}
	s := steps[0]
	if s.index >= 0 {
		list, ok := doc.([]any)
		if !ok || s.index >= len(list) {
			return nil, fmt.Errorf("[%d] is not in the value", s.index)
		}
		inner, err := setIn(list[s.index], steps[1:], value)
		if err != nil {
			return nil, err
		}
		list[s.index] = inner
		return list, nil
	}
	obj, ok := doc.(map[string]any)
	if doc == nil {
		obj, ok = map[string]any{}, true
	}
	if !ok {
		return nil, errors.New("the value is not an object")
	}
	inner, err := setIn(obj[s.key], steps[1:], value)
	if err != nil {
		return nil, err
	}
	obj[s.key] = inner
	return obj, nil
}

// ToRequest is the EmbedTokenRequest a call on tmpl with the filled vendor
// block amounts to: the object the provider's requestValidations see as
// `object`, so a template cannot get what a request could not. It carries
// the template's name, namespace, labels and annotations, its provider,
// lifetime and the filled block.
func ToRequest(tmpl *v1alpha1.EmbedTokenTemplate, filled *v1alpha1.VendorParams) *v1alpha1.EmbedTokenRequest {
	etr := &v1alpha1.EmbedTokenRequest{}
	etr.APIVersion, etr.Kind = v1alpha1.GroupVersion.String(), "EmbedTokenRequest"
	etr.Name, etr.Namespace = tmpl.Name, tmpl.Namespace
	etr.Labels, etr.Annotations = maps.Clone(tmpl.Labels), maps.Clone(tmpl.Annotations)
	etr.UID, etr.Generation = tmpl.UID, tmpl.Generation
	etr.Spec.ProviderRef = tmpl.Spec.ProviderRef
	etr.Spec.Lifetime = tmpl.Spec.Lifetime
	if filled != nil {
		etr.Spec.VendorParams = *filled
	}
	return etr
}
