{{/* Resource names: the release name (the default render uses release "ovserve"). */}}
{{- define "ovserve.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ovserve.selectorLabels" -}}
app.kubernetes.io/name: ovserve
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ovserve.labels" -}}
{{ include "ovserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: model-server
{{- end -}}

{{- define "ovserve.claimName" -}}
{{- if .Values.modelRepository.pvc.create -}}
{{ include "ovserve.fullname" . }}-models
{{- else -}}
{{ required "modelRepository.pvc.existingClaim is required when modelRepository.pvc.create is false" .Values.modelRepository.pvc.existingClaim }}
{{- end -}}
{{- end -}}

{{/* OVMS's config.json: one model_config_list entry per model, base_path in the model repository. */}}
{{- define "ovserve.configJson" -}}
{{- $entries := list -}}
{{- range .Values.models -}}
{{- $entries = append $entries (dict "config" (dict "name" .name "base_path" (printf "%s/%s" $.Values.modelRepository.mountPath .basePath))) -}}
{{- end -}}
{{- dict "model_config_list" $entries | toPrettyJson -}}
{{- end -}}
