// Package requestpolicy compiles and evaluates a provider's
// spec.requestValidations: CEL rules, written as in a Kubernetes
// ValidatingAdmissionPolicy, that decide what a namespace may ask for with a
// shared credential. Rules are compiled once per provider generation, their
// worst-case cost is bounded at compile time and their actual cost at
// evaluation, so a hostile or careless rule cannot stall the operator.
package requestpolicy

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
	return cel.NewEnv(
		cel.Variable(ObjectVar, cel.DynType),
		cel.Variable(NamespaceVar, cel.DynType),
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
})

// rule is one compiled requestValidations entry.
type rule struct {
	index      int
	expression string
	message    string
	program    cel.Program
}

// Policy is a provider's compiled requestValidations. It is immutable and
// safe for concurrent use.
type Policy struct {
	rules []rule
	// usesNamespace is true when a rule reads namespaceObject.
	usesNamespace bool
	// perCall and budget are the runtime limits; tests lower them.
	perCall, budget uint64
}

// UsesNamespace reports whether a rule reads namespaceObject, so callers
// read the Namespace (an uncached API call) only when a rule needs it.
func (p *Policy) UsesNamespace() bool { return p != nil && p.usesNamespace }

// Empty reports whether the policy has no rules, so callers can skip the
// inputs (an uncached Namespace read) it would need.
func (p *Policy) Empty() bool { return p == nil || len(p.rules) == 0 }

// Compile checks and compiles every rule: it must parse, type-check,
// return a bool and stay within StaticCostLimit. The error names each bad
// rule by its index, for the provider's Ready condition.
func Compile(validations []v1alpha1.RequestValidation) (*Policy, error) {
	return compile(validations, StaticCostLimit, PerCallCostLimit, RuntimeCostBudget)
}

func compile(validations []v1alpha1.RequestValidation, staticLimit, perCall, budget uint64) (*Policy, error) {
	env, err := baseEnv()
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	p := &Policy{perCall: perCall, budget: budget}
	var errs []error
	for i, v := range validations {
		prog, usesNamespace, err := compileRule(env, v.Expression, staticLimit, perCall)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.requestValidations[%d].expression: %w", i, err))
			continue
		}
		p.usesNamespace = p.usesNamespace || usesNamespace
		p.rules = append(p.rules, rule{index: i, expression: v.Expression, message: v.Message, program: prog})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// compileRule compiles one expression and reports whether it reads
// namespaceObject.
func compileRule(env *cel.Env, expression string, staticLimit, perCall uint64) (cel.Program, bool, error) {
	ast, issues := env.Compile(expression)
	if issues != nil && issues.Err() != nil {
		return nil, false, fmt.Errorf("compilation failed: %s", strings.TrimSpace(issues.String()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, false, fmt.Errorf("must evaluate to bool but got %s", ast.OutputType())
	}
	est, err := env.EstimateCost(ast, &library.CostEstimator{SizeEstimator: boundedSizes{}})
	if err != nil {
		return nil, false, fmt.Errorf("estimating cost: %w", err)
	}
	if est.Max > staticLimit {
		return nil, false, fmt.Errorf("estimated worst-case cost %d exceeds the limit %d: bound the lists and strings it walks, "+
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
		return nil, false, fmt.Errorf("program instantiation failed: %w", err)
	}
	usesNamespace := false
	for _, ref := range ast.NativeRep().ReferenceMap() {
		usesNamespace = usesNamespace || ref.Name == NamespaceVar
	}
	return prog, usesNamespace, nil
}

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
