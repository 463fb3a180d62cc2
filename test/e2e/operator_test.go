//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// What the cluster shows about the operator itself: its pods and leader
// lease, its RBAC bindings and its requests in the audit log.

func operatorPods(ctx SpecContext) []corev1.Pod {
	pods := &corev1.PodList{}
	Expect(k8s.List(ctx, pods, client.InNamespace(operatorNamespace), client.MatchingLabels{operatorPodLabel: operatorPodLabelV})).To(Succeed())
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func leaseHolder(ctx SpecContext) string {
	l := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorLeaseName}, l); err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// rbacList holds every (Cluster)RoleBinding in the cluster.
type rbacList struct {
	crbs rbacv1.ClusterRoleBindingList
	rbs  rbacv1.RoleBindingList
}

func (l *rbacList) load(ctx SpecContext) error {
	if err := k8s.List(ctx, &l.crbs); err != nil {
		return err
	}
	return k8s.List(ctx, &l.rbs)
}

// boundTo names the bindings with the service account as a subject.
func (l *rbacList) boundTo(namespace, sa string) []string {
	is := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == sa {
				return true
			}
		}
		return false
	}
	var out []string
	for _, b := range l.crbs.Items {
		if is(b.Subjects) {
			out = append(out, "ClusterRoleBinding/"+b.Name)
		}
	}
	for _, b := range l.rbs.Items {
		if is(b.Subjects) {
			out = append(out, "RoleBinding/"+b.Namespace+"/"+b.Name)
		}
	}
	return out
}

// auditEvent is the part of an audit.k8s.io/v1 Event the suite reads.
type auditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource string `json:"resource"`
	} `json:"objectRef"`
}

// operatorSecretReads returns the list and watch requests on Secrets made by
// the operator's service account, from the local API server's audit log.
func operatorSecretReads() []auditEvent {
	f, err := os.Open(cfg.auditLog)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }() // read-only
	user := "system:serviceaccount:" + operatorNamespace + ":" + operatorSA
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.User.Username == user && e.ObjectRef != nil && e.ObjectRef.Resource == "secrets" && (e.Verb == "list" || e.Verb == "watch") {
			out = append(out, e)
		}
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	return out
}

// readsOnlyCertSecret says whether a list or watch of Secrets reads only
// the token endpoint's serving certificate, by name, in the operator's own
// namespace, as every replica watches it for rotations.
func readsOnlyCertSecret(u *url.URL) bool {
	sel, err := fields.ParseSelector(u.Query().Get("fieldSelector"))
	if err != nil || u.Path != "/api/v1/namespaces/"+operatorNamespace+"/secrets" {
		return false
	}
	name, ok := sel.RequiresExactMatch("metadata.name")
	return ok && name == operatorCertSecret
}

// requiresManagedBy says whether a selector only admits Secrets labelled as
// managed by the operator.
func requiresManagedBy(sel labels.Selector) bool {
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if r.Key() == v1alpha1.ManagedByLabel && (r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals) &&
			r.Values().Has(v1alpha1.ManagedByValue) {
			return true
		}
	}
	return false
}
