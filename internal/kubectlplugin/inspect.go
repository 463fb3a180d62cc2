package kubectlplugin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

func (o *options) inspectCommand() *cobra.Command {
	var showToken bool
	cmd := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a request's token: its expiry, and the decoded header and claims if it is a JWT",
		Long: "Read the request's Secret and describe the token it holds. A JWT's header and claims are\n" +
			"decoded and printed; its signature and the raw token never are, unless --show-token is given.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			etr := &v1alpha1.EmbedTokenRequest{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, etr); err != nil {
				return fmt.Errorf("reading EmbedTokenRequest %s/%s: %w", ns, args[0], err)
			}
			secret := &corev1.Secret{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: etr.TargetSecretName()}, secret); err != nil {
				return fmt.Errorf("reading Secret %s/%s: %w", ns, etr.TargetSecretName(), err)
			}
			return Inspect(o.streams.Out, etr, secret, o.now(), showToken)
		},
	}
	cmd.Flags().BoolVar(&showToken, "show-token", false, "Also print the raw token (it is a credential: mind your terminal's scrollback)")
	return cmd
}

// Inspect describes the token in secret. It prints the raw token only when
// showToken is set, and a JWT's signature never. It returns the first
// failed write's error.
func Inspect(w io.Writer, etr *v1alpha1.EmbedTokenRequest, secret *corev1.Secret, now time.Time, showToken bool) error {
	token := string(secret.Data[v1alpha1.SecretTokenKey])
	p := &printer{w: w}
	p.printf("Request:    %s/%s\n", etr.Namespace, etr.Name)
	p.printf("Secret:     %s/%s\n", secret.Namespace, secret.Name)
	if token == "" {
		p.printf("Token:      none (key %q is empty)\n", v1alpha1.SecretTokenKey)
		return p.err
	}
	p.printf("Digest:     %s (sha256, as status.tokenDigest)\n", provider.Digest(token))
	if t, err := time.Parse(time.RFC3339, string(secret.Data[v1alpha1.SecretExpiresAtKey])); err == nil {
		p.printf("Expires:    %s (%s)\n", t.UTC().Format(time.RFC3339), relative(t, now))
	}
	if etr.Status.RenewAt != nil {
		p.printf("Renews:     %s (%s)\n", etr.Status.RenewAt.UTC().Format(time.RFC3339), relative(etr.Status.RenewAt.Time, now))
	}
	header, claims, ok := DecodeJWT(token)
	if !ok {
		p.printf("Token:      opaque, %d bytes (not a JWT)\n", len(token))
	} else {
		p.printf("Token:      JWT, %d bytes (signature not shown)\n", len(token))
		p.printf("Header:\n%s\n", indentJSON(header))
		p.printf("Claims:\n%s\n", indentJSON(claims))
		printTimeClaims(p, claims, now)
	}
	if showToken {
		p.printf("Raw token:  %s\n", token)
	}
	return p.err
}

// DecodeJWT decodes a compact JWS's header and claims without verifying
// it: they describe the token and are not secret. ok is false for anything
// that is not a JWT (opaque tokens, JWE).
func DecodeJWT(token string) (header, claims map[string]any, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, nil, false
	}
	if _, hasAlg := header["alg"]; !hasAlg {
		return nil, nil, false
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, nil, false
	}
	return header, claims, true
}

func decodeSegment(seg string, into *map[string]any) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(into)
}

func indentJSON(v map[string]any) string {
	out, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return "  (cannot be shown)"
	}
	return "  " + string(out)
}

// printTimeClaims restates the registered time claims as dates, in the
// order they happen.
func printTimeClaims(p *printer, claims map[string]any, now time.Time) {
	for _, name := range []string{"iat", "nbf", "exp"} {
		n, ok := claims[name].(json.Number)
		if !ok {
			continue
		}
		secs, err := n.Float64()
		if err != nil {
			continue
		}
		t := time.Unix(int64(secs), 0)
		p.printf("  %s: %s (%s)\n", name, t.UTC().Format(time.RFC3339), relative(t, now))
	}
}

func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + Until(t, now)
	}
	return Until(t, now)
}
