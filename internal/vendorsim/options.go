package vendorsim

import (
	"crypto/x509"
	"time"

	"k8s.io/utils/clock"
)

// Options configures a Server; the zero value is usable.
type Options struct {
	// Clock decides token expiry and call timestamps, so tests can move time
	// with a fake clock instead of sleeping. Nil means the real clock.
	// Fault delays always use real time, because they model network latency.
	Clock clock.PassiveClock
	// QrveyAPIKey is the only x-api-key the Qrvey endpoint accepts.
	// Empty means DefaultQrveyAPIKey.
	QrveyAPIKey string
	// BoldBIEmbedSecret is the only embedsecret the Bold BI endpoint accepts.
	// Empty means DefaultBoldBIEmbedSecret.
	BoldBIEmbedSecret string
	// BoldBIOmitExpiresIn makes Bold BI answer without Data.expires_in, so
	// clients must read the access token's exp claim.
	BoldBIOmitExpiresIn bool
	// ThoughtSpotSecretKey is the only secret_key the ThoughtSpot endpoint
	// accepts. Empty means DefaultThoughtSpotSecretKey.
	ThoughtSpotSecretKey string
	// QlikClientID and QlikClientSecret are the only OAuth client the Qlik
	// Cloud endpoints accept. Empty means DefaultQlikClientID/Secret.
	QlikClientID, QlikClientSecret string
	// QlikExpiresAt makes Qlik answer expires_at (RFC 3339) instead of
	// expires_in, the other form the real tenants use.
	QlikExpiresAt bool
	// QlikMaxTokensPerUser, when positive, refuses a user more live tokens
	// than this, as Qlik does; revoking one frees a slot.
	QlikMaxTokensPerUser int
	// OAuth2ClientID and OAuth2ClientSecret are the only client the OAuth2
	// endpoint accepts. Empty means DefaultOAuth2ClientID/Secret.
	OAuth2ClientID, OAuth2ClientSecret string
	// OAuth2Federation, when set, lets the OAuth2 client authenticate with
	// a JWT client assertion (RFC 7523) it verifies, in place of its secret.
	OAuth2Federation *Federation
	// OAuth2Certificates let the OAuth2 client authenticate with JWTs it
	// signs with one of their keys (private_key_jwt).
	OAuth2Certificates []*x509.Certificate
	// OAuth2AllowedScopes, when set, are the only scopes the OAuth2 endpoint grants.
	OAuth2AllowedScopes []string
	// OAuth2JWTAccessTokens makes the OAuth2 endpoint issue JWTs and omit
	// expires_in, so clients must read the token's exp claim.
	OAuth2JWTAccessTokens bool
	// PowerBITenantID, PowerBIClientID and PowerBIClientSecret are the only
	// tenant and service principal the simulated Entra ID accepts. Empty
	// means DefaultPowerBITenantID/ClientID/ClientSecret.
	PowerBITenantID, PowerBIClientID, PowerBIClientSecret string
	// PowerBIFederation, when set, is the federated identity credential of
	// the simulated service principal: Entra ID then also accepts a
	// client_assertion it verifies (issuer, subject, audience, signature)
	// in place of the client secret.
	PowerBIFederation *Federation
	// PowerBICertificates are the certificate credentials of the simulated
	// service principal: Entra ID then also accepts a client assertion
	// signed with one of their keys, named by its x5t#S256 thumbprint.
	PowerBICertificates []*x509.Certificate
	// PowerBIAccessTokenLifetime is the lifetime of simulated Entra ID
	// access tokens; zero means PowerBIAccessTokenLifetime.
	PowerBIAccessTokenLifetime time.Duration
	// PowerBICloud is the cloud the simulated Entra ID and Power BI belong
	// to, which decides the only scope Entra ID grants (see
	// PowerBICloudScope); empty means Public.
	PowerBICloud string
	// PowerBIProfiles are the service principal profiles (GUIDs) the
	// simulated service principal owns: GenerateToken accepts only these in
	// the X-PowerBI-Profile-Id header.
	PowerBIProfiles []string
	// DomoClientID and DomoClientSecret are the only API client the Domo
	// token endpoint accepts. Empty means DefaultDomoClientID/Secret.
	DomoClientID, DomoClientSecret string
	// DomoMaxSession, when positive, caps embed tokens' sessions below the
	// sessionLength asked for, as a Domo instance's session policy may; the
	// token's exp states the shorter grant.
	DomoMaxSession time.Duration
	// DomoDeniedEmbedIDs are embed IDs the API client may not see: Domo
	// leaves them out of the embed token's emb claim.
	DomoDeniedEmbedIDs []string
	// LookerEmbedSecret is the only embed secret Looker's signed embed URLs
	// may be signed with. Empty means DefaultLookerEmbedSecret.
	LookerEmbedSecret string
	// SigmaClientID and SigmaSecret are the only embed credentials Sigma's
	// embed JWTs may be signed with. Empty means DefaultSigmaClientID/Secret.
	SigmaClientID, SigmaSecret string
	// TableauClientID, TableauSecretID and TableauSecretValue are the only
	// connected app whose JWTs Tableau redeems. Empty means the
	// DefaultTableau* constants.
	TableauClientID, TableauSecretID, TableauSecretValue string
	// Superset configures the simulated Apache Superset.
	Superset SupersetOptions
	// QuickSight configures the simulated Amazon QuickSight and AWS STS.
	QuickSight QuickSightOptions
	// Vendors holds the options of vendors that declare a type of their own
	// for them in their file (vendor.go) instead of a field above: each such
	// vendor uses the value of its type here, and its defaults without one,
	// so adding a vendor leaves Options as it is.
	Vendors []any
}

// optionsOf is the value of type T in opts.Vendors (the last one, when
// there are several), or T's zero value.
func optionsOf[T any](opts Options) T {
	var out T
	for _, o := range opts.Vendors {
		if t, ok := o.(T); ok {
			out = t
		}
	}
	return out
}
