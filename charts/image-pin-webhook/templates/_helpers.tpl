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
     {"used": bool, "clusterWide": bool, "namespaces": [...]}: cluster-wide unless every such entry lists its namespaces without globs. */}}
{{- define "image-pin-webhook.pullSecretsScope" -}}
{{- $used := false -}}
{{- $clusterWide := false -}}
{{- $nss := list -}}
{{- range .Values.registries -}}
{{- if eq (toString (default "" .credentials)) "imagepullsecrets" -}}
{{- $used = true -}}
{{- if not .namespaces -}}
{{- $clusterWide = true -}}
{{- end -}}
{{- range .namespaces -}}
{{- if regexMatch "[*?\\[\\\\]" (toString .) -}}
{{- $clusterWide = true -}}
{{- else if not (has (toString .) $nss) -}}
{{- $nss = append $nss (toString .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "used" $used "clusterWide" $clusterWide "namespaces" $nss) -}}
{{- end -}}
