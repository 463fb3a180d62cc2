// Package requestrules compiles and evaluates a provider's
// spec.requestValidations: CEL rules, written as in a Kubernetes
// ValidatingAdmissionPolicy, that decide what a namespace may ask for with a
// shared credential. Rules are compiled once per provider generation, their
// worst-case cost is bounded at compile time and their actual cost at
// evaluation, so a hostile or careless rule cannot stall the operator.
package requestrules

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/library"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Variable names, as a ValidatingAdmissionPolicy names them.
const (
	// ObjectVar is the EmbedTokenRequest: apiVersion, kind, metadata (name,
	// namespace, labels, annotations) and spec.
	ObjectVar = "object"
	// NamespaceVar is the request's Namespace: apiVersion, kind and metadata
	// (name, labels, annotations).
	NamespaceVar = "namespaceObject"
)

// Cost bounds, the API server's own for CEL: a rule whose estimated
// worst-case cost (see maxInputSize) exceeds StaticCostLimit is rejected when
// compiled, as a CRD's x-kubernetes-validations rule is; one evaluation may
// cost at most PerCallCostLimit, and all rules of one request together
// RuntimeCostBudget.
// A unit of cost is roughly one cheap CEL operation; PerCallCostLimit is
// about a tenth of a second of CPU.
const (
	// StaticCostLimit bounds a rule's estimated worst-case cost, as the API
	// server's StaticEstimatedCostLimit bounds a CRD rule's.
	StaticCostLimit = 10_000_000
	// PerCallCostLimit bounds the actual cost of one rule's evaluation.
	PerCallCostLimit = celconfig.PerCallLimit
	// RuntimeCostBudget bounds the actual cost of all rules of one request.
	RuntimeCostBudget = celconfig.RuntimeCELCostBudget
)

// maxInputSize is the size the compile-time estimate assumes for any
// string, list or map a rule reads from the variables, which are untyped. It
// is far above what a request or Namespace normally holds, so a rule refused
// by StaticCostLimit would be costly on ordinary objects (typically a nested
// loop over request fields); a larger object is still bounded by the
// runtime limits.
const maxInputSize = uint64(4096)

// checkFrequency is how many comprehension iterations run between checks
// of the evaluation's deadline.
const checkFrequency = celconfig.CheckFrequency

// baseEnv is built once: building a CEL environment validates every
// declaration, which costs milliseconds.
var baseEnv = sync.OnceValues(func() (*cel.Env, error) {
	return NewEnv(cel.Variable(ObjectVar, cel.DynType), cel.Variable(NamespaceVar, cel.DynType))
})

// NewEnv builds a CEL environment with the libraries and options of
// requestValidations (those of the API server's CRD rules) and the given
// variable declarations, so every CEL rule the operator evaluates (a
// provider's requestValidations, a template parameter's validation) speaks
// the same language under the same bounds. Building one costs
// milliseconds: callers build theirs once.
func NewEnv(variables ...cel.EnvOption) (*cel.Env, error) {
	opts := append([]cel.EnvOption{}, variables...)
	opts = append(opts,
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.CostEstimatorOptions(checker.PresenceTestHasCost(false)),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
		),
		ext.Strings(ext.StringsVersion(2)),
		ext.Sets(),
		ext.Lists(ext.ListsVersion(3)),
		ext.TwoVarComprehensions(),
		library.URLs(),
		library.Regex(),
		library.Lists(library.ListsVersion(1)),
		library.IP(),
		library.CIDR(),
		library.Format(),
	)
	return cel.NewEnv(opts...)
}

// rule is one compiled requestValidations entry.
type rule struct {
	index      int
	expression string
	message    string
	program    *Rule
}

// RuleSet is a provider's compiled requestValidations. It is immutable and
// safe for concurrent use.
type RuleSet struct {
	rules []rule
	// usesNamespace is true when a rule reads namespaceObject.
	usesNamespace bool
	// perCall and budget are the runtime limits; tests lower them.
	perCall, budget uint64
}

// UsesNamespace reports whether a rule reads namespaceObject, so callers
// read the Namespace (an uncached API call) only when a rule needs it.
func (p *RuleSet) UsesNamespace() bool { return p != nil && p.usesNamespace }

// Empty reports whether the rules has no rules, so callers can skip the
// inputs (an uncached Namespace read) it would need.
func (p *RuleSet) Empty() bool { return p == nil || len(p.rules) == 0 }

// Compile checks and compiles every rule: it must parse, type-check,
// return a bool and stay within StaticCostLimit. The error names each bad
// rule by its index, for the provider's Ready condition.
func Compile(validations []v1alpha1.RequestValidation) (*RuleSet, error) {
	return compile(validations, StaticCostLimit, PerCallCostLimit, RuntimeCostBudget)
}

func compile(validations []v1alpha1.RequestValidation, staticLimit, perCall, budget uint64) (*RuleSet, error) {
	env, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	p := &RuleSet{perCall: perCall, budget: budget}
	var errs []error
	for i, v := range validations {
		prog, err := compileRule(env, v.Expression, staticLimit, perCall)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.requestValidations[%d].expression: %w", i, err))
			continue
		}
		p.usesNamespace = p.usesNamespace || prog.Reads(NamespaceVar)
		p.rules = append(p.rules, rule{index: i, expression: v.Expression, message: v.Message, program: prog})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Rule is one compiled CEL expression returning bool, bounded as a
// requestValidations rule is: its estimated worst-case cost stayed within
// StaticCostLimit when compiled, and one evaluation may cost at most
// PerCallCostLimit. It is immutable and safe for concurrent use.
type Rule struct {
	program cel.Program
	// reads are the variables the expression refers to.
	reads map[string]bool
}

// CompileRule compiles expression in env (built by NewEnv): it must parse,
// type-check, return a bool and stay within StaticCostLimit, so other
// packages bound their rules exactly as requestValidations are bounded.
func CompileRule(env *cel.Env, expression string) (*Rule, error) {
	return compileRule(env, expression, StaticCostLimit, PerCallCostLimit)
}

// compileRule is CompileRule with the limits as arguments; tests lower them.
func compileRule(env *cel.Env, expression string, staticLimit, perCall uint64) (*Rule, error) {
	ast, issues := env.Compile(expression)
	if issues != nil && issues.Err() != nil {
		return nil, fmt.Errorf("compilation failed: %s", strings.TrimSpace(issues.String()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("must evaluate to bool but got %s", ast.OutputType())
	}
	est, err := env.EstimateCost(ast, &library.CostEstimator{SizeEstimator: boundedSizes{}})
	if err != nil {
		return nil, fmt.Errorf("estimating cost: %w", err)
	}
	if est.Max > staticLimit {
		return nil, fmt.Errorf("estimated worst-case cost %d exceeds the limit %d: bound the lists and strings it walks, "+
			"or avoid nesting comprehensions over request fields", est.Max, staticLimit)
	}
	prog, err := env.Program(ast,
		cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost),
		cel.CostTracking(&library.CostEstimator{}),
		cel.CostTrackerOptions(interpreter.PresenceTestHasCost(false)),
		cel.CostLimit(perCall),
		cel.InterruptCheckFrequency(checkFrequency),
	)
	if err != nil {
		return nil, fmt.Errorf("program instantiation failed: %w", err)
	}
	r := &Rule{program: prog, reads: map[string]bool{}}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name != "" {
			r.reads[ref.Name] = true
		}
	}
	return r, nil
}

// Reads reports whether the expression refers to variable, so callers
// build an input (such as the Namespace, an uncached read) only when the
// rule needs it.
func (r *Rule) Reads(variable string) bool { return r != nil && r.reads[variable] }

// boundedSizes tells the cost estimator that no value read from the
// variables is larger than maxInputSize, as the API server assumes for
// fields without maxLength or maxItems.
type boundedSizes struct{}

// EstimateSize implements checker.CostEstimator.
func (boundedSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: maxInputSize}
}

// EstimateCallCost implements checker.CostEstimator; calls are costed by
// cel-go's defaults and library.CostEstimator.
func (boundedSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
