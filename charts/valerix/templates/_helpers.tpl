{{/* Names are fixed per component (order-api, inventory-db, ...): one release per namespace. */}}

{{- define "valerix.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: valerix
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: valerix
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "order-api") */}}
{{- define "valerix.selectorLabels" -}}
app.kubernetes.io/name: valerix
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "valerix.componentLabels" -}}
{{ include "valerix.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "valerix.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}:{{ $tag }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{- define "valerix.busIsPostgres" -}}
{{- if eq .Values.bus.backend "postgres" }}true{{ end -}}
{{- end }}

{{/* Pod-level hardening shared by every pod: (dict "uid" 10001) */}}
{{- define "valerix.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "valerix.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Volumes every valerix container writes to (the root filesystem is read-only). */}}
{{- define "valerix.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
- name: metrics
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- include "valerix.dbCaVolume" . }}
{{- end }}

{{- define "valerix.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: metrics
  mountPath: {{ .Values.metricsDir }}
{{- include "valerix.dbCaMount" . }}
{{- end }}

{{/* TLS to an external PostgreSQL (externalDatabase.tls): every container that gets valerix.env
     (and so a database URL) also gets these scratch mounts, so the CA rides along with them.
     libpq reads PGSSLMODE/PGSSLROOTCERT for every connection whose URL does not say otherwise:
     the app, the migrations, and the backups' pg_dump alike. */}}
{{- define "valerix.dbTls" -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if and (not .Values.postgresql.enabled) $t.sslMode -}}
{{- if and (has $t.sslMode (list "verify-ca" "verify-full")) (not $t.caConfigMap) -}}
{{- fail (printf "externalDatabase.tls.caConfigMap is required when externalDatabase.tls.sslMode=%s" $t.sslMode) -}}
{{- end -}}
true
{{- end -}}
{{- end }}

{{- define "valerix.dbCaVolume" -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if and (include "valerix.dbTls" .) $t.caConfigMap }}
- name: db-ca
  configMap:
    name: {{ $t.caConfigMap }}
    items:
      - {key: {{ $t.caKey }}, path: {{ $t.caKey }}}
{{- end }}
{{- end }}

{{- define "valerix.dbCaMount" -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if and (include "valerix.dbTls" .) $t.caConfigMap }}
- name: db-ca
  mountPath: {{ $t.caMountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "valerix.dbTlsEnv" -}}
{{- $t := .Values.externalDatabase.tls -}}
{{- if include "valerix.dbTls" . }}
- name: PGSSLMODE
  value: {{ $t.sslMode | quote }}
{{- if $t.caConfigMap }}
- name: PGSSLROOTCERT
  value: {{ printf "%s/%s" $t.caMountPath $t.caKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The PostgreSQL image, by digest when the values give one. */}}
{{- define "valerix.pgImage" -}}
{{- $i := .Values.postgresql.image -}}
{{- if $i.digest -}}
{{ $i.repository }}:{{ $i.tag }}@{{ $i.digest }}
{{- else -}}
{{ $i.repository }}:{{ $i.tag }}
{{- end -}}
{{- end }}

{{- define "valerix.chaosVolume" -}}
- name: chaos
  configMap:
    name: {{ .Values.chaos.configMapName }}
{{- end }}

{{/* No subPath: the kubelet then refreshes the files when the ConfigMap changes. */}}
{{- define "valerix.chaosMount" -}}
- name: chaos
  mountPath: {{ .Values.chaos.mountPath }}
  readOnly: true
{{- end }}

{{/* One database URL variable: (dict "ctx" $ "db" "order" "var" "ORDER_DATABASE_URL").
     In-cluster: composed from the credentials Secret with $(VAR) expansion, so the
     password is never rendered into the manifest. External: read from the user's Secret. */}}
{{- define "valerix.databaseUrlEnv" -}}
{{- $v := .ctx.Values -}}
{{- if $v.postgresql.enabled }}
{{- $dbv := index $v.postgresql.databases .db }}
- name: {{ upper .db }}_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "valerix.dbSecretName" (dict "ctx" .ctx "db" .db) }}
      key: password
- name: {{ .var }}
  value: {{ printf "postgresql://%s:$(%s_DB_PASSWORD)@%s-db:%d/%s" $dbv.user (upper .db) .db (int $v.postgresql.port) $dbv.name | quote }}
{{- else }}
- name: {{ .var }}
  valueFrom:
    secretKeyRef:
      name: {{ required "externalDatabase.existingSecret is required when postgresql.enabled=false" $v.externalDatabase.existingSecret }}
      key: {{ index $v.externalDatabase.keys .db }}
{{- end }}
{{- end }}

{{- define "valerix.authSecretName" -}}
{{- .Values.auth.existingSecret | default "order-auth-signing-key" -}}
{{- end }}

{{- define "valerix.dbSecretName" -}}
{{- $dbv := index .ctx.Values.postgresql.databases .db -}}
{{- $dbv.existingSecret | default (printf "%s-db-credentials" .db) -}}
{{- end }}

{{/* Environment of a valerix container: (dict "ctx" $ "service" "order" "extra" map). Each
     pod gets only the database URLs of the service it belongs to. */}}
{{- define "valerix.env" -}}
{{- $v := .ctx.Values -}}
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
- name: HOME
  value: /tmp
- name: PROMETHEUS_MULTIPROC_DIR
  value: {{ $v.metricsDir | quote }}
- name: CHAOS_DIR
  value: {{ $v.chaos.mountPath | quote }}
- name: BUS_BACKEND
  value: {{ $v.bus.backend | quote }}
- name: PUBLISH_EVENTS
  value: {{ $v.events.publish | quote }}
{{- include "valerix.dbTlsEnv" .ctx }}
{{- if eq .service "order" }}
{{- include "valerix.databaseUrlEnv" (dict "ctx" .ctx "db" "order" "var" "ORDER_DATABASE_URL") }}
- name: AUTH_SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "valerix.authSecretName" .ctx }}
      key: {{ $v.auth.signingKeyKey }}
- name: INVENTORY_GRPC_TARGET
  value: {{ printf "inventory-api:%d" (int $v.inventory.api.grpcPort) | quote }}
{{- else if eq .service "inventory" }}
{{- include "valerix.databaseUrlEnv" (dict "ctx" .ctx "db" "inventory" "var" "INVENTORY_DATABASE_URL") }}
{{- else if eq .service "backup" }}
{{- include "valerix.databaseUrlEnv" (dict "ctx" .ctx "db" "order" "var" "ORDER_DATABASE_URL") }}
{{- include "valerix.databaseUrlEnv" (dict "ctx" .ctx "db" "inventory" "var" "INVENTORY_DATABASE_URL") }}
{{- end }}
{{- if eq $v.bus.backend "postgres" }}
{{- include "valerix.databaseUrlEnv" (dict "ctx" .ctx "db" "bus" "var" "BUS_DATABASE_URL") }}
{{- else if ne .service "backup" }}
- name: SERVICE_BUS_CONNECTION_STRING
  valueFrom:
    secretKeyRef:
      name: {{ required "bus.azure.existingSecret is required when bus.backend=azure" $v.bus.azure.existingSecret }}
      key: {{ $v.bus.azure.connectionStringKey }}
{{- end }}
{{- range $name, $value := .extra }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* Init containers of an app pod: wait for in-cluster databases, then migrate (idempotent,
     advisory-locked, so every replica may run it). (dict "ctx" $ "service" "order" "bus" true) */}}
{{- define "valerix.initContainers" -}}
{{- $v := .ctx.Values -}}
{{- $dbs := list .service -}}
{{- if and .bus (eq $v.bus.backend "postgres") }}{{ $dbs = append $dbs "bus" }}{{ end -}}
{{- if $v.postgresql.enabled }}
- name: wait-for-db
  image: {{ include "valerix.pgImage" .ctx | quote }}
  imagePullPolicy: {{ $v.postgresql.image.pullPolicy }}
  command: ["sh", "-c"]
  args:
    - |
      for host in {{ range $dbs }}{{ . }}-db {{ end }}; do
        until pg_isready -q -h "$host" -p {{ $v.postgresql.port }} -U postgres -d postgres -t 2; do echo "waiting for $host"; sleep 2; done
      done
  securityContext:
    {{- include "valerix.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml $v.initResources | nindent 4 }}
{{- end }}
- name: migrate
  image: {{ include "valerix.image" .ctx | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: ["migrate", {{ .service | quote }}]
  env:
    {{- include "valerix.env" (dict "ctx" .ctx "service" .service) | nindent 4 }}
  volumeMounts:
    {{- include "valerix.scratchMounts" .ctx | nindent 4 }}
  securityContext:
    {{- include "valerix.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml $v.initResources | nindent 4 }}
{{- if and .bus (eq $v.bus.backend "postgres") }}
- name: migrate-bus
  image: {{ include "valerix.image" .ctx | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: ["migrate", "bus"]
  env:
    {{- include "valerix.env" (dict "ctx" .ctx "service" .service) | nindent 4 }}
  volumeMounts:
    {{- include "valerix.scratchMounts" .ctx | nindent 4 }}
  securityContext:
    {{- include "valerix.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml $v.initResources | nindent 4 }}
{{- end }}
{{- end }}

{{- define "valerix.httpProbes" -}}
startupProbe:
  httpGet: {path: /health/live, port: {{ .port }}}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /health/live, port: {{ .port }}}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: {{ .readinessPath | default "/health/ready" }}, port: {{ .port }}}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}

{{/* gRPC service credential (issue 16): the Secret and the variable that carries it. Only the
     order api (caller) and inventory-api (server) get it. */}}
{{- define "valerix.grpcTokenSecretName" -}}
{{- .Values.grpcAuth.existingSecret | default "valerix-grpc-token" -}}
{{- end }}

{{- define "valerix.grpcTokenEnv" -}}
- name: INVENTORY_GRPC_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "valerix.grpcTokenSecretName" . }}
      key: {{ .Values.grpcAuth.key }}
{{- end }}
