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

// This file is the whole API of one vendor, Amazon QuickSight: signed embed
// URLs from GenerateEmbedUrlForRegisteredUser and
// GenerateEmbedUrlForAnonymousUser, called with AWS credentials from a
// Secret or from the operator pod's own IAM identity. An embed URL can be
// redeemed once, so QuickSight is served through the token endpoint only.
// Its provider block and request block join the unions in
// zz_generated.vendors.go.

// VendorQuickSight names the QuickSight block of a provider and of a
// request. It equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="QuickSight issues Amazon QuickSight embed URLs, signed with AWS credentials; each URL can be redeemed once."
const VendorQuickSight = "quickSight"

// QuickSightProvider is one AWS account's QuickSight in one region, and the
// AWS credentials that sign the calls (SigV4).
type QuickSightProvider struct {
	// Region of the QuickSight account's identity region or of the
	// dashboards, e.g. us-east-1.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	Region string `json:"region"`

	// AWSAccountID is the 12-digit ID of the AWS account that owns the
	// QuickSight subscription.
	// +kubebuilder:validation:Pattern=`^[0-9]{12}$`
	AWSAccountID string `json:"awsAccountId"`

	// Namespace is the QuickSight namespace of anonymous sessions and of
	// users named by userName, unless a request names another.
	// +optional
	// +kubebuilder:default=default
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	Namespace string `json:"namespace,omitempty"`

	// Endpoint replaces QuickSight's regional endpoint
	// (https://quicksight.<region>.amazonaws.com), for a VPC endpoint or a
	// simulator.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="endpoint must be an absolute http(s) URL"
	Endpoint string `json:"endpoint,omitempty"`

	// Credentials sign every call.
	Credentials AWSCredentials `json:"credentials"`
}

// AWSCredentials is where the AWS credentials that sign a vendor's calls
// come from: access keys in Secrets, or the operator pod's own IAM role.
// +kubebuilder:validation:XValidation:rule="has(self.secret) != has(self.podIdentity)",message="exactly one of secret and podIdentity must be set"
type AWSCredentials struct {
	// Secret holds an IAM user's or a role session's access keys.
	// +optional
	Secret *AWSSecretCredentials `json:"secret,omitempty"`

	// PodIdentity uses the operator pod's web identity (IAM Roles for
	// Service Accounts): the token file in $AWS_WEB_IDENTITY_TOKEN_FILE is
	// exchanged with STS (AssumeRoleWithWebIdentity) for the role's
	// credentials. It is the operator's identity, not the namespace's, so
	// only a ClusterEmbedProvider may use it.
	// +optional
	PodIdentity *AWSPodIdentity `json:"podIdentity,omitempty"`
}

// AWSSecretCredentials are AWS access keys kept in Secrets.
type AWSSecretCredentials struct {
	// AccessKeyIDSecretRef is the Secret key holding the access key ID.
	AccessKeyIDSecretRef SecretKeySelector `json:"accessKeyIDSecretRef"`
	// SecretAccessKeySecretRef is the Secret key holding the secret
	// access key.
	SecretAccessKeySecretRef SecretKeySelector `json:"secretAccessKeySecretRef"`
	// SessionTokenSecretRef is the Secret key holding a session token, for
	// temporary credentials; whoever writes them must also renew them.
	// +optional
	SessionTokenSecretRef *SecretKeySelector `json:"sessionTokenSecretRef,omitempty"`
}

// AWSPodIdentity is the role the operator pod's web identity assumes.
type AWSPodIdentity struct {
	// RoleARN is the role to assume; empty means $AWS_ROLE_ARN, which EKS
	// sets from the service account's eks.amazonaws.com/role-arn
	// annotation. Its trust policy must trust the operator's service
	// account.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$`
	RoleARN string `json:"roleARN,omitempty"`

	// STSEndpoint replaces the regional STS endpoint
	// (https://sts.<region>.amazonaws.com), for a VPC endpoint or a
	// simulator.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="stsEndpoint must be an absolute http(s) URL"
	STSEndpoint string `json:"stsEndpoint,omitempty"`
}

// QuickSightParams describe one embed URL: whom it signs in, what it opens
// and how long the session it starts may last.
// +kubebuilder:validation:XValidation:rule="has(self.registeredUser) != has(self.anonymous)",message="exactly one of registeredUser and anonymous must be set"
type QuickSightParams struct {
	// RegisteredUser embeds for a QuickSight user
	// (GenerateEmbedUrlForRegisteredUser), with that user's permissions.
	// +optional
	RegisteredUser *QuickSightRegisteredUser `json:"registeredUser,omitempty"`

	// Anonymous embeds for a viewer with no QuickSight user
	// (GenerateEmbedUrlForAnonymousUser), billed per session.
	// +optional
	Anonymous *QuickSightAnonymousUser `json:"anonymous,omitempty"`

	// SessionLifetimeInMinutes is how long the session the URL starts may
	// last, 15 to 600 minutes; QuickSight's default is 600. The URL itself
	// must be redeemed within 5 minutes.
	// +optional
	// +kubebuilder:validation:Minimum=15
	// +kubebuilder:validation:Maximum=600
	SessionLifetimeInMinutes *int64 `json:"sessionLifetimeInMinutes,omitempty"`

	// AllowedDomains are the origins that may frame the URL, at most
	// three, e.g. https://portal.example.com; QuickSight otherwise allows
	// the account's static domain list.
	// +optional
	// +kubebuilder:validation:MaxItems=3
	// +listType=atomic
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^https://[^/]+$`
	AllowedDomains []string `json:"allowedDomains,omitempty"`
}

// QuickSightRegisteredUser is a QuickSight user and the experience the URL
// opens for it. The user is named by its ARN, or by its name, from which
// the operator builds the ARN in the provider's account: a template then
// lets a caller fill the name only, never another account's user.
// +kubebuilder:validation:XValidation:rule="has(self.userARN) != has(self.userName)",message="exactly one of userARN and userName must be set"
type QuickSightRegisteredUser struct {
	// UserARN is the QuickSight user,
	// e.g. arn:aws:quicksight:us-east-1:111122223333:user/default/alice.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^arn:aws[a-z-]*:quicksight:[a-z0-9-]+:[0-9]{12}:user/.+$`
	UserARN string `json:"userARN,omitempty"`

	// UserName is the QuickSight user's name, e.g. alice, or
	// embed-role/alice for a user federated through an IAM role. The ARN
	// is arn:<partition>:quicksight:<identityRegion>:<awsAccountId>:user/<namespace>/<userName>.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._@+=,-]+(/[A-Za-z0-9._@+=,-]+)?$`
	UserName string `json:"userName,omitempty"`

	// Namespace is the QuickSight namespace of a user named by userName;
	// empty means the provider's.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	Namespace string `json:"namespace,omitempty"`

	// IdentityRegion is the region of the account's QuickSight users (the
	// identity region chosen at sign-up) for a user named by userName;
	// empty means the provider's region.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	IdentityRegion string `json:"identityRegion,omitempty"`

	// Experience is what the URL opens.
	Experience QuickSightRegisteredExperience `json:"experience"`
}

// QuickSightRegisteredExperience is what a registered user's URL opens;
// exactly one field is set.
// +kubebuilder:validation:XValidation:rule="[has(self.dashboard), has(self.console), has(self.qSearchBar)].filter(x, x).size() == 1",message="exactly one of dashboard, console and qSearchBar must be set"
type QuickSightRegisteredExperience struct {
	// Dashboard opens one dashboard.
	// +optional
	Dashboard *QuickSightDashboard `json:"dashboard,omitempty"`
	// Console opens the QuickSight console, for authors.
	// +optional
	Console *QuickSightConsole `json:"console,omitempty"`
	// QSearchBar opens the Amazon Q search bar.
	// +optional
	QSearchBar *QuickSightQSearchBar `json:"qSearchBar,omitempty"`
}

// QuickSightAnonymousUser is an anonymous viewer: the dashboards it may
// open and the session tags that row level security reads.
type QuickSightAnonymousUser struct {
	// Namespace is the QuickSight namespace of the session; empty means
	// the provider's.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9._-]+$`
	Namespace string `json:"namespace,omitempty"`

	// AuthorizedResourceARNs are the dashboards the session may open, at
	// most 25 (QuickSight's limit).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=25
	// +listType=atomic
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:items:Pattern=`^arn:aws[a-z-]*:quicksight:[a-z0-9-]+:[0-9]{12}:.+$`
	AuthorizedResourceARNs []string `json:"authorizedResourceARNs"`

	// Experience is what the URL opens; exactly one field is set.
	Experience QuickSightAnonymousExperience `json:"experience"`

	// SessionTags are the tags QuickSight's row level security matches
	// against the dataset's tag rules, at most 50.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	SessionTags []QuickSightSessionTag `json:"sessionTags,omitempty"`
}

// QuickSightAnonymousExperience is what an anonymous viewer's URL opens.
// +kubebuilder:validation:XValidation:rule="[has(self.dashboard), has(self.qSearchBar)].filter(x, x).size() == 1",message="exactly one of dashboard and qSearchBar must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.qSearchBar) || has(self.qSearchBar.initialTopicID)",message="an anonymous qSearchBar must set initialTopicID"
type QuickSightAnonymousExperience struct {
	// Dashboard opens one dashboard, which must be among the authorized
	// resources.
	// +optional
	Dashboard *QuickSightDashboard `json:"dashboard,omitempty"`
	// QSearchBar opens the Amazon Q search bar.
	// +optional
	QSearchBar *QuickSightQSearchBar `json:"qSearchBar,omitempty"`
}

// QuickSightDashboard is the dashboard an embed URL opens first.
type QuickSightDashboard struct {
	// InitialDashboardID is the dashboard's ID (from its URL in
	// QuickSight).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_.-]+$`
	InitialDashboardID string `json:"initialDashboardID"`
}

// QuickSightConsole is the console page an embed URL opens first.
type QuickSightConsole struct {
	// InitialPath is the console page, e.g. /start or
	// /dashboards/<id>; empty opens the start page.
	// +optional
	// +kubebuilder:validation:MaxLength=1000
	// +kubebuilder:validation:Pattern=`^/.*$`
	InitialPath string `json:"initialPath,omitempty"`
}

// QuickSightQSearchBar is the Q topic an embed URL opens first.
type QuickSightQSearchBar struct {
	// InitialTopicID is the Q topic's ID; empty lets the viewer choose.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9_.-]+$`
	InitialTopicID string `json:"initialTopicID,omitempty"`
}

// QuickSightSessionTag is one session tag of an anonymous session.
type QuickSightSessionTag struct {
	// Key of the tag, as the dataset's row level security tag rules name
	// it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Key string `json:"key"`
	// Value of the tag; QuickSight reads a comma-separated list of values
	// as several.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Value string `json:"value"`
}
