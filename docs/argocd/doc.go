// Package argocd holds the Argo CD health check for EmbedTokenRequest
// (health.lua) and the test that runs it against sample statuses.
package argocd
