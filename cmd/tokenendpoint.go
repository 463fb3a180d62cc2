package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/endpointserver"
	"github.com/embedtokens/embed-token-operator/internal/eventwriter"
	"github.com/embedtokens/embed-token-operator/internal/ondemand"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
	"github.com/embedtokens/embed-token-operator/internal/tokenendpoint"
)

// serviceAccountNamespaceFile is where a pod finds its own namespace.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// certLoadTimeout bounds how long a replica waits for its first serving
// certificate before the manager gives up with an error.
const certLoadTimeout = 2 * time.Minute

// tokenEndpointFlags are the token endpoint's listener and TLS settings.
type tokenEndpointFlags struct {
	bindAddr, serviceName, namespace, certSecret string
	manageCert, reusePort                        bool
	// cacheSize bounds the tokens the endpoint keeps for identical calls.
	cacheSize int
	// logParameterValues puts parameter values, which name end users, in
	// the audit log line beside their digest.
	logParameterValues bool
}

// bind registers the flags on fs.
func (f *tokenEndpointFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.bindAddr, "token-endpoint-bind-address", ":8443",
		"Address the token endpoint serves HTTPS on, on every replica; 0 turns it off.")
	fs.StringVar(&f.serviceName, "token-endpoint-service-name", "embed-token-operator-token-endpoint",
		"Name of the token endpoint's Service, whose DNS names the operator's serving certificate carries.")
	fs.StringVar(&f.namespace, "token-endpoint-namespace", "",
		"Namespace of the token endpoint's Service and TLS Secret; defaults to POD_NAMESPACE, then to the pod's own "+
			"namespace (required out of cluster).")
	fs.StringVar(&f.certSecret, "token-endpoint-cert-secret", "",
		"Secret holding the token endpoint's tls.crt, tls.key and ca.crt; defaults to <service name>-tls.")
	fs.BoolVar(&f.manageCert, "token-endpoint-manage-cert", true,
		"Create and rotate the token endpoint's CA and serving certificate in --token-endpoint-cert-secret. "+
			"False reads a Secret someone else keeps current, such as a cert-manager Certificate's.")
	fs.BoolVar(&f.reusePort, "token-endpoint-reuse-port", false,
		"Bind the token endpoint with SO_REUSEPORT, for replicas that share one network namespace (pods on the "+
			"host network): they all listen on one address, the kernel spreads new connections across them, and "+
			"a stopped replica's share goes to the others. Replicas must run as the same user.")
	fs.IntVar(&f.cacheSize, "token-endpoint-cache-size", tokenendpoint.DefaultCacheMaxEntries,
		"Most tokens the endpoint keeps in memory for identical calls (least recently used go first); never written anywhere.")
	fs.BoolVar(&f.logParameterValues, "token-endpoint-log-parameter-values", false,
		"Log each issued token's parameter values (which name end users) in the audit line, not only their digest.")
}

// enabled reports whether the endpoint is served.
func (f *tokenEndpointFlags) enabled() bool { return f.bindAddr != "0" && f.bindAddr != "" }

// resolve fills the defaults and validates the flags.
func (f *tokenEndpointFlags) resolve() error {
	if errs := validation.IsDNS1035Label(f.serviceName); len(errs) > 0 {
		return fmt.Errorf("invalid --token-endpoint-service-name %q: %s", f.serviceName, strings.Join(errs, "; "))
	}
	if f.certSecret == "" {
		f.certSecret = f.serviceName + "-tls"
	}
	if errs := validation.IsDNS1123Subdomain(f.certSecret); len(errs) > 0 {
		return fmt.Errorf("invalid --token-endpoint-cert-secret %q: %s", f.certSecret, strings.Join(errs, "; "))
	}
	if f.namespace == "" {
		f.namespace = os.Getenv("POD_NAMESPACE")
	}
	if f.namespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
			f.namespace = strings.TrimSpace(string(b))
		}
	}
	if f.namespace == "" {
		return errors.New("the token endpoint needs the operator's namespace out of cluster: " +
			"set --token-endpoint-namespace, or --token-endpoint-bind-address=0 to turn the endpoint off")
	}
	if errs := validation.IsDNS1123Label(f.namespace); len(errs) > 0 {
		return fmt.Errorf("invalid token endpoint namespace %q: %s", f.namespace, strings.Join(errs, "; "))
	}
	return nil
}

// addCacheOptions lets the manager's cache hold the published CA bundles
// and no other ConfigMap.
func addCacheOptions(o *cache.Options) {
	obj, by := servingcert.CacheByObject()
	o.ByObject[obj] = by
}

// setupTokenEndpoint adds the endpoint's Runnables to mgr: on every replica
// the certificate rotator (unless the certificate is managed elsewhere),
// the Secret watch and the HTTPS listener; on the leader the CA bundle
// publisher.
func setupTokenEndpoint(mgr ctrl.Manager, f tokenEndpointFlags, http2 bool, handler http.Handler) error {
	if f.manageCert {
		direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), HTTPClient: mgr.GetHTTPClient()})
		if err != nil {
			return fmt.Errorf("token endpoint client: %w", err)
		}
		rotator, err := servingcert.NewRotator(direct, servingcert.RotatorOptions{
			Namespace: f.namespace, SecretName: f.certSecret,
			DNSNames: servingcert.DNSNames(f.serviceName, f.namespace), IPs: servingcert.IPAddresses(),
		})
		if err != nil {
			return err
		}
		if err := mgr.Add(rotator); err != nil {
			return fmt.Errorf("add certificate rotator: %w", err)
		}
	}
	clientset, err := kubernetes.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return fmt.Errorf("token endpoint clientset: %w", err)
	}
	certs := servingcert.NewSource(clientset, f.namespace, f.certSecret)
	if err := mgr.Add(certs); err != nil {
		return fmt.Errorf("add certificate source: %w", err)
	}
	recorder, err := eventwriter.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), mgr.GetScheme(),
		"embed-token-operator", eventwriter.Options{QueueLength: 100, Writers: 1, Log: mgr.GetLogger().WithName("events")})
	if err != nil {
		return fmt.Errorf("token endpoint events: %w", err)
	}
	if err := mgr.Add(recorder); err != nil {
		return fmt.Errorf("add token endpoint events: %w", err)
	}
	if err := servingcert.SetupPublisher(mgr, certs, recorder); err != nil {
		return fmt.Errorf("set up CA bundle publisher: %w", err)
	}
	srv := endpointserver.New(f.bindAddr, handler, certs)
	srv.EnableHTTP2 = http2
	srv.ReusePort = f.reusePort
	srv.Ready = func(ctx context.Context) error { return certs.WaitForCertificate(ctx, certLoadTimeout) }
	if err := mgr.Add(srv); err != nil {
		return fmt.Errorf("add token endpoint server: %w", err)
	}
	return nil
}

// endpointAddr is the endpoint's listen address for ownPorts, "0" when it
// is off.
func endpointAddr(f tokenEndpointFlags) string {
	if !f.enabled() {
		return "0"
	}
	return f.bindAddr
}

// sharesPort reports whether addr's port is also one of others', which
// would fail the second listener at start.
func sharesPort(addr string, others ...string) bool {
	mine := ownPorts(addr)
	for _, p := range ownPorts(others...) {
		if len(mine) == 1 && mine[0] == p {
			return true
		}
	}
	return false
}

// tokenHandler builds the endpoint's handler over the manager's one
// issuance path, and points the template informer's changes at its cache.
func tokenHandler(ctx context.Context, mgr ctrl.Manager, f tokenEndpointFlags, opts controller.Options) (http.Handler, error) {
	ep, err := tokenendpoint.New(tokenendpoint.Options{
		Templates: mgr.GetCache(),
		Minter: &ondemand.Minter{Issuer: opts.Issuer, Templates: opts.Templates, Providers: opts.Providers,
			APIReader: mgr.GetAPIReader()},
		Client:             mgr.GetClient(),
		CacheMaxEntries:    f.cacheSize,
		LogParameterValues: f.logParameterValues,
		Logger:             mgr.GetLogger().WithName("token-endpoint"),
	})
	if err != nil {
		return nil, fmt.Errorf("token endpoint: %w", err)
	}
	informer, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.EmbedTokenTemplate{})
	if err != nil {
		return nil, fmt.Errorf("template informer: %w", err)
	}
	if _, err := informer.AddEventHandler(ep.TemplateEventHandler()); err != nil {
		return nil, fmt.Errorf("template informer handler: %w", err)
	}
	// Every replica answers, but the controllers whose watches start the
	// provider informers run on the leader only, and the cache refuses a
	// read of a type without an informer (ReaderFailOnMissingInformer).
	providers := []client.Object{&v1alpha1.EmbedProvider{}}
	if len(opts.WatchNamespaces) == 0 {
		providers = append(providers, &v1alpha1.ClusterEmbedProvider{})
	}
	for _, obj := range providers {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("%T informer: %w", obj, err)
		}
	}
	return ep, nil
}
