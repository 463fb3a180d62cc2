// Command vendorsim runs the vendor simulator as a standalone process, for
// local demos and end-to-end tests that drive it through its /_sim/ admin API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// shutdownGrace bounds how long in-flight requests may finish after a signal.
const shutdownGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "Vendor simulator failed: %v\n", err)
		}
		os.Exit(2)
	}
}

// run serves until ctx ends; it is separate from main so tests can drive it.
// It never logs API keys or tokens.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8089", "address to listen on")
	// The default is resolved after parsing so --help never prints a real key.
	qrveyKey := fs.String("qrvey-api-key", "", `x-api-key the Qrvey endpoint accepts (default $VENDORSIM_QRVEY_API_KEY, else "`+vendorsim.DefaultQrveyAPIKey+`")`)
	boldBISecret := fs.String("boldbi-embed-secret", "", `embedsecret the Bold BI endpoint accepts (default $VENDORSIM_BOLDBI_EMBED_SECRET, else "`+vendorsim.DefaultBoldBIEmbedSecret+`")`)
	boldBIOmitExpiresIn := fs.Bool("boldbi-omit-expires-in", false, "answer Bold BI without Data.expires_in, so clients must read the token's exp claim")
	thoughtSpotKey := fs.String("thoughtspot-secret-key", "", `secret_key the ThoughtSpot endpoint accepts (default $VENDORSIM_THOUGHTSPOT_SECRET_KEY, else "`+vendorsim.DefaultThoughtSpotSecretKey+`")`)
	qlikID := fs.String("qlik-client-id", "", `OAuth client_id the Qlik Cloud endpoints accept (default $VENDORSIM_QLIK_CLIENT_ID, else "`+vendorsim.DefaultQlikClientID+`")`)
	qlikSecret := fs.String("qlik-client-secret", "", `OAuth client_secret the Qlik Cloud endpoints accept (default $VENDORSIM_QLIK_CLIENT_SECRET, else "`+vendorsim.DefaultQlikClientSecret+`")`)
	qlikExpiresAt := fs.Bool("qlik-expires-at", false, "answer Qlik Cloud with expires_at (RFC 3339) instead of expires_in")
	qlikMaxTokens := fs.Int("qlik-max-tokens-per-user", 0, "refuse a Qlik Cloud user more live tokens than this (0: no limit)")
	oauth2ID := fs.String("oauth2-client-id", "", `client_id the OAuth2 endpoint accepts (default $VENDORSIM_OAUTH2_CLIENT_ID, else "`+vendorsim.DefaultOAuth2ClientID+`")`)
	oauth2Secret := fs.String("oauth2-client-secret", "", `client_secret the OAuth2 endpoint accepts (default $VENDORSIM_OAUTH2_CLIENT_SECRET, else "`+vendorsim.DefaultOAuth2ClientSecret+`")`)
	powerBITenant := fs.String("powerbi-tenant-id", "", `tenant the simulated Microsoft Entra ID serves for Power BI (default $VENDORSIM_POWERBI_TENANT_ID, else "`+vendorsim.DefaultPowerBITenantID+`")`)
	powerBIID := fs.String("powerbi-client-id", "", `client_id the simulated Entra ID accepts for Power BI (default $VENDORSIM_POWERBI_CLIENT_ID, else "`+vendorsim.DefaultPowerBIClientID+`")`)
	powerBISecret := fs.String("powerbi-client-secret", "", `client_secret the simulated Entra ID accepts for Power BI (default $VENDORSIM_POWERBI_CLIENT_SECRET, else "`+vendorsim.DefaultPowerBIClientSecret+`")`)
	powerBILifetime := fs.Duration("powerbi-access-token-lifetime", vendorsim.PowerBIAccessTokenLifetime, "lifetime of the simulated Entra ID access tokens, which also bounds Power BI embed tokens")
	powerBICloud := fs.String("powerbi-cloud", "Public", "Power BI cloud the simulated Entra ID serves, which decides the scope it grants: Public, USGovernment, USGovernmentHigh, USGovernmentDoD or China")
	powerBIProfiles := fs.String("powerbi-profiles", "", "comma-separated service principal profile IDs (GUIDs) GenerateToken accepts in X-PowerBI-Profile-Id")
	domoID := fs.String("domo-client-id", "", `API client_id the Domo token endpoint accepts (default $VENDORSIM_DOMO_CLIENT_ID, else "`+vendorsim.DefaultDomoClientID+`")`)
	domoSecret := fs.String("domo-client-secret", "", `API client secret the Domo token endpoint accepts (default $VENDORSIM_DOMO_CLIENT_SECRET, else "`+vendorsim.DefaultDomoClientSecret+`")`)
	supersetUser := fs.String("superset-username", "", `login the Superset endpoints accept (default $VENDORSIM_SUPERSET_USERNAME, else "`+vendorsim.DefaultSupersetUsername+`")`)
	supersetPassword := fs.String("superset-password", "", `password of that login (default $VENDORSIM_SUPERSET_PASSWORD, else "`+vendorsim.DefaultSupersetPassword+`")`)
	supersetGuestTTL := fs.Duration("superset-guest-token-lifetime", vendorsim.DefaultSupersetGuestTokenLifetime, "lifetime of Superset guest tokens (Superset's GUEST_TOKEN_JWT_EXP_SECONDS)")
	lookerSecret := fs.String("looker-embed-secret", "", `embed secret Looker signed embed URLs must be signed with (default $VENDORSIM_LOOKER_EMBED_SECRET, else "`+vendorsim.DefaultLookerEmbedSecret+`")`)
	sigmaID := fs.String("sigma-client-id", "", `embed client ID Sigma embed JWTs must name as kid (default $VENDORSIM_SIGMA_CLIENT_ID, else "`+vendorsim.DefaultSigmaClientID+`")`)
	sigmaSecret := fs.String("sigma-secret", "", `embed secret Sigma embed JWTs must be signed with (default $VENDORSIM_SIGMA_SECRET, else "`+vendorsim.DefaultSigmaSecret+`")`)
	tableauID := fs.String("tableau-client-id", "", `connected app client ID Tableau JWTs must name as iss (default $VENDORSIM_TABLEAU_CLIENT_ID, else "`+vendorsim.DefaultTableauClientID+`")`)
	tableauSecretID := fs.String("tableau-secret-id", "", `connected app secret ID Tableau JWTs must name as kid (default $VENDORSIM_TABLEAU_SECRET_ID, else "`+vendorsim.DefaultTableauSecretID+`")`)
	tableauSecret := fs.String("tableau-secret-value", "", `connected app secret value Tableau JWTs must be signed with (default $VENDORSIM_TABLEAU_SECRET_VALUE, else "`+vendorsim.DefaultTableauSecretValue+`")`)
	qsAccount := fs.String("quicksight-account-id", vendorsim.DefaultQuickSightAccountID, "AWS account whose QuickSight routes the simulator serves")
	qsRegion := fs.String("quicksight-region", vendorsim.DefaultQuickSightRegion, "region QuickSight signatures must be scoped to")
	qsKeyID := fs.String("quicksight-access-key-id", "", `access key ID that may sign QuickSight calls (default $VENDORSIM_QUICKSIGHT_ACCESS_KEY_ID, else "`+vendorsim.DefaultQuickSightAccessKeyID+`")`)
	qsSecret := fs.String("quicksight-secret-access-key", "", `secret access key of that key ID (default $VENDORSIM_QUICKSIGHT_SECRET_ACCESS_KEY, else AWS's documentation example key)`)
	qsRole := fs.String("quicksight-role-arn", vendorsim.DefaultQuickSightRoleARN, "only role the simulated STS lets a web identity assume")
	qsWebIdentity := fs.String("quicksight-web-identity-token", "", `only web identity token the simulated STS trusts (default $VENDORSIM_QUICKSIGHT_WEB_IDENTITY_TOKEN, else "`+vendorsim.DefaultQuickSightWebIdentityToken+`")`)
	oauth2JWT := fs.Bool("oauth2-jwt-access-tokens", false, "answer OAuth2 with JWT access tokens and no expires_in, so clients must read the exp claim")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *qrveyKey == "" {
		*qrveyKey = getenv("VENDORSIM_QRVEY_API_KEY")
	}

	envDefault(getenv, "VENDORSIM_BOLDBI_EMBED_SECRET", boldBISecret)
	envDefault(getenv, "VENDORSIM_THOUGHTSPOT_SECRET_KEY", thoughtSpotKey)
	envDefault(getenv, "VENDORSIM_QLIK_CLIENT_ID", qlikID)
	envDefault(getenv, "VENDORSIM_QLIK_CLIENT_SECRET", qlikSecret)
	envDefault(getenv, "VENDORSIM_OAUTH2_CLIENT_ID", oauth2ID)
	envDefault(getenv, "VENDORSIM_OAUTH2_CLIENT_SECRET", oauth2Secret)
	envDefault(getenv, "VENDORSIM_POWERBI_TENANT_ID", powerBITenant)
	envDefault(getenv, "VENDORSIM_POWERBI_CLIENT_ID", powerBIID)
	envDefault(getenv, "VENDORSIM_POWERBI_CLIENT_SECRET", powerBISecret)
	envDefault(getenv, "VENDORSIM_DOMO_CLIENT_ID", domoID)
	envDefault(getenv, "VENDORSIM_DOMO_CLIENT_SECRET", domoSecret)
	envDefault(getenv, "VENDORSIM_SUPERSET_USERNAME", supersetUser)
	envDefault(getenv, "VENDORSIM_SUPERSET_PASSWORD", supersetPassword)
	envDefault(getenv, "VENDORSIM_LOOKER_EMBED_SECRET", lookerSecret)
	envDefault(getenv, "VENDORSIM_SIGMA_CLIENT_ID", sigmaID)
	envDefault(getenv, "VENDORSIM_SIGMA_SECRET", sigmaSecret)
	envDefault(getenv, "VENDORSIM_TABLEAU_CLIENT_ID", tableauID)
	envDefault(getenv, "VENDORSIM_TABLEAU_SECRET_ID", tableauSecretID)
	envDefault(getenv, "VENDORSIM_TABLEAU_SECRET_VALUE", tableauSecret)
	envDefault(getenv, "VENDORSIM_QUICKSIGHT_ACCESS_KEY_ID", qsKeyID)
	envDefault(getenv, "VENDORSIM_QUICKSIGHT_SECRET_ACCESS_KEY", qsSecret)
	envDefault(getenv, "VENDORSIM_QUICKSIGHT_WEB_IDENTITY_TOKEN", qsWebIdentity)
	if _, ok := vendorsim.PowerBICloudScope(*powerBICloud); !ok {
		return fmt.Errorf("--powerbi-cloud %q is not Public, USGovernment, USGovernmentHigh, USGovernmentDoD or China", *powerBICloud)
	}
	var profiles []string
	for p := range strings.SplitSeq(*powerBIProfiles, ",") {
		if p = strings.TrimSpace(p); p != "" {
			profiles = append(profiles, p)
		}
	}
	if *supersetGuestTTL <= 0 {
		return fmt.Errorf("--superset-guest-token-lifetime must be positive, not %s", *supersetGuestTTL)
	}

	logger := log.New(stderr, "", log.LstdFlags)
	sim := vendorsim.New(vendorsim.Options{
		QrveyAPIKey:           *qrveyKey,
		BoldBIEmbedSecret:     *boldBISecret,
		BoldBIOmitExpiresIn:   *boldBIOmitExpiresIn,
		ThoughtSpotSecretKey:  *thoughtSpotKey,
		QlikClientID:          *qlikID,
		QlikClientSecret:      *qlikSecret,
		QlikExpiresAt:         *qlikExpiresAt,
		QlikMaxTokensPerUser:  *qlikMaxTokens,
		OAuth2ClientID:        *oauth2ID,
		OAuth2ClientSecret:    *oauth2Secret,
		OAuth2JWTAccessTokens: *oauth2JWT,

		PowerBITenantID:            *powerBITenant,
		PowerBIClientID:            *powerBIID,
		PowerBIClientSecret:        *powerBISecret,
		PowerBIAccessTokenLifetime: *powerBILifetime,
		PowerBICloud:               *powerBICloud,
		PowerBIProfiles:            profiles,
		DomoClientID:               *domoID,
		DomoClientSecret:           *domoSecret,
		Superset: vendorsim.SupersetOptions{Username: *supersetUser, Password: *supersetPassword,
			GuestTokenLifetime: *supersetGuestTTL},
		LookerEmbedSecret:  *lookerSecret,
		SigmaClientID:      *sigmaID,
		SigmaSecret:        *sigmaSecret,
		TableauClientID:    *tableauID,
		TableauSecretID:    *tableauSecretID,
		TableauSecretValue: *tableauSecret,
		QuickSight: vendorsim.QuickSightOptions{AccountID: *qsAccount, Region: *qsRegion, AccessKeyID: *qsKeyID,
			SecretAccessKey: *qsSecret, RoleARN: *qsRole, WebIdentityToken: *qsWebIdentity},
	})
	if err := sim.StartOn(*listen); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logger.Printf("Vendor simulator listening on %s", sim.URL())
	logger.Printf("Qrvey token endpoint at %s%s", sim.URL(), vendorsim.QrveyTokenPath)
	logger.Printf("Qlik Cloud tenant URL %s (token at %s, revoke at %s)", sim.URL(), vendorsim.QlikTokenPath, vendorsim.QlikRevokePath)
	logger.Printf("OAuth2 token endpoint at %s%s", sim.URL(), vendorsim.OAuth2TokenPath)
	logger.Printf("Bold BI server URL %s%s (authorize at %s)", sim.URL(), vendorsim.BoldBIServerPath, vendorsim.BoldBIAuthorizePath("<site>"))
	logger.Printf("ThoughtSpot token endpoint at %s%s", sim.URL(), vendorsim.ThoughtSpotTokenPath)
	logger.Printf("Power BI authority and API URL %s (Entra ID token at %s, GenerateToken at %s)", sim.URL(), vendorsim.PowerBIEntraTokenPath("<tenant>"), vendorsim.PowerBIGenerateTokenPath)
	logger.Printf("Domo access tokens at GET %s%s, embed tokens at %s%s", sim.URL(), vendorsim.DomoTokenPath, sim.URL(), vendorsim.DomoEmbedAuthPath)
	logger.Printf("Superset URL %s (guest tokens at %s)", sim.URL(), vendorsim.SupersetGuestTokenPath)
	logger.Printf("Looker URL %s (signed embed URLs redeemed at %s...)", sim.URL(), vendorsim.LookerEmbedPathPrefix)
	logger.Printf("Sigma embed URLs at %s%s<workbook>?:jwt=..., Tableau connected-app JWTs at %s%s?token=...", sim.URL(), vendorsim.SigmaEmbedPath, sim.URL(), vendorsim.TableauSessionPath)
	logger.Printf("QuickSight endpoint and STS endpoint %s (embed URLs at %s, region %s)", sim.URL(), vendorsim.QuickSightRegisteredUserPath(*qsAccount), *qsRegion)

	<-ctx.Done()
	logger.Printf("Shutting down vendor simulator")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := sim.Shutdown(shutdownCtx); err != nil {
		sim.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	return nil
}

// envDefault fills an empty credential flag from the environment after
// parsing, so --help never prints a real credential.
func envDefault(getenv func(string) string, name string, v *string) {
	if *v == "" {
		*v = getenv(name)
	}
}
