{{/* ServiceAccount + Deployment + PodDisruptionBudget of one valerix process role.
     Params: ctx, component (order-api), service (order|inventory), values (its values block),
     args (valerix arguments), ports (containerPorts), probes (YAML), env (extra variables),
     hpa (bool: the HPA owns replicas), grpcToken (bool: gets INVENTORY_GRPC_TOKEN). */}}
{{- define "valerix.workload" -}}
{{- $v := .ctx.Values -}}
{{- $sel := include "valerix.selectorLabels" (dict "ctx" .ctx "component" .component) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .component }}
  labels:
    {{- include "valerix.componentLabels" . | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .component }}
  labels:
    {{- include "valerix.componentLabels" . | nindent 4 }}
spec:
  {{- if not .hpa }}
  replicas: {{ .values.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "valerix.componentLabels" . | nindent 8 }}
        valerix.io/service: {{ .service }}
      annotations:
        # Roll the pods when the chaos defaults change (the mounted files update live anyway).
        checksum/chaos: {{ toJson $v.chaos | sha256sum | trunc 16 }}
    spec:
      serviceAccountName: {{ .component }}
      automountServiceAccountToken: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "valerix.podSecurityContext" (dict "uid" $v.podSecurity.uid) | nindent 8 }}
      terminationGracePeriodSeconds: 30
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- $sel | nindent 14 }}
      initContainers:
        {{- include "valerix.initContainers" (dict "ctx" .ctx "service" .service "bus" true) | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "valerix.image" .ctx | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: {{ toJson .args }}
          ports:
            {{- toYaml .ports | nindent 12 }}
          env:
            {{- include "valerix.env" (dict "ctx" .ctx "service" .service "extra" (merge (dict) .values.env .env)) | nindent 12 }}
            {{- if .grpcToken }}
            {{- include "valerix.grpcTokenEnv" .ctx | nindent 12 }}
            {{- end }}
          {{- .probes | nindent 10 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- include "valerix.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "valerix.scratchMounts" .ctx | nindent 12 }}
            {{- include "valerix.chaosMount" .ctx | nindent 12 }}
      volumes:
        {{- include "valerix.scratchVolumes" .ctx | nindent 8 }}
        {{- include "valerix.chaosVolume" .ctx | nindent 8 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .component }}
  labels:
    {{- include "valerix.componentLabels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- $sel | nindent 6 }}
{{- end }}

{{/* HorizontalPodAutoscaler for an api: (dict "ctx" $ "component" "order-api" "values" ...) */}}
{{- define "valerix.hpa" -}}
{{- if .values.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .component }}
  labels:
    {{- include "valerix.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .component }}
  minReplicas: {{ .values.autoscaling.minReplicas }}
  maxReplicas: {{ .values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .values.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end }}

{{/* NetworkPolicy peers */}}
{{- define "valerix.peer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/instance: {{ .ctx.Release.Name }}
      {{- range $k, $val := .labels }}
      {{ $k }}: {{ $val | quote }}
      {{- end }}
{{- end }}

{{- define "valerix.prometheusPeer" -}}
- namespaceSelector:
    matchLabels: {{ toJson .Values.networkPolicy.prometheus.namespaceSelector }}
  podSelector:
    matchLabels: {{ toJson .Values.networkPolicy.prometheus.podSelector }}
{{- end }}

{{/* Egress of an app pod to the databases it uses: (dict "ctx" $ "dbs" (list "order" "bus")) */}}
{{- define "valerix.dbEgress" -}}
{{- $v := .ctx.Values -}}
{{- if $v.postgresql.enabled }}
{{- range .dbs }}
{{- if or (ne . "bus") (eq $v.bus.backend "postgres") }}
- to:
    {{- include "valerix.peer" (dict "ctx" $.ctx "labels" (dict "app.kubernetes.io/component" (printf "%s-db" .))) | nindent 4 }}
  ports:
    - {port: {{ $v.postgresql.port }}, protocol: TCP}
{{- end }}
{{- end }}
{{- end }}
{{- if not $v.postgresql.enabled }}
{{- include "valerix.externalEgress" (dict "name" "postgres" "rule" $v.networkPolicy.external.postgres) }}
{{- end }}
{{- if and (has "bus" .dbs) (eq $v.bus.backend "azure") (ternary .broker true (hasKey . "broker")) }}
{{- include "valerix.externalEgress" (dict "name" "serviceBus" "rule" $v.networkPolicy.external.serviceBus) }}
{{- end }}
{{- with $v.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Egress to a service outside the cluster, only to the ranges the values name (never
     0.0.0.0/0). (dict "name" "postgres" "rule" .Values.networkPolicy.external.postgres) */}}
{{- define "valerix.externalEgress" -}}
{{- if not .rule.cidrs }}
{{- fail (printf "networkPolicy.external.%s.cidrs: name the address ranges of the external %s (its subnet or private endpoint)" .name .name) }}
{{- end }}
- to:
    {{- range .rule.cidrs }}
    {{- if hasSuffix "/0" . }}
    {{- fail (printf "networkPolicy.external.%s.cidrs: %s opens egress to the whole internet; name the service's ranges" $.name .) }}
    {{- end }}
    - ipBlock: {cidr: {{ . | quote }}}
    {{- end }}
  ports:
    {{- range .rule.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
