{{/* The chart's name. */}}
{{- define "eto.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, the prefix of every object's name. */}}
{{- define "eto.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "eto.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "eto.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels that select the manager's pods. */}}
{{- define "eto.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eto.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{/* A shard's name: the release's full name, plus the shard's when given
(dict "root" . "shard" name). */}}
{{- define "eto.shardName" -}}
{{- if .shard -}}
{{- printf "%s-%s" (include "eto.fullname" .root) .shard | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "eto.fullname" .root -}}
{{- end -}}
{{- end -}}

{{/* Labels that select one shard's pods (dict "root" . "shard" name): the
default shard's are eto.selectorLabels; another shard's carry its name and
no control-plane label, so no two Deployments select the same pods. */}}
{{- define "eto.podSelectorLabels" -}}
{{- if .shard -}}
app.kubernetes.io/name: {{ include "eto.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
embedtokens.io/shard: {{ .shard | quote }}
{{- else -}}
{{ include "eto.selectorLabels" .root }}
{{- end -}}
{{- end -}}

{{/* The manager's service account. */}}
{{- define "eto.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eto.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* True when more than one replica or leader election is on. */}}
{{- define "eto.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The token endpoint's Service name. */}}
{{- define "eto.tokenEndpointService" -}}
{{- default (printf "%s-token-endpoint" (include "eto.fullname" .) | trunc 63 | trimSuffix "-") .Values.tokenEndpoint.serviceName -}}
{{- end -}}

{{/* The Secret holding the token endpoint's tls.crt, tls.key and ca.crt. */}}
{{- define "eto.tokenEndpointSecret" -}}
{{- default (printf "%s-tls" (include "eto.tokenEndpointService" .)) .Values.tokenEndpoint.certSecretName -}}
{{- end -}}
