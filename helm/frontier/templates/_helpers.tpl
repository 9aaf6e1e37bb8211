{{/* Names and labels. */}}
{{- define "frontier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "frontier.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "frontier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "frontier.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "frontier.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "frontier.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Every Ray pod of the release carries component=ray; NetworkPolicies select on it. */}}
{{- define "frontier.raySelectorLabels" -}}
{{ include "frontier.selectorLabels" . }}
app.kubernetes.io/component: ray
{{- end }}

{{- define "frontier.redisSelectorLabels" -}}
{{ include "frontier.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "frontier.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "frontier.serveServiceName" -}}
{{- printf "%s-openai" (include "frontier.fullname" .) }}
{{- end }}

{{- define "frontier.redisName" -}}
{{- printf "%s-redis" (include "frontier.fullname" .) }}
{{- end }}

{{/* The Secret and key holding FRONTIER_REDIS_URL. */}}
{{- define "frontier.redisUrlSecret" -}}
{{- if eq .Values.redis.mode "external" }}
{{- default (printf "%s-redis-url" (include "frontier.fullname" .)) .Values.redis.external.existingSecret }}
{{- else }}
{{- default (include "frontier.redisName" .) .Values.redis.bundled.existingSecret }}
{{- end }}
{{- end }}

{{- define "frontier.redisUrlKey" -}}
{{- if eq .Values.redis.mode "external" }}{{ .Values.redis.external.urlKey }}{{ else }}{{ .Values.redis.bundled.urlKey }}{{ end }}
{{- end }}

{{- define "frontier.apiKeysSecret" -}}
{{- if .Values.apiKeys.generate }}
{{- printf "%s-api-keys" (include "frontier.fullname" .) }}
{{- else }}
{{- .Values.apiKeys.existingSecret }}
{{- end }}
{{- end }}

{{/* GPUs one replica of a pool needs: num_gpus per worker x tensor x pipeline parallel workers. */}}
{{- define "frontier.gpusPerReplica" -}}
{{- $pool := index .root.Values.frontier.pools .pool }}
{{- $res := default dict $pool.resources }}
{{- $args := default dict $pool.engine_args }}
{{- $workers := mul (default 1 $args.tensor_parallel_size) (default 1 $args.pipeline_parallel_size) }}
{{- mulf (default 0 $res.num_gpus) $workers }}
{{- end }}

{{- define "frontier.cpusPerReplica" -}}
{{- $pool := index .root.Values.frontier.pools .pool }}
{{- $res := default dict $pool.resources }}
{{- $args := default dict $pool.engine_args }}
{{- $workers := mul (default 1 $args.tensor_parallel_size) (default 1 $args.pipeline_parallel_size) }}
{{- /* PoolConfig.resources.num_cpus defaults to 1. */}}
{{- mulf (hasKey $res "num_cpus" | ternary $res.num_cpus 1) $workers }}
{{- end }}

{{/* CPUs Ray sees on a pod of a group: its CPU limit (or request), as a number. */}}
{{- define "frontier.podCpus" -}}
{{- $r := default dict .resources }}
{{- $q := toString (coalesce (dig "limits" "cpu" "" $r) (dig "requests" "cpu" "" $r) "0") }}
{{- if hasSuffix "m" $q }}{{ divf (trimSuffix "m" $q | float64) 1000 }}{{ else }}{{ float64 $q }}{{ end }}
{{- end }}

{{/* autoscaling.min_replicas / max_replicas with AutoscalingConfig's default of 1 (0 is a valid minimum). */}}
{{- define "frontier.replicas" -}}
{{- $a := default dict .autoscaling }}
{{- hasKey $a .bound | ternary (index $a .bound) 1 }}
{{- end }}

{{/* Pods of a pool's worker group for a number of replicas, rounded up. */}}
{{- define "frontier.poolPods" -}}
{{- $group := index .root.Values.ray.pools .pool }}
{{- $gpr := include "frontier.gpusPerReplica" (dict "root" .root "pool" .pool) | float64 }}
{{- if and (gt $gpr 0.0) (gt (float64 $group.gpus) 0.0) }}
{{- ceil (divf (mulf .replicas $gpr) $group.gpus) | int }}
{{- else }}
{{- .replicas | int }}
{{- end }}
{{- end }}

{{/* The FrontierConfig given to the application: .Values.frontier plus the node-group custom resources. */}}
{{- define "frontier.config" -}}
{{- $cfg := deepCopy .Values.frontier }}
{{- range $name := list "light" "reasoning" }}
{{- $pool := index $cfg.pools $name }}
{{- $res := default dict $pool.resources }}
{{- $custom := default dict $res.custom_resources }}
{{- $_ := set $custom (printf "frontier-%s" $name) 1 }}
{{- $_ = set $res "custom_resources" $custom }}
{{- $_ = set $pool "resources" $res }}
{{- end }}
{{- $router := default dict $cfg.router }}
{{- $custom := default dict $router.custom_resources }}
{{- $_ := set $custom "frontier-router" 1 }}
{{- $_ = set $router "custom_resources" $custom }}
{{- $_ = set $cfg "router" $router }}
{{- toYaml $cfg }}
{{- end }}

{{/* serveConfigV2: the shape of frontier.serving.app.serve_config(), with the config above as args. */}}
{{- define "frontier.serveConfig" -}}
{{- $server := default dict .Values.frontier.server }}
{{- $http := dict "host" "0.0.0.0" "port" (default 8000 $server.port) "request_timeout_s" (default 600.0 $server.request_timeout_s) }}
{{- $app := dict "name" (default "frontier" $server.app_name) "route_prefix" "/" "import_path" "frontier.serving.app:app_builder" "args" (dict "config" (include "frontier.config" . | fromYaml)) }}
{{- toYaml (dict "proxy_location" "EveryNode" "http_options" $http "applications" (list $app)) }}
{{- end }}

{{/* Longest pool graceful shutdown (PoolConfig default 600 s). */}}
{{- define "frontier.maxGracefulShutdown" -}}
{{- $max := 0.0 }}
{{- range $name := list "light" "reasoning" }}
{{- $t := float64 (default 600 (index $.Values.frontier.pools $name).graceful_shutdown_timeout_s) }}
{{- if gt $t $max }}{{ $max = $t }}{{ end }}
{{- end }}
{{- $max | ceil | int }}
{{- end }}

{{/* Environment shared by all Ray containers: secrets by reference only, caches under writable mounts. */}}
{{- define "frontier.rayEnv" -}}
- name: FRONTIER_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "frontier.redisUrlSecret" . }}
      key: {{ include "frontier.redisUrlKey" . }}
- name: FRONTIER_API_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "frontier.apiKeysSecret" . }}
      key: {{ .Values.apiKeys.key }}
{{- with .Values.ray.hfToken.existingSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.ray.hfToken.key }}
{{- end }}
- name: HF_HOME
  value: /models/huggingface
- name: XDG_CACHE_HOME
  value: /tmp/cache
- name: XDG_CONFIG_HOME
  value: /tmp/config
- name: TRITON_CACHE_DIR
  value: /tmp/cache/triton
- name: VLLM_NO_USAGE_STATS
  value: "1"
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
{{- /* What an idle stack spends, cut as `frontier serve` cuts it (frontier.cli.serve.IDLE_ENV). */}}
- name: RAY_SERVE_METRICS_EXPORT_INTERVAL_MS
  value: "1000"
- name: RAY_event_stats
  value: "0"
- name: RAY_LOG_MONITOR_MANY_FILES_THRESHOLD
  value: "0"
- name: RAY_num_workers_soft_limit
  value: "0"
{{- if .Values.ray.throughputOptimized }}
- name: RAY_SERVE_THROUGHPUT_OPTIMIZED
  value: "1"
- name: RAY_SERVE_ENABLE_DIRECT_INGRESS
  value: "0"
- name: RAY_SERVE_CONTROL_LOOP_INTERVAL_S
  value: "0.5"
{{- end }}
{{- if .Values.ray.haproxy }}
- name: RAY_SERVE_ENABLE_HA_PROXY
  value: "1"
{{- end }}
{{- with .Values.ray.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "frontier.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnlyRootFilesystem }}
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Checks the schema cannot express, with messages that name the values to change. */}}
{{- define "frontier.validate" -}}
{{- if and (not .Values.apiKeys.generate) (not .Values.apiKeys.existingSecret) }}
{{- fail "apiKeys: set apiKeys.existingSecret to a Secret with the API keys, or apiKeys.generate=true" }}
{{- end }}
{{- if and (eq .Values.redis.mode "external") (not .Values.redis.external.url) (not .Values.redis.external.existingSecret) }}
{{- fail "redis.mode=external needs redis.external.existingSecret or redis.external.url" }}
{{- end }}
{{- with (default dict .Values.frontier.redis).url }}
{{- fail "frontier.redis.url must stay unset: it would put the Redis password into serveConfigV2. Use redis.mode (bundled or external); the URL reaches the Ray pods as FRONTIER_REDIS_URL from a Secret" }}
{{- end }}
{{- $router := default dict .Values.frontier.router }}
{{- if not (or (kindIs "invalid" $router.reasoning_share) (kindIs "invalid" $router.price_weight)) }}
{{- fail "frontier.router: set at most one cost knob: reasoning_share or price_weight" }}
{{- end }}
{{- $scalers := dict "frontier.router.autoscaling" (default dict $router.autoscaling) }}
{{- range $name := list "light" "reasoning" }}
{{- $_ := set $scalers (printf "frontier.pools.%s.autoscaling" $name) (default dict (index $.Values.frontier.pools $name).autoscaling) }}
{{- end }}
{{- range $path, $a := $scalers }}
{{- if gt (include "frontier.replicas" (dict "autoscaling" $a "bound" "min_replicas") | float64) (include "frontier.replicas" (dict "autoscaling" $a "bound" "max_replicas") | float64) }}
{{- fail (printf "%s: min_replicas must not exceed max_replicas" $path) }}
{{- end }}
{{- end }}
{{- range $name := list "light" "reasoning" }}
{{- $pool := index $.Values.frontier.pools $name }}
{{- $group := index $.Values.ray.pools $name }}
{{- $gpr := include "frontier.gpusPerReplica" (dict "root" $ "pool" $name) | float64 }}
{{- if and (eq (default "cpu" $pool.device) "gpu") (eq (float64 $group.gpus) 0.0) }}
{{- fail (printf "ray.pools.%s.gpus is 0 but frontier.pools.%s.device is gpu" $name $name) }}
{{- end }}
{{- if gt $gpr (float64 $group.gpus) }}
{{- fail (printf "a %s replica needs %v GPUs (num_gpus x tensor/pipeline parallel size) but ray.pools.%s.gpus is %v" $name $gpr $name $group.gpus) }}
{{- end }}
{{- $cpr := include "frontier.cpusPerReplica" (dict "root" $ "pool" $name) | float64 }}
{{- $podCpus := include "frontier.podCpus" $group | float64 }}
{{- if gt $cpr $podCpus }}
{{- fail (printf "a %s replica needs %v CPUs but a ray.pools.%s pod has %v (resources.limits.cpu)" $name $cpr $name $podCpus) }}
{{- end }}
{{- end }}
{{- $routerCpus := float64 (hasKey $router "num_cpus" | ternary $router.num_cpus 0.5) }}
{{- if gt $routerCpus (include "frontier.podCpus" .Values.ray.routers | float64) }}
{{- fail (printf "a router replica needs %v CPUs but a ray.routers pod has fewer (resources.limits.cpu)" $routerCpus) }}
{{- end }}
{{- end }}
