package kubectlplugin

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
)

// Where the plugin finds the endpoint and its CA when no flag says.
const (
	// CAConfigMapName is the ConfigMap the operator publishes its CA in, in
	// every namespace that has a template.
	CAConfigMapName = "embedtokens-ca.crt"
	// CAConfigMapKey is the key of CAConfigMapName holding the PEM CA.
	CAConfigMapKey = "ca.crt"
	// DefaultEndpointService is the Service in front of the token endpoint
	// as config/default names it.
	DefaultEndpointService = "embed-token-operator-token-endpoint"
	// DefaultOperatorNamespace is where config/default installs the operator.
	DefaultOperatorNamespace = "embed-token-operator-system"
	// endpointPort is the Service port of the token endpoint.
	endpointPort = 8443
	// mintedTokenSeconds is the lifetime of the token the plugin mints for a
	// ServiceAccount identity: the least TokenRequest grants.
	mintedTokenSeconds = 600
	// maxParams bounds the --param flags, as the endpoint refuses more
	// than 32 parameters.
	maxParams = 32
)

// tokenFlags are the token subcommand's flags.
type tokenFlags struct {
	params            []string
	minValidFor       time.Duration
	endpoint          string
	caFile            string
	output            string
	service           string
	operatorNamespace string
	callerTokenFile   string
	timeout           time.Duration
}

func (o *options) tokenCommand() *cobra.Command {
	f := &tokenFlags{}
	cmd := &cobra.Command{
		Use:   "token NAMESPACE/TEMPLATE --param k=v [--param k=v ...]",
		Short: "Get a token from an EmbedTokenTemplate through the operator's token endpoint",
		Long: "Call the token endpoint as the application's backend does and print its answer.\n\n" +
			"The endpoint accepts only ServiceAccount tokens of audience " + v1alpha1.TokenEndpointAudience + ". When your\n" +
			"kubeconfig identity is a ServiceAccount, the plugin mints such a token for it (TokenRequest);\n" +
			"a bearer token that already carries the audience is sent as it is; --caller-token-file sends\n" +
			"the token in that file. Other identities (client certificates, exec plugins, users) are refused.\n\n" +
			"Without --endpoint the plugin port-forwards to a pod behind the endpoint's Service through\n" +
			"the API server; without --ca-file it trusts the CA in the namespace's " + CAConfigMapName + " ConfigMap.",
		Example: "  kubectl embedtoken token shop/per-user-qlik --param user=alice\n" +
			"  kubectl embedtoken token shop/per-user-qlik --param user=alice --min-valid-for 5m -o token",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.runToken(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.params, "param", nil, "A template parameter as name=value; repeat for each")
	fl.DurationVar(&f.minValidFor, "min-valid-for", 0, "Accept a shared token only with at least this long left (e.g. 5m)")
	fl.StringVar(&f.endpoint, "endpoint", "", "The endpoint's base URL (https://...:8443); port-forwards to the Service when empty")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM CA the endpoint's certificate must chain to; the namespace's "+CAConfigMapName+" ConfigMap when empty")
	fl.StringVarP(&f.output, "output", "o", "json", "json (the endpoint's answer) or token (the token only)")
	fl.StringVar(&f.service, "service", DefaultEndpointService, "The token endpoint's Service, for port-forwarding")
	fl.StringVar(&f.operatorNamespace, "operator-namespace", DefaultOperatorNamespace, "The namespace of the operator and its Service")
	fl.StringVar(&f.callerTokenFile, "caller-token-file", "", "Send the ServiceAccount token (audience "+v1alpha1.TokenEndpointAudience+") in this file instead of the kubeconfig's identity")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "Give up after this long")
	return cmd
}

// runToken is the token subcommand.
func (o *options) runToken(ctx context.Context, ref string, f *tokenFlags) error {
	if f.output != "json" && f.output != "token" {
		return fmt.Errorf("--output must be json or token, not %q", f.output)
	}
	params, err := ParseParams(f.params)
	if err != nil {
		return err
	}
	cfg, err := o.kubeconfig.ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	defaultNS, _, err := o.kubeconfig.Namespace()
	if err != nil {
		return fmt.Errorf("reading the namespace: %w", err)
	}
	namespace, template, err := ParseTemplateRef(ref, defaultNS)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	opts := tokenclient.Options{TokenFile: f.callerTokenFile, CAFile: f.caFile, MinValidFor: f.minValidFor}
	if f.callerTokenFile == "" {
		caller, err := CallerToken(ctx, cfg, cs)
		if err != nil {
			return err
		}
		opts.TokenSource = func(context.Context) (string, error) { return caller, nil }
	}
	if f.caFile == "" {
		if opts.CAData, err = readCA(ctx, cs, namespace); err != nil {
			return unauthorizedHint(err)
		}
	}
	endpoint, serverName := f.endpoint, ""
	if endpoint == "" {
		local, stop, err := forwardToEndpoint(ctx, cfg, cs, f.operatorNamespace, f.service, o.streams.ErrOut)
		if err != nil {
			return unauthorizedHint(err)
		}
		defer stop()
		endpoint = fmt.Sprintf("https://127.0.0.1:%d", local)
		serverName = fmt.Sprintf("%s.%s.svc", f.service, f.operatorNamespace)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	opts.Endpoint, opts.HTTPClient = endpoint, &http.Client{Transport: transport}
	c, err := tokenclient.New(opts)
	if err != nil {
		return err
	}
	t, err := c.Fetch(ctx, namespace, template, params)
	if err != nil {
		return fmt.Errorf("EmbedTokenTemplate %s/%s: %w", namespace, template, err)
	}
	return printToken(o.streams.Out, t, f.output)
}

// unauthorizedHint explains an API server's 401 for the case the plugin
// can tell apart: a kubeconfig token minted for embedtokens.io only, which
// the endpoint takes and the API server refuses.
func unauthorizedHint(err error) error {
	if !apierrors.IsUnauthorized(err) {
		return err
	}
	return fmt.Errorf("%w (the API server refused your kubeconfig's credential; a token of audience %s alone "+
		"is for the endpoint, not the API server: pass --endpoint and --ca-file to reach the endpoint without the API server)",
		err, v1alpha1.TokenEndpointAudience)
}

// printToken writes the endpoint's answer as JSON, or the token alone.
func printToken(w io.Writer, t tokenclient.Token, output string) error {
	if output == "token" {
		_, err := fmt.Fprintln(w, t.Value)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Token       string `json:"token"`
		ExpiresAt   string `json:"expiresAt"`
		TokenDigest string `json:"tokenDigest"`
		Cached      bool   `json:"cached"`
	}{t.Value, t.ExpiresAt.UTC().Format(time.RFC3339), t.Digest, t.Cached})
}

// ParseTemplateRef splits NAMESPACE/TEMPLATE; a bare TEMPLATE is in
// defaultNamespace.
func ParseTemplateRef(ref, defaultNamespace string) (namespace, template string, err error) {
	namespace, template, found := strings.Cut(ref, "/")
	if !found {
		namespace, template = defaultNamespace, ref
	}
	if namespace == "" || template == "" || strings.Contains(template, "/") {
		return "", "", fmt.Errorf("want NAMESPACE/TEMPLATE, not %q", ref)
	}
	return namespace, template, nil
}

// ParseParams reads --param name=value flags; a name given twice is an
// error rather than a silent override.
func ParseParams(flags []string) (map[string]string, error) {
	if len(flags) > maxParams {
		return nil, fmt.Errorf("at most %d --param flags, not %d", maxParams, len(flags))
	}
	params := make(map[string]string, len(flags))
	for _, f := range flags {
		name, value, found := strings.Cut(f, "=")
		if !found || name == "" {
			return nil, fmt.Errorf("--param wants name=value, not %q", f)
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("--param %s given twice", name)
		}
		params[name] = value
	}
	return params, nil
}

// CallerToken returns the bearer token to present to the endpoint for the
// kubeconfig's identity: its bearer token when it
// is a JWT whose audience includes embedtokens.io; a token minted with
// TokenRequest when the kubeconfig identity is a ServiceAccount. Any other
// identity gets an error saying why and what to do instead.
func CallerToken(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface) (string, error) {
	bearer, err := kubeconfigBearer(cfg)
	if err != nil {
		return "", err
	}
	if bearer != "" && HasAudience(bearer, v1alpha1.TokenEndpointAudience) {
		return bearer, nil
	}
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("asking the API server who your kubeconfig identity is (SelfSubjectReview): %w", err)
	}
	user := review.Status.UserInfo.Username
	ns, name, err := serviceaccount.SplitUsername(user)
	if err != nil {
		return "", notServiceAccount(user, credentialKind(cfg, bearer))
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         []string{v1alpha1.TokenEndpointAudience},
			ExpirationSeconds: ptr.To[int64](mintedTokenSeconds),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("minting a token of audience %s for ServiceAccount %s/%s (it needs create on serviceaccounts/token for itself): %w",
			v1alpha1.TokenEndpointAudience, ns, name, err)
	}
	return tr.Status.Token, nil
}

// notServiceAccount explains why an identity cannot call the endpoint.
func notServiceAccount(user, credential string) error {
	return fmt.Errorf("your kubeconfig identity %q (%s) is not a ServiceAccount, and the token endpoint accepts only "+
		"ServiceAccount tokens of audience %s (it authenticates callers with TokenReview, as a pod's projected token is checked); "+
		"run this from a pod with a projected token, use a kubeconfig whose identity is a ServiceAccount, or pass one with "+
		"--caller-token-file after `kubectl create token SERVICEACCOUNT -n NAMESPACE --audience %s > FILE`",
		user, credential, v1alpha1.TokenEndpointAudience, v1alpha1.TokenEndpointAudience)
}

// credentialKind names the kind of credential the kubeconfig presents.
func credentialKind(cfg *rest.Config, bearer string) string {
	switch {
	case bearer != "":
		return "a bearer token that is not a ServiceAccount's"
	case cfg.ExecProvider != nil:
		return "an exec credential plugin"
	case cfg.AuthProvider != nil:
		return "an auth provider plugin"
	case len(cfg.CertData) > 0 || cfg.CertFile != "":
		return "a client certificate"
	case cfg.Username != "":
		return "a username and password"
	default:
		return "no credential"
	}
}

// kubeconfigBearer returns the kubeconfig's static bearer token, if any.
func kubeconfigBearer(cfg *rest.Config) (string, error) {
	if cfg.BearerToken != "" {
		return cfg.BearerToken, nil
	}
	if cfg.BearerTokenFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(cfg.BearerTokenFile)
	if err != nil {
		return "", fmt.Errorf("reading the kubeconfig's token file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// HasAudience reports whether token is a JWT whose aud claim (a string or
// a list) includes audience. It does not verify the token: the endpoint
// does, with TokenReview.
func HasAudience(token, audience string) bool {
	_, claims, ok := DecodeJWT(token)
	if !ok {
		return false
	}
	switch aud := claims["aud"].(type) {
	case string:
		return aud == audience
	case []any:
		for _, a := range aud {
			if a == audience {
				return true
			}
		}
	}
	return false
}

// readCA returns the PEM CA in the namespace's CAConfigMapName ConfigMap.
func readCA(ctx context.Context, cs kubernetes.Interface, namespace string) ([]byte, error) {
	cm, err := cs.CoreV1().ConfigMaps(namespace).Get(ctx, CAConfigMapName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the endpoint's CA from ConfigMap %s/%s (the operator publishes it in namespaces with a template; or pass --ca-file): %w",
			namespace, CAConfigMapName, err)
	}
	ca := cm.Data[CAConfigMapKey]
	if ca == "" {
		return nil, fmt.Errorf("ConfigMap %s/%s has no %s", namespace, CAConfigMapName, CAConfigMapKey)
	}
	return []byte(ca), nil
}

// EndpointPod picks a ready pod behind the Service namespace/service and
// the pod port its endpoint port maps to, from the Service's
// EndpointSlices.
func EndpointPod(ctx context.Context, cs kubernetes.Interface, namespace, service string) (pod string, port int32, err error) {
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("reading the token endpoint's Service %s/%s (set --service and --operator-namespace, or --endpoint): %w", namespace, service, err)
	}
	var svcPort *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == endpointPort || len(svc.Spec.Ports) == 1 {
			svcPort = &svc.Spec.Ports[i]
			break
		}
	}
	if svcPort == nil {
		return "", 0, fmt.Errorf("the Service %s/%s has no port %d", namespace, service, endpointPort)
	}
	slices, err := cs.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return "", 0, fmt.Errorf("listing the endpoints of Service %s/%s: %w", namespace, service, err)
	}
	for _, s := range slices.Items {
		var target *int32
		for _, p := range s.Ports {
			if ptr.Deref(p.Name, "") == svcPort.Name && p.Port != nil {
				target = p.Port
			}
		}
		if target == nil {
			continue
		}
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, false) && ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				return ep.TargetRef.Name, *target, nil
			}
		}
	}
	return "", 0, fmt.Errorf("no ready pod serves the Service %s/%s; is the operator running with --token-endpoint-bind-address set?", namespace, service)
}

// fallBackToSPDY reports whether the WebSocket port-forward failed in a way
// the SPDY one may not: the upgrade was refused, or an HTTPS proxy is in the
// way. client-go's WebSocket dialer reports a refused upgrade as
// k8s.io/streaming's UpgradeFailureError.
func fallBackToSPDY(err error) bool {
	return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
}

// forwardToEndpoint port-forwards a local port to a ready pod behind the
// endpoint's Service, through the API server, and returns the local port
// and a function that stops forwarding.
func forwardToEndpoint(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, namespace, service string, errOut io.Writer) (uint16, func(), error) {
	pod, port, err := EndpointPod(ctx, cs, namespace, service)
	if err != nil {
		return 0, nil, err
	}
	url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return 0, nil, fmt.Errorf("preparing the port-forward: %w", err)
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, url)
	if tunneling, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg); err == nil {
		// As kubectl port-forward: WebSockets first, SPDY where the API
		// server or a proxy refuses the upgrade.
		dialer = portforward.NewFallbackDialerForStreaming(tunneling, dialer, fallBackToSPDY)
	}
	fwCtx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreamingWithContext(fwCtx, dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, ready, io.Discard, errOut)
	if err != nil {
		stop()
		return 0, nil, fmt.Errorf("preparing the port-forward to pod %s/%s: %w", namespace, pod, err)
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		stop()
		return 0, nil, fmt.Errorf("port-forwarding to pod %s/%s: %w", namespace, pod, err)
	case <-ctx.Done():
		stop()
		return 0, nil, fmt.Errorf("port-forwarding to pod %s/%s: %w", namespace, pod, ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil {
		stop()
		return 0, nil, fmt.Errorf("reading the forwarded port: %w", err)
	}
	if len(ports) != 1 {
		stop()
		return 0, nil, errors.New("the port-forward reports no local port")
	}
	return ports[0].Local, stop, nil
}
