{{- define "drillbot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "drillbot.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "drillbot.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "drillbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "drillbot.fullname" .) -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "drillbot.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- /* The CRD upgrade hook's pod (not drillbot's selector labels). */ -}}
{{- define "drillbot.crdHookSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-crd-upgrade
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: crd-upgrade
{{- end -}}

{{- /* The evidence archive: fails, naming every missing value, when it is
enabled without what it needs; renders nothing. */ -}}
{{- define "drillbot.archiveCheck" -}}
{{- $a := .Values.archive -}}
{{- if $a.enabled -}}
{{- $missing := list -}}
{{- if not $a.url -}}
{{- $missing = append $missing "archive.url (the bucket: s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION])" -}}
{{- end -}}
{{- if not $a.clusterName -}}
{{- $missing = append $missing "archive.clusterName (this cluster's name in the records)" -}}
{{- end -}}
{{- if not $a.credentialsSecret -}}
{{- $missing = append $missing "archive.credentialsSecret (a Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)" -}}
{{- end -}}
{{- if not $a.keySecret -}}
{{- $missing = append $missing "archive.keySecret (a Secret with the PEM private key that signs the records: drillbot evidence keygen)" -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "archive.enabled needs %s; see docs/auditors.md" (join ", " $missing)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
