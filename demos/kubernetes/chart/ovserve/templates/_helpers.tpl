{{/* The chart's name, or nameOverride. */}}
{{- define "ovserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource names: fullnameOverride, else the release name when it already holds the chart's
name (release "ovserve" -> "ovserve"), else RELEASE-NAME, as `helm create` does. */}}
{{- define "ovserve.fullname" -}}
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

{{- define "ovserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ovserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ovserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The standard labels (`helm create`'s, plus the component). */}}
{{- define "ovserve.labels" -}}
helm.sh/chart: {{ include "ovserve.chart" . }}
{{ include "ovserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: model-server
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ovserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ovserve.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
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

{{/* Refuse what cannot work: more than one pod on one ReadWriteOnce volume (each pod may land on
another node, which cannot mount it), and an HPA whose metric nothing serves. Included by the
Deployment, so `helm template` / `install` fail before anything is applied. */}}
{{- define "ovserve.checks" -}}
{{- $scaling := .Values.autoscaling -}}
{{- if and $scaling.enabled (not $scaling.metricsAdapter) -}}
{{- fail "autoscaling.enabled needs autoscaling.metricsAdapter: name what serves the HPA's custom metric (e.g. prometheus-adapter; see demos/kubernetes/prometheus-adapter/)" -}}
{{- end -}}
{{- $pods := ternary $scaling.maxReplicas .Values.replicaCount (and $scaling.enabled true) | int -}}
{{- if gt $pods 1 -}}
{{- $repo := .Values.modelRepository -}}
{{- $perPod := and (eq $repo.volume "emptyDir") $repo.pull.enabled -}}
{{- $rwx := has "ReadWriteMany" $repo.pvc.accessModes -}}
{{- $rox := and (has "ReadOnlyMany" $repo.pvc.accessModes) (not $repo.pull.enabled) -}}
{{- $shared := and (eq $repo.volume "pvc") (or $rwx $rox) -}}
{{- if not (or $perPod $shared) -}}
{{- fail (printf "%d replicas need a model volume every pod can mount: modelRepository.pvc.accessModes [ReadWriteMany] (or [ReadOnlyMany] for a model put there beforehand), or modelRepository.volume=emptyDir with modelRepository.pull.enabled (each pod downloads the model)" $pods) -}}
{{- end -}}
{{- end -}}
{{- end -}}
