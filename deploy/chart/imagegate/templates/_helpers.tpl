{{/* Names: the release name, or <release>-imagegate when the release name does not contain "imagegate". */}}
{{- define "imagegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries: the kustomize base's, plus Helm's standard ones. */}}
{{- define "imagegate.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/part-of: imagegate
{{ include "imagegate.helmLabels" . }}
{{- end -}}

{{/* Helm's standard labels (the kustomize installation has none of them). */}}
{{- define "imagegate.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* What selects the server pods (Service, PDB, NetworkPolicy, spread constraints). */}}
{{- define "imagegate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "imagegate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "imagegate.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "imagegate.fullname" .) -}}
{{- else -}}
{{- required "tls.existingSecret: name the kubernetes.io/tls Secret to serve with (or enable tls.certManager)" .Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "imagegate.registrySecret" -}}
{{- default (printf "%s-registry" (include "imagegate.fullname" .)) .Values.registryCredentials.existingSecret -}}
{{- end -}}

{{- define "imagegate.priorityClassName" -}}
{{- default (printf "%s-critical" (include "imagegate.fullname" .)) .Values.priorityClass.name -}}
{{- end -}}

{{/* The pod's termination grace: preStop (5 s) plus the longest admission plus gunicorn's drain margin. */}}
{{- define "imagegate.terminationGracePeriodSeconds" -}}
{{- max 30 (add (int .Values.webhook.timeoutSeconds) 20) -}}
{{- end -}}

{{/* Namespaces never sent to the webhooks (a JSON list): the configured ones, our own, cert-manager's. */}}
{{- define "imagegate.excludedNamespaces" -}}
{{- $excluded := concat .Values.webhook.excludedNamespaces (list .Release.Namespace) -}}
{{- if .Values.tls.certManager.enabled -}}
{{- $excluded = append $excluded .Values.tls.certManager.namespace -}}
{{- end -}}
{{- uniq $excluded | toJson -}}
{{- end -}}

{{/* One webhook entry's shared part: client service, versions, failure policy, selector, rules. */}}
{{- define "imagegate.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
# Other versions of the same resources (e.g. a future apps/v2) are converted and still reach us.
matchPolicy: Equivalent
# Never gate the control plane's namespace, nor our own (an outage would stop its own recovery), nor
# cert-manager's when it issues our certificate. There is deliberately no opt-out label: anyone allowed
# to label namespaces could use it to switch enforcement off (see deploy/README.md).
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range include "imagegate.excludedNamespaces" . | fromJsonArray }}
        - {{ . | quote }}
        {{- end }}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"]
    scope: Namespaced
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
    scope: Namespaced
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
{{- end -}}

{{- define "imagegate.webhookClient" -}}
clientConfig:
  service:
    name: {{ include "imagegate.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- if not .root.Values.tls.certManager.enabled }}
  caBundle: {{ required "tls.caBundle: the base64 PEM CA that verifies tls.existingSecret (printed by `imagegate certs`)" .root.Values.tls.caBundle }}
  {{- end }}
{{- end -}}

{{/* Labels of the trust refresh job's objects: not the server's name, so nothing of the server selects them. */}}
{{- define "imagegate.trustRefreshLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-trust-refresh
app.kubernetes.io/component: trust-refresh
app.kubernetes.io/part-of: imagegate
{{ include "imagegate.helmLabels" . }}
{{- end -}}
