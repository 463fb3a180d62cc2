package controller_test

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// Two instances split the requests by the shard label, as the Helm chart
// deploys them: the default shard (`!embedtokens.io/shard`) and shard b.
// The suite's unsharded manager is stopped meanwhile, so every vendor call
// counted here is one of the shards'.
var _ = Describe("Sharding (--watch-label-selector)", func() {
	It("issues each request once, in its own shard, moves relabelled requests without a new token, and survives the other shard's loss", func() {
		ctx := context.Background()
		f := newFixtureWithProvider(ctx)
		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		DeferCleanup(func() { deleteFixtures(ctx, f) })

		inShard := func(name, shard string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
			etr := f.request(name, lifetime)
			if shard != "" {
				etr.Labels = map[string]string{v1alpha1.ShardLabel: shard}
			}
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			return etr
		}
		f.grantOnlyTo("a-short", 6*time.Second)
		f.grantOnlyTo("b-short", 6*time.Second)
		defaults := []*v1alpha1.EmbedTokenRequest{inShard("a-1", "", time.Hour), inShard("a-2", "", time.Hour), inShard("a-short", "", time.Minute)}
		bs := []*v1alpha1.EmbedTokenRequest{inShard("b-1", "b", time.Hour), inShard("b-2", "b", time.Hour), inShard("b-short", "b", time.Minute)}

		By("shard b alone serving only its own requests")
		stopB := startShard("embedtokens.io/shard=b")
		DeferCleanup(stopB)
		for _, etr := range bs {
			waitForToken(ctx, etr, "")
			Eventually(secretOf(ctx, etr)).Should(HaveField("Labels", HaveKeyWithValue(v1alpha1.ShardLabel, "b")))
		}
		// Changed before shard b's own are: shard b would have seen them.
		for _, etr := range defaults {
			patchObject(ctx, etr.DeepCopy(), func(cur *v1alpha1.EmbedTokenRequest) {
				cur.Annotations = map[string]string{barrierAnnotation: "outside"}
			})
		}
		for _, etr := range bs {
			settle(ctx, etr)
		}
		for _, etr := range defaults {
			Expect(barriers.reconciled(client.ObjectKeyFromObject(etr))).To(BeFalse(), "shard b does not reconcile %s", etr.Name)
			Expect(f.callsFor(etr.Name)()).To(BeZero())
			Expect(get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.Conditions).To(BeEmpty())
		}

		By("the default shard serving the unlabelled ones")
		stopDefault := startShard("!embedtokens.io/shard")
		DeferCleanup(stopDefault)
		for _, etr := range defaults {
			waitForToken(ctx, etr, "")
			Expect(secretOf(ctx, etr)(Default).Labels).NotTo(HaveKey(v1alpha1.ShardLabel))
		}
		for _, etr := range []*v1alpha1.EmbedTokenRequest{defaults[0], defaults[1], bs[0], bs[1]} {
			settle(ctx, etr)
			Expect(f.callsFor(etr.Name)()).To(Equal(1), "%s is issued once, by one shard", etr.Name)
		}

		By("relabelling a-1 into shard b and b-1 out of it, keeping their tokens")
		moved := map[*v1alpha1.EmbedTokenRequest]string{defaults[0]: "b", bs[0]: ""}
		digests := map[string]string{}
		for etr, to := range moved {
			digests[etr.Name] = harness.TokenOf(secretOf(ctx, etr)(Default)).Digest()
			patchObject(ctx, etr.DeepCopy(), func(cur *v1alpha1.EmbedTokenRequest) {
				if to == "" {
					delete(cur.Labels, v1alpha1.ShardLabel)
				} else {
					cur.Labels = map[string]string{v1alpha1.ShardLabel: to}
				}
			})
		}
		Eventually(func(g Gomega) {
			g.Expect(secretOf(ctx, defaults[0])(g).Labels).To(HaveKeyWithValue(v1alpha1.ShardLabel, "b"))
			g.Expect(secretOf(ctx, bs[0])(g).Labels).NotTo(HaveKey(v1alpha1.ShardLabel))
		}).Should(Succeed(), "the shard a request moved to adopts its Secret")
		for etr := range moved {
			settle(ctx, etr)
			Expect(harness.TokenOf(secretOf(ctx, etr)(Default)).Digest()).To(Equal(digests[etr.Name]))
			Expect(f.callsFor(etr.Name)()).To(Equal(1), "moving %s costs no vendor call", etr.Name)
		}

		By("stopping shard b: the default shard keeps renewing, nobody renews b-short")
		shortA, shortB := defaults[2], bs[2]
		stopB()
		bCalls, aCalls := f.callsFor(shortB.Name)(), f.callsFor(shortA.Name)()
		Eventually(f.callsFor(shortA.Name), 40*time.Second).Should(BeNumerically(">=", aCalls+2),
			"a-short is renewed twice while shard b is down")
		Expect(f.callsFor(shortB.Name)()).To(Equal(bCalls), "no other shard takes over b-short")
	})
})

// startShard runs a manager serving the requests selector matches, with a
// cache built as cmd/main.go builds it from --watch-label-selector, and
// returns a function that stops it (once, however often it is called).
func startShard(selector string) func() {
	sel, err := labels.Parse(selector)
	Expect(err).NotTo(HaveOccurred())
	opts := operatorOptions()
	opts.CredentialCheckInterval, opts.WatchLabelSelector = time.Second, sel
	stop := startOperator(cfg, logr.Logger{}, 0, opts)
	var once sync.Once
	return func() { once.Do(stop) }
}
