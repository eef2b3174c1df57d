{{/* The chart's name, overridable. */}}
{{- define "anteroom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource names: the release's, with the chart's unless it has it. */}}
{{- define "anteroom.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods; never change them in an upgrade. */}}
{{- define "anteroom.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anteroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "anteroom.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "anteroom.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The Secret the instances read their environment from. */}}
{{- define "anteroom.secretName" -}}
{{- default (include "anteroom.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/*
anteroom.yaml: .Values.config with the listeners the pod's ports and probes
need and, unless config.redis is set, .Values.redis.url.
*/}}
{{- define "anteroom.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%v" .Values.ports.http) -}}
{{- $_ := set $cfg "ops" (dict "listen" (printf "0.0.0.0:%v" .Values.ports.ops)) -}}
{{- if not (hasKey $cfg "redis") -}}
{{- $_ := set $cfg "redis" (dict "url" (required "redis.url (or config.redis) is required" .Values.redis.url)) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
