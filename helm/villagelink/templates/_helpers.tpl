{{/* The release's name for its objects, at most 63 characters (a DNS label). */}}
{{- define "villagelink.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "villagelink" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-villagelink" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "villagelink.selectorLabels" -}}
app.kubernetes.io/name: villagelink
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "villagelink.labels" -}}
{{ include "villagelink.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* The Secret the pods read DATABASE_URL, REDIS_URL and the other secrets from. */}}
{{- define "villagelink.secretName" -}}
{{- .Values.secret.existingSecret | default (include "villagelink.fullname" .) -}}
{{- end -}}

{{/*
The ConfigMap's data: every non-secret variable platform/settings.py reads, under its own
name. Empty values are left out, because the settings take an empty string as set (an empty
KEYCLOAK_REALM would be the realm ""); the image's layout fixes the rest.
*/}}
{{- define "villagelink.configData" -}}
{{- range $name, $value := .Values.config }}
{{- if ne (toString $value) "" }}
{{- /* YAML numbers may arrive as floats, which toString would print as 1.048576e+06. */}}
{{ $name }}: {{ (kindIs "float64" $value | ternary (int64 $value) $value) | toString | quote }}
{{- end }}
{{- end }}
VILLAGELINK_HOST: "0.0.0.0"
VILLAGELINK_PORT: "8000"
LIVE_PORT: "8001"
{{- if not .Values.config.LIVE_PUBLIC_URL }}
# The Ingress sends /graphql/stream to the live process on the gateway's own host.
LIVE_PUBLIC_URL: {{ .Values.config.VILLAGELINK_PUBLIC_URL | quote }}
{{- end }}
CONSOLE_DIST: /opt/villagelink/console
# The only writable place of a pod is its /tmp (an emptyDir): gunicorn's metrics files.
VILLAGELINK_VAR_DIR: /tmp/villagelink
HOME: /tmp
{{- end -}}

{{/* The Secret's data (when the chart makes it): only the keys that hold a value. */}}
{{- define "villagelink.secretData" -}}
{{- range $name, $value := .Values.secret }}
{{- if and (ne $name "existingSecret") (ne (toString $value) "") }}
{{ $name }}: {{ toString $value | b64enc | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The pod template every role shares: the image with one `villagelink` role, non-root with a
read-only root filesystem and an emptyDir for /tmp, configured only by the ConfigMap and the
Secret. Called with a dict: root, component, args, resources, and optionally ports, probes,
terminationGracePeriodSeconds, restartPolicy, configMap (the hook's own for the migration).
*/}}
{{- define "villagelink.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "villagelink.selectorLabels" . | nindent 4 }}
  annotations:
    # A changed configuration rolls the pods (they read it only at start).
    checksum/config: {{ include "villagelink.configData" $root | sha256sum }}
    checksum/secret: {{ include "villagelink.secretData" $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- if .serviceAccount }}
  serviceAccountName: {{ .serviceAccount }}
  {{- end }}
  # No role talks to the Kubernetes API.
  automountServiceAccountToken: false
  {{- with .restartPolicy }}
  restartPolicy: {{ . }}
  {{- end }}
  {{- with .terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.topologySpread }}
  {{- if .enabled }}
  # Replicas of one role on different nodes (zones, with that key): a node lost is not the role lost.
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: {{ .topologyKey }}
      whenUnsatisfiable: {{ .whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "villagelink.selectorLabels" $ | nindent 10 }}
  {{- end }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ printf "%s:%s" $root.Values.image.repository ($root.Values.image.tag | default $root.Chart.AppVersion) | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ .configMap | default (include "villagelink.fullname" $root) }}
        - secretRef:
            name: {{ .secret | default (include "villagelink.secretName" $root) }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .probes }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
{{- end -}}

{{- define "villagelink.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "villagelink.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* What the schema cannot say: rules across values, each with its own message. */}}
{{- define "villagelink.validate" -}}
{{- with .Values.config }}
{{- if and (eq .VILLAGELINK_ENV "production") (not .KEYCLOAK_URL) (not .OIDC_ISSUER) }}
{{- fail "config.KEYCLOAK_URL or config.OIDC_ISSUER is required in production: the development issuer refuses to start there / 生产环境需要设置 config.KEYCLOAK_URL 或 config.OIDC_ISSUER" }}
{{- end }}
{{- end }}
{{- with .Values.gateway.autoscaling }}
{{- if and .enabled (gt (int .minReplicas) (int .maxReplicas)) }}
{{- fail (printf "gateway.autoscaling.minReplicas (%d) is above maxReplicas (%d) / 网关自动扩缩容的最小副本数大于最大副本数" (int .minReplicas) (int .maxReplicas)) }}
{{- end }}
{{- end }}
{{- end -}}
