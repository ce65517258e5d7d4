{{/* validate: what the schema cannot say, refused at render time with what to set. */}}
{{- define "image-pin-webhook.validate" -}}
{{- $rt := 8.0 -}}
{{- with .Values.policy.resolve_timeout -}}
{{- $s := include "image-pin-webhook.seconds" . | float64 -}}
{{- if gt $s 0.0 -}}{{- $rt = $s -}}{{- end -}}
{{- end -}}
{{- $timeout := float64 .Values.webhook.timeoutSeconds -}}
{{- if gt (addf $rt 2.0) $timeout -}}
{{- fail (printf "policy.resolve_timeout (%v) must be at least 2s below webhook.timeoutSeconds (%v): the API server gives up at timeoutSeconds and admits the object unpinned (failurePolicy Ignore) before the webhook can answer. Lower policy.resolve_timeout or raise webhook.timeoutSeconds (at most 30)." (default "8s" .Values.policy.resolve_timeout) .Values.webhook.timeoutSeconds) -}}
{{- end -}}
{{- with .Values.networkPolicy -}}
{{- if hasKey . "apiServerCIDRs" -}}
{{- fail "networkPolicy.apiServerCIDRs is now networkPolicy.apiServer.cidrs (and 0.0.0.0/0 is no longer assumed): name the API server's addresses there, or use networkPolicy.apiServer.peers or .ciliumEntities; see docs/install.md, NetworkPolicy." -}}
{{- end -}}
{{- if and .enabled (not .apiServer.cidrs) (not .apiServer.peers) (not .apiServer.ciliumEntities) -}}
{{- fail "networkPolicy.enabled=true needs to know where the API server's requests come from, else the NetworkPolicy blocks it and every admission waits webhook.timeoutSeconds and passes unpinned: set networkPolicy.apiServer.cidrs (e.g. [172.18.0.0/24], the control plane's addresses), networkPolicy.apiServer.peers (NetworkPolicy peers), or on Cilium networkPolicy.apiServer.ciliumEntities (e.g. [kube-apiserver]); see docs/install.md, NetworkPolicy." -}}
{{- end -}}
{{- end -}}
{{- with .Values.clientCA -}}
{{- if and .secretName .configMapName -}}
{{- fail "clientCA: set secretName or configMapName, not both" -}}
{{- end -}}
{{- if and .certName (not .secretName) (not .configMapName) -}}
{{- fail "clientCA.certName needs the CA that signs that certificate: set clientCA.secretName or clientCA.configMapName" -}}
{{- end -}}
{{- end -}}
{{- $pull := include "image-pin-webhook.pullSecretsScope" . | fromJson -}}
{{- if and $pull.clusterWide (not .Values.rbac.pullSecrets.clusterWide) -}}
{{- fail (printf "registries %s: credentials: imagepullsecrets with namespaces that are not all literal names (none, or a glob) needs get on every Secret and ServiceAccount in the cluster. List the namespaces by name, or set rbac.pullSecrets.clusterWide=true to grant it; see docs/install.md, RBAC." (join ", " $pull.clusterWideEntries)) -}}
{{- end -}}
{{- end -}}
