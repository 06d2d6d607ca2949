{{/* "true" when ServiceMonitor and PrometheusRule may be rendered: the cluster serves the
     Prometheus Operator's API (monitoring.coreos.com/v1), or monitoring.assumeOperatorCRDs says it
     will (offline rendering: `helm template`, Tilt, GitOps tools). Helm rejects unknown kinds, so
     an install on a cluster without the operator must not contain them. */}}
{{- define "valerix.operatorApi" -}}
{{- if or .Values.monitoring.assumeOperatorCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end -}}
{{- end }}

{{/* PROMETHEUS_URL of the order api (the storefront's alert lights): order.api.prometheusUrl when
     set, else the operator's Prometheus (monitoring.prometheusUrl) whenever the chart installs
     the alert rules there; empty otherwise (the lights then say "unknown"). */}}
{{- define "valerix.prometheusUrl" -}}
{{- $m := .Values.monitoring -}}
{{- if .Values.order.api.prometheusUrl -}}
{{ .Values.order.api.prometheusUrl }}
{{- else if and $m.prometheusRule.enabled (include "valerix.operatorApi" .) -}}
{{ $m.prometheusUrl }}
{{- end -}}
{{- end }}
