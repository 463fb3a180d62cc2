package vendorsim

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

// Flags are the standalone simulator's (cmd/vendorsim) vendor flags. Each
// vendor declares its own, so the command needs no change for a new vendor;
// Options then turns the parsed values into the simulator's Options.
type Flags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	// envs fill empty credential flags from the environment after parsing.
	envs []func()
	// sets copy the parsed values into Options, in declaration order.
	sets []func(*Options) error
	// issuer, jwksFile and jwksURL describe the issuer whose ServiceAccount
	// tokens the simulated token endpoints accept as client assertions,
	// shared by the vendors that verify them.
	issuer, jwksFile, jwksURL *string
}

// NewFlags declares every vendor's flags on fs. getenv supplies the
// environment defaults of credential flags.
func NewFlags(fs *flag.FlagSet, getenv func(string) string) *Flags {
	f := &Flags{fs: fs, getenv: getenv}
	f.issuer = fs.String("federated-issuer", "", "iss a federated client assertion must carry: the cluster's service-account issuer (kubectl get --raw /.well-known/openid-configuration)")
	f.jwksFile = fs.String("federated-jwks-file", "", "file holding the issuer's JWKS (kubectl get --raw /openid/v1/jwks)")
	f.jwksURL = fs.String("federated-jwks-url", "", "URL serving the issuer's JWKS, read on each verification; instead of --federated-jwks-file")
	for _, v := range vendors() {
		if v.flags != nil {
			v.flags(f)
		}
	}
	return f
}

// Options is the simulator's configuration from the parsed flags and the
// environment; it fails on a value no vendor can use.
func (f *Flags) Options() (Options, error) {
	for _, fill := range f.envs {
		fill()
	}
	var opts Options
	for _, set := range f.sets {
		if err := set(&opts); err != nil {
			return Options{}, err
		}
	}
	return opts, nil
}

// set records how parsed values reach Options.
func (f *Flags) set(apply func(*Options) error) { f.sets = append(f.sets, apply) }

// credential declares a string flag whose default is the environment
// variable env, else demo (how the help shows the built-in default). The
// environment is read after parsing, so --help never prints a real
// credential.
func (f *Flags) credential(name, env, usage, demo string) *string {
	v := f.fs.String(name, "", usage+" (default $"+env+", else "+demo+")")
	f.envs = append(f.envs, func() {
		if *v == "" {
			*v = f.getenv(env)
		}
	})
	return v
}

// quoted is how the help shows a built-in default credential.
func quoted(s string) string { return strconv.Quote(s) }

// federated is the federated credential of subject for audience ("" for the
// default) under the --federated-* flags, or nil when subject is empty.
func (f *Flags) federated(subject, audience string) (*Federation, error) {
	if subject == "" {
		return nil, nil
	}
	if *f.issuer == "" || (*f.jwksFile == "") == (*f.jwksURL == "") {
		return nil, errors.New("a federated subject needs --federated-issuer and one of --federated-jwks-file and --federated-jwks-url")
	}
	out := &Federation{Issuer: *f.issuer, Subject: subject, Audience: audience, JWKSURL: *f.jwksURL}
	if *f.jwksFile != "" {
		raw, err := os.ReadFile(*f.jwksFile)
		if err != nil {
			return nil, fmt.Errorf("--federated-jwks-file: %w", err)
		}
		if _, err := ParseJWKS(raw); err != nil {
			return nil, fmt.Errorf("--federated-jwks-file: %w", err)
		}
		out.JWKS = raw
	}
	return out, nil
}

// readCertificates reads the certificates of a PEM file; none for "".
func readCertificates(path string) ([]*x509.Certificate, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path) //nolint:gosec // G304: the certificate file the flag names
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", path, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return certs, nil
}
