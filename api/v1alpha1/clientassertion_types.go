/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// This file is the credentials other than a client secret that vendor
// blocks signing in to an OAuth 2.0 authorization server (powerBI, oauth2)
// accept: a federated credential, for which no secret is stored and the
// cluster's service-account issuer vouches for the client, and a
// certificate, whose private key signs the client's assertions.

// DefaultClientAssertionAudience is the audience of the service-account
// token when ClientAssertion.Audience is empty: the one Microsoft Entra ID
// expects of a federated identity credential.
const DefaultClientAssertionAudience = "api://AzureADTokenExchange"

// FederatedIdentityVerb is the RBAC verb on a ServiceAccount that lets the
// manager request tokens for it as a client assertion: the admission policy
// manager-guardrails refuses the manager's TokenRequests for every other
// ServiceAccount, so the owner of a namespace opts a ServiceAccount in with
// a Role granting this verb on it, which the manager cannot grant itself.
const FederatedIdentityVerb = "embedtokens.io:federate"

// ClientAssertion signs in to the authorization server with a JWT (RFC 7523
// client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer):
// a short-lived token for a Kubernetes ServiceAccount, requested through the
// TokenRequest API and signed by the cluster's service-account issuer, which
// the server trusts as a federated identity credential (Microsoft Entra ID
// workload identity federation). Nothing secret is stored in a Secret.
type ClientAssertion struct {
	// ServiceAccountRef is the ServiceAccount whose token is the assertion:
	// its subject is system:serviceaccount:NAMESPACE:NAME. The
	// ServiceAccount must be opted in with a Role granting the manager the
	// verb embedtokens.io:federate on it (see docs/vendors/powerbi.md).
	ServiceAccountRef ServiceAccountReference `json:"serviceAccountRef"`

	// Audience of the ServiceAccount token, which the server's federated
	// credential names; api://AzureADTokenExchange when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Audience string `json:"audience,omitempty"`
}

// ServiceAccountReference names a ServiceAccount, with the same namespace
// rule as SecretKeySelector: an EmbedProvider's own namespace, the one named
// on a ClusterEmbedProvider.
type ServiceAccountReference struct {
	// Name of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Namespace of the ServiceAccount. Required on a ClusterEmbedProvider,
	// which has no namespace of its own. On an EmbedProvider it may be
	// omitted or set to the provider's own namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// ClientCertificate signs the client's assertions (RFC 7523 client
// authentication, private_key_jwt) with the private key of a certificate
// registered with the authorization server, as Microsoft Entra ID's
// certificate credentials and MSAL's confidential clients do: the JWT's
// header names the certificate by its SHA-256 thumbprint (x5t#S256), its
// claims are aud (the token endpoint), iss and sub (the client ID), jti,
// nbf and exp (ten minutes).
type ClientCertificate struct {
	// CertificateSecretRef is the Secret key holding the PEM certificate
	// (tls.crt of a kubernetes.io/tls Secret) or a PEM bundle of the
	// certificate and its private key.
	CertificateSecretRef SecretKeySelector `json:"certificateSecretRef"`

	// PrivateKeySecretRef is the Secret key holding the PEM private key
	// (tls.key), RSA or ECDSA P-256, PKCS #1, SEC 1 or PKCS #8; omit it
	// when certificateSecretRef holds a bundle.
	// +optional
	PrivateKeySecretRef *SecretKeySelector `json:"privateKeySecretRef,omitempty"`
}
