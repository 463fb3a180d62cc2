// Package registry is the one list of the vendors this build supports. The
// manager, the development environment and every test suite take their
// providers from All, so each runs every vendor and adding one is one line.
package registry

import (
	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/boldbi"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	jwtprovider "github.com/embedtokens/embed-token-operator/internal/provider/jwt"
	"github.com/embedtokens/embed-token-operator/internal/provider/looker"
	"github.com/embedtokens/embed-token-operator/internal/provider/oauth2"
	"github.com/embedtokens/embed-token-operator/internal/provider/powerbi"
	"github.com/embedtokens/embed-token-operator/internal/provider/qlikcloud"
	"github.com/embedtokens/embed-token-operator/internal/provider/qrvey"
	"github.com/embedtokens/embed-token-operator/internal/provider/quicksight"
	"github.com/embedtokens/embed-token-operator/internal/provider/sigma"
	"github.com/embedtokens/embed-token-operator/internal/provider/superset"
)

// All returns a new provider for every vendor, keyed by vendor name (the
// v1alpha1.Vendor* constants), as controller.Options.Providers wants it.
// Each call returns new providers, with empty caches (Power BI's, Superset's
// and the http auth step's access tokens), so each manager has its own;
// callers may share or modify the map freely.
func All() map[string]provider.Provider {
	return map[string]provider.Provider{
		v1alpha1.VendorQrvey:      qrvey.New(),
		v1alpha1.VendorQlikCloud:  qlikcloud.New(),
		v1alpha1.VendorBoldBI:     boldbi.New(),
		v1alpha1.VendorJWT:        jwtprovider.New(),
		v1alpha1.VendorOAuth2:     oauth2.New(),
		v1alpha1.VendorHTTP:       httpprovider.New(),
		v1alpha1.VendorPowerBI:    powerbi.New(),
		v1alpha1.VendorSuperset:   superset.New(),
		v1alpha1.VendorLooker:     looker.New(),
		v1alpha1.VendorSigma:      sigma.New(),
		v1alpha1.VendorQuickSight: quicksight.New(),
	}
}
