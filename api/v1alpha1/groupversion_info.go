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

// Package v1alpha1 holds the embedtokens.io/v1alpha1 API: vendor connections
// (EmbedProvider, ClusterEmbedProvider) configured by platform teams, and
// EmbedTokenRequests applied by app teams.
// +kubebuilder:object:generate=true
// +groupName=embedtokens.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version every kind in this package is served under.
	GroupVersion = schema.GroupVersion{Group: "embedtokens.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds with a runtime.Scheme. It is
	// apimachinery's, so importing the API pulls in no controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this group-version to a scheme, for clients and the manager.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers every kind of this group-version, with the
// metav1 options types (ListOptions, ...) its clients send.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&EmbedTokenRequest{}, &EmbedTokenRequestList{},
		&EmbedTokenTemplate{}, &EmbedTokenTemplateList{},
		&EmbedProvider{}, &EmbedProviderList{},
		&ClusterEmbedProvider{}, &ClusterEmbedProviderList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
