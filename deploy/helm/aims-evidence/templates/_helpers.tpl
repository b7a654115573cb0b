{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "aims-evidence.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, unless it does not already contain the chart name.
Component objects append -server / -agent, so this stays under 56 characters.
*/}}
{{- define "aims-evidence.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 56 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 56 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aims-evidence.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "aims-evidence.labels" -}}
helm.sh/chart: {{ include "aims-evidence.chart" . }}
app.kubernetes.io/name: {{ include "aims-evidence.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aims-evidence
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (stable across upgrades); the component is added by the callers below.
*/}}
{{- define "aims-evidence.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aims-evidence.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aims-evidence.server.fullname" -}}
{{- printf "%s-server" (include "aims-evidence.fullname" .) }}
{{- end }}

{{- define "aims-evidence.agent.fullname" -}}
{{- printf "%s-agent" (include "aims-evidence.fullname" .) }}
{{- end }}

{{- define "aims-evidence.server.labels" -}}
{{ include "aims-evidence.labels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "aims-evidence.server.selectorLabels" -}}
{{ include "aims-evidence.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "aims-evidence.agent.labels" -}}
{{ include "aims-evidence.labels" . }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "aims-evidence.agent.selectorLabels" -}}
{{ include "aims-evidence.selectorLabels" . }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "aims-evidence.server.serviceAccountName" -}}
{{- if .Values.server.serviceAccount.create }}
{{- default (include "aims-evidence.server.fullname" .) .Values.server.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.server.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aims-evidence.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "aims-evidence.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "aims-evidence.server.image" -}}
{{- printf "%s:%s" .Values.server.image.repository (default .Chart.AppVersion .Values.server.image.tag) }}
{{- end }}

{{- define "aims-evidence.agent.image" -}}
{{- printf "%s:%s" .Values.agent.image.repository (default .Chart.AppVersion .Values.agent.image.tag) }}
{{- end }}

{{/*
"true" when the server uses PostgreSQL (a URL or an existing Secret), "" for SQLite.
*/}}
{{- define "aims-evidence.server.usePostgres" -}}
{{- if or .Values.server.database.url .Values.server.database.existingSecret }}true{{ end }}
{{- end }}

{{/*
The Secret holding the PostgreSQL URL.
*/}}
{{- define "aims-evidence.server.databaseSecretName" -}}
{{- default (printf "%s-database" (include "aims-evidence.server.fullname" .)) .Values.server.database.existingSecret }}
{{- end }}

{{/*
The Secret holding the agent token: existingSecret, else <fullname>-agent-token (created by the
chart when agent.token.value is set, otherwise by the operator).
*/}}
{{- define "aims-evidence.agent.tokenSecretName" -}}
{{- default (printf "%s-token" (include "aims-evidence.agent.fullname" .)) .Values.agent.token.existingSecret }}
{{- end }}

{{/*
The URL the agent ships to, or "" to keep agent.config.server.url.
*/}}
{{- define "aims-evidence.agent.serverUrl" -}}
{{- if .Values.agent.serverUrl }}
{{- .Values.agent.serverUrl }}
{{- else if .Values.server.enabled }}
{{- printf "http://%s.%s.svc:%v" (include "aims-evidence.server.fullname" .) .Release.Namespace (.Values.server.service.port | int) }}
{{- end }}
{{- end }}

{{/*
Refuses configurations that would break the ledger.
*/}}
{{- define "aims-evidence.validate" -}}
{{- if .Values.server.enabled }}
{{- if and (not (include "aims-evidence.server.usePostgres" .)) (gt (int .Values.server.replicas) 1) }}
{{- fail "server.replicas > 1 needs PostgreSQL (server.database.url or existingSecret): SQLite is a single file on a ReadWriteOnce volume" }}
{{- end }}
{{- if and (include "aims-evidence.server.usePostgres" .) (not .Values.server.keys.existingSecret) }}
{{- fail "with PostgreSQL, set server.keys.existingSecret: replicas have no shared disk, and each would otherwise create its own log key (a different log identity)" }}
{{- end }}
{{- end }}
{{- end }}
