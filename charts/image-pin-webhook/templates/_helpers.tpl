{{- define "image-pin-webhook.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "image-pin-webhook.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "image-pin-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "image-pin-webhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "image-pin-webhook.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "image-pin-webhook.tlsSecret" -}}
{{- printf "%s-tls" (include "image-pin-webhook.fullname" .) -}}
{{- end -}}

{{/* secretsByNamespace: {"ns": ["name", ...]} for the secret: and pullsecret: credentials */}}
{{- define "image-pin-webhook.secretsByNamespace" -}}
{{- $out := dict -}}
{{- range .Values.registries -}}
{{- $c := toString (default "" .credentials) -}}
{{- $ref := "" -}}
{{- if hasPrefix "secret:" $c -}}
{{- $ref = first (splitList "#" (trimPrefix "secret:" $c)) -}}
{{- else if hasPrefix "pullsecret:" $c -}}
{{- $ref = trimPrefix "pullsecret:" $c -}}
{{- end -}}
{{- if $ref -}}
{{- $parts := splitList "/" $ref -}}
{{- $ns := index $parts 0 -}}
{{- $name := index $parts 1 -}}
{{- $names := default list (get $out $ns) -}}
{{- if not (has $name $names) -}}
{{- $_ := set $out $ns (append $names $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* serviceAccountAnnotations: serviceAccount.annotations plus the workload identity ones of cloud.* */}}
{{- define "image-pin-webhook.serviceAccountAnnotations" -}}
{{- $out := deepCopy (default dict .Values.serviceAccount.annotations) -}}
{{- with .Values.cloud -}}
{{- if .aws.roleArn -}}
{{- $_ := set $out "eks.amazonaws.com/role-arn" .aws.roleArn -}}
{{- end -}}
{{- if .gcp.serviceAccount -}}
{{- $_ := set $out "iam.gke.io/gcp-service-account" .gcp.serviceAccount -}}
{{- end -}}
{{- if .azure.clientId -}}
{{- $_ := set $out "azure.workload.identity/client-id" .azure.clientId -}}
{{- end -}}
{{- if .azure.tenantId -}}
{{- $_ := set $out "azure.workload.identity/tenant-id" .azure.tenantId -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* pullSecretsScope: where entries with credentials: imagepullsecrets read the admitted objects' Secrets and ServiceAccounts.
     {"used": bool, "clusterWide": bool, "clusterWideEntries": [names], "namespaces": [...]}: cluster-wide unless every such
     entry lists its namespaces without globs; the chart grants that only with rbac.pullSecrets.clusterWide (see validate). */}}
{{- define "image-pin-webhook.pullSecretsScope" -}}
{{- $used := false -}}
{{- $clusterWide := false -}}
{{- $wide := list -}}
{{- $nss := list -}}
{{- range .Values.registries -}}
{{- if eq (toString (default "" .credentials)) "imagepullsecrets" -}}
{{- $used = true -}}
{{- $entryWide := not .namespaces -}}
{{- range .namespaces -}}
{{- if regexMatch "[*?\\[\\\\]" (toString .) -}}
{{- $entryWide = true -}}
{{- else if not (has (toString .) $nss) -}}
{{- $nss = append $nss (toString .) -}}
{{- end -}}
{{- end -}}
{{- if $entryWide -}}
{{- $clusterWide = true -}}
{{- $wide = append $wide (printf "%q" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "used" $used "clusterWide" $clusterWide "clusterWideEntries" $wide "namespaces" $nss) -}}
{{- end -}}

{{/* webhookConfigName: the MutatingWebhookConfiguration, which --webhook-config-name and doctor name. */}}
{{- define "image-pin-webhook.webhookConfigName" -}}
{{- include "image-pin-webhook.fullname" . -}}
{{- end -}}

{{/* certGenerator: cert-manager, webhook or helm: who makes the serving certificate. */}}
{{- define "image-pin-webhook.certGenerator" -}}
{{- if .Values.certManager.enabled -}}
cert-manager
{{- else -}}
{{- .Values.certificates.generator -}}
{{- end -}}
{{- end -}}

{{/* seconds: a Go duration (as the schema admits: 8s, 1m30s, 1.5h, 0) in seconds, as a float. */}}
{{- define "image-pin-webhook.seconds" -}}
{{- $total := 0.0 -}}
{{- $units := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "μs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 -}}
{{- range regexFindAll "([0-9]+\\.?[0-9]*|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)" (toString .) -1 -}}
{{- $num := regexFind "^[0-9.]+" . -}}
{{- $unit := trimPrefix $num . -}}
{{- $total = addf $total (mulf (float64 $num) (get $units $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
