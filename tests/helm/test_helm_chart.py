"""The Helm chart, rendered offline: lint, Kubernetes and KubeRay schemas, the Frontier config it deploys,
each pool's GPU group, secrets and hardening, and helm's rejection of bad values."""

import base64
import copy
import hashlib
import json
import math

import jsonschema
import kubernetes_validate
import pytest
import yaml

from frontier.cli.serve import CONTROL_LOOP_INTERVAL_S, IDLE_ENV
from frontier.config import ApiKeyEntry, FrontierConfig, PoolConfig
from frontier.serving.app import serve_config
from tests.helm.conftest import CHART, CI_VALUES, REPO, run_helm

K8S_VERSION = "1.33"
CRD_PATH = REPO.parent / "shared" / "schemas" / "kuberay" / "ray.io_rayservices.yaml"
POOLS = ("light", "reasoning")
CUSTOM_KINDS = {("ray.io/v1", "RayService"), ("monitoring.coreos.com/v1", "ServiceMonitor")}


def _values(name: str) -> dict:
    """The chart defaults overlaid with a scenario's values files (Helm's deep merge, maps only)."""

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        return out

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in CI_VALUES[name]:
        values = merge(values, yaml.safe_load(path.read_text()))
    return values


def _one(objects: list[dict], kind: str, name_suffix: str = "") -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def _groups(rayservice: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]}


def _pod_specs(objects: list[dict]) -> dict[str, dict]:
    """Every pod template in the release: Ray head, each worker group, and workload controllers."""
    specs = {}
    for obj in objects:
        if obj["kind"] == "RayService":
            cluster = obj["spec"]["rayClusterConfig"]
            specs["ray-head"] = cluster["headGroupSpec"]["template"]["spec"]
            for name, group in _groups(obj).items():
                specs[f"ray-{name}"] = group["template"]["spec"]
        elif obj["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job"):
            specs[obj["metadata"]["name"]] = obj["spec"]["template"]["spec"]
    return specs


def _serve_config(objects: list[dict]) -> dict:
    return yaml.safe_load(_one(objects, "RayService")["spec"]["serveConfigV2"])


def _strict(schema):
    """The CRD schema with unknown fields rejected: the API server would silently prune them (a chart bug)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def rayservice_schema() -> dict:
    assert CRD_PATH.exists(), f"KubeRay RayService CRD not found at {CRD_PATH}"
    crd = yaml.safe_load(CRD_PATH.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


# --- lint and schemas ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CI_VALUES))
def test_helm_lint_is_clean(helm, name):
    args = ["lint", "--strict", str(CHART), "--namespace", "llm"]
    for path in CI_VALUES[name]:
        args += ["-f", str(path)]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_every_object_matches_the_kubernetes_schema(scenario):
    name, objects = scenario
    kinds = set()
    for obj in objects:
        kinds.add(obj["kind"])
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert {"RayService", "NetworkPolicy", "PodDisruptionBudget"} <= kinds
    if name != "external-redis":
        assert {"StatefulSet", "Service", "Secret", "ConfigMap"} <= kinds


def test_rayservice_matches_the_kuberay_crd(scenario, rayservice_schema):
    name, objects = scenario
    rayservice = _one(objects, "RayService")
    errors = sorted(jsonschema.Draft7Validator(rayservice_schema).iter_errors(rayservice), key=str)
    assert not errors, f"{name}: " + "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    # The embedded pod templates are core PodSpecs too: check them against Kubernetes' own schema.
    for label, spec in _pod_specs([rayservice]).items():
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": label}, "spec": spec}
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_the_strict_crd_schema_catches_a_misspelled_field(render, rayservice_schema):
    rayservice = copy.deepcopy(_one(render(), "RayService"))
    rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(jsonschema.ValidationError, match="maxReplica"):
        jsonschema.validate(rayservice, rayservice_schema, cls=jsonschema.Draft7Validator)


def test_values_schema_embeds_the_current_frontier_config_schema():
    from scripts.gen_helm_schema import SCHEMA_PATH
    from scripts.gen_helm_schema import render as render_schema

    text = SCHEMA_PATH.read_text()
    assert render_schema(json.loads(text)) == text, "run: python scripts/gen_helm_schema.py"


# --- the Frontier application -------------------------------------------------------------------------------


def test_serve_config_is_the_one_the_cli_renders_for_the_same_config(scenario):
    _name, objects = scenario
    rendered = _serve_config(objects)
    (app,) = rendered["applications"]
    config = FrontierConfig.model_validate(app["args"]["config"])
    expected = serve_config(config)
    assert rendered == {**expected, "applications": [{**expected["applications"][0], "args": app["args"]}]}
    assert app["import_path"] == "frontier.serving.app:app_builder"
    assert app["route_prefix"] == "/"


def test_serve_config_carries_the_values_frontier_block(scenario):
    name, objects = scenario
    given = FrontierConfig.model_validate(_values(name)["frontier"])
    deployed = FrontierConfig.model_validate(_serve_config(objects)["applications"][0]["args"]["config"])
    # Only the node-group custom resources are added; models, prices, knob and autoscaling are the user's.
    for pool in POOLS:
        assert deployed.pools.get(pool).resources.custom_resources == {f"frontier-{pool}": 1}
    assert deployed.router.custom_resources == {"frontier-router": 1}
    stripped = deployed.model_dump()
    for pool in POOLS:
        stripped["pools"][pool]["resources"]["custom_resources"] = {}
    stripped["router"]["custom_resources"] = {}
    assert stripped == given.model_dump()


def test_model_prices_and_cost_knob_come_from_values(render, tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text(yaml.safe_dump({"frontier": {
        "pools": {"light": {"model": "meta-llama/Llama-3.1-8B-Instruct", "price_output_per_mtok": 0.9}},
        "router": {"price_weight": 2.5},
    }}))
    config = FrontierConfig.model_validate(_serve_config(render(values))["applications"][0]["args"]["config"])
    assert config.pools.light.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert config.pools.light.price_output_per_mtok == 0.9
    assert config.router.price_weight == 2.5 and config.router.reasoning_share is None


# --- node groups --------------------------------------------------------------------------------------------


def test_each_pool_has_its_own_gpu_group_its_replicas_land_on(scenario):
    name, objects = scenario
    values = _values(name)
    rayservice = _one(objects, "RayService")
    config = FrontierConfig.model_validate(_serve_config(objects)["applications"][0]["args"]["config"])
    groups = _groups(rayservice)
    assert set(groups) == {"routers", *POOLS}
    for pool_name in POOLS:
        group, want = groups[pool_name], values["ray"]["pools"][pool_name]
        pool = config.pools.get(pool_name)
        (container,) = group["template"]["spec"]["containers"]
        gpus = container["resources"]
        assert gpus["requests"]["nvidia.com/gpu"] == gpus["limits"]["nvidia.com/gpu"] == want["gpus"]
        assert group["template"]["spec"].get("nodeSelector", {}) == want["nodeSelector"]
        assert group["template"]["spec"]["tolerations"] == want["tolerations"]
        # The group declares the custom resource that this pool's replicas (and only they) request.
        declared = json.loads(json.loads(group["rayStartParams"]["resources"]))
        assert set(declared) == {f"frontier-{pool_name}"}
        assert set(pool.resources.custom_resources) == set(declared)
        # Pods: the values' explicit bound, or the pool's replicas x GPUs per replica / GPUs per pod.
        per_replica = pool.resources.num_gpus * pool.engine_args.get("tensor_parallel_size", 1)
        assert per_replica <= want["gpus"]
        for bound, field in (("minReplicas", "min_replicas"), ("maxReplicas", "max_replicas")):
            derived = math.ceil(getattr(pool.autoscaling, field) * per_replica / want["gpus"])
            assert group[bound] == (want[bound] if want[bound] is not None else derived)
        # A stopping pod outlives the replica's graceful shutdown.
        assert group["template"]["spec"]["terminationGracePeriodSeconds"] > pool.graceful_shutdown_timeout_s
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]
    for cpu_only in (groups["routers"]["template"]["spec"], head["template"]["spec"]):
        for container in cpu_only["containers"]:
            assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert set(json.loads(json.loads(groups["routers"]["rayStartParams"]["resources"]))) == {"frontier-router"}


def test_gpu_example_scales_pools_on_separate_accelerators(render):
    objects = render(*CI_VALUES["gpu"])
    groups = _groups(_one(objects, "RayService"))
    assert groups["light"]["template"]["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert groups["reasoning"]["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-h100-80gb"
    }
    assert (groups["light"]["minReplicas"], groups["light"]["maxReplicas"]) == (2, 8)
    assert (groups["reasoning"]["minReplicas"], groups["reasoning"]["maxReplicas"]) == (1, 5)


def test_cluster_outlives_the_longest_generation_on_upgrade(render, tmp_path):
    spec = _one(render(), "RayService")["spec"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    assert spec["rayClusterDeletionDelaySeconds"] == 1800 + 60
    # A pool without graceful_shutdown_timeout_s uses PoolConfig's default.
    values = tmp_path / "v.yaml"
    values.write_text(yaml.safe_dump({"frontier": {"pools": {
        "light": {"graceful_shutdown_timeout_s": 30}, "reasoning": {"graceful_shutdown_timeout_s": None}}}}))
    default = PoolConfig.model_fields["graceful_shutdown_timeout_s"].default
    assert _one(render(values), "RayService")["spec"]["rayClusterDeletionDelaySeconds"] == default + 60


# --- secrets, Redis, hardening, network ---------------------------------------------------------------------


def _ray_containers(objects):
    rayservice = _one(objects, "RayService")
    for label, spec in _pod_specs([rayservice]).items():
        yield label, spec["containers"][0]


def test_secrets_reach_ray_pods_only_by_reference(scenario):
    name, objects = scenario
    values = _values(name)
    for label, container in _ray_containers(objects):
        env = {e["name"]: e for e in container["env"]}
        for var in ("FRONTIER_REDIS_URL", "FRONTIER_API_KEYS"):
            assert set(env[var]) == {"name", "valueFrom"}, f"{label}: {var} must come from a Secret"
            assert "secretKeyRef" in env[var]["valueFrom"]
        assert env["FRONTIER_API_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == values["apiKeys"]["key"]
        if values["redis"]["mode"] == "external":
            ref = env["FRONTIER_REDIS_URL"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": values["redis"]["external"]["existingSecret"], "key": "redis-url"}
        if values["ray"]["hfToken"]["existingSecret"]:
            assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"


@pytest.mark.parametrize("optimized", [True, False])
def test_throughput_optimized_serve_keeps_clients_on_the_proxy(render, optimized):
    objects = render(set_json=(f"ray.throughputOptimized={str(optimized).lower()}",))
    for label, container in _ray_containers(objects):
        env = {e["name"]: e.get("value") for e in container["env"]}
        if optimized:
            assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1", label
            # The Kubernetes Service points at the Serve proxy: replicas must not take HTTP themselves.
            assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "0", label
            # The same controller loop as `frontier serve`'s Ray (frontier.cli.serve.local_serve_env).
            assert env["RAY_SERVE_CONTROL_LOOP_INTERVAL_S"] == CONTROL_LOOP_INTERVAL_S, label
        else:
            assert "RAY_SERVE_THROUGHPUT_OPTIMIZED" not in env and "RAY_SERVE_ENABLE_DIRECT_INGRESS" not in env, label
        # Either way, an idle cluster spends what `frontier serve`'s idle Ray spends.
        assert {name: env.get(name) for name in IDLE_ENV} == IDLE_ENV, label


@pytest.mark.parametrize("haproxy", [True, False])
def test_haproxy_mode_is_an_opt_in_for_every_ray_container(render, haproxy):
    objects = render(set_json=(f"ray.haproxy={str(haproxy).lower()}",))
    containers = list(_ray_containers(objects))
    assert containers
    for label, container in containers:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("RAY_SERVE_ENABLE_HA_PROXY") == ("1" if haproxy else None), label


def test_no_secret_value_outside_secrets(render):
    objects = render(*CI_VALUES["gpu"])  # generated API key and Redis password
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {"frontier-redis", "frontier-api-keys"}
    values = [base64.b64decode(v).decode() for s in secrets for v in s["data"].values()]
    password = base64.b64decode(_one(objects, "Secret", "-redis")["data"]["redis-password"]).decode()
    assert len(password) >= 32
    for obj in objects:
        if obj["kind"] == "Secret":
            continue
        text = json.dumps(obj)
        for value in values:
            assert value not in text, f"{obj['kind']}/{obj['metadata']['name']} contains a secret value"
        assert password not in text


def test_generated_api_key_is_stored_hashed_for_the_pods(render):
    secret = _one(render(*CI_VALUES["gpu"]), "Secret", "-api-keys")
    key = base64.b64decode(secret["data"]["api-key"]).decode()
    entries = json.loads(base64.b64decode(secret["data"]["api-keys.json"]))
    assert entries == [{"name": "generated", "sha256": hashlib.sha256(key.encode()).hexdigest(), "rpm": 1200}]
    ApiKeyEntry.model_validate(entries[0])  # the format the router reads from FRONTIER_API_KEYS


def test_bundled_redis_is_persistent_authenticated_and_probed(render):
    objects = render()
    sts = _one(objects, "StatefulSet", "-redis")
    conf = _one(objects, "ConfigMap", "-redis-config")["data"]["redis.conf"].splitlines()
    assert {"appendonly yes", "appendfsync everysec", "dir /data", "include /tmp/auth.conf"} <= set(conf)
    # Nothing is evicted (feedback must not vanish), and Redis refuses writes before the kernel kills it.
    assert {"maxmemory 768mb", "maxmemory-policy noeviction"} <= set(conf)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "8Gi"
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert "redis-cli" in " ".join(container["readinessProbe"]["exec"]["command"])
    (password,) = container["env"]
    assert password["valueFrom"]["secretKeyRef"] == {"name": "frontier-redis", "key": "redis-password"}
    secret = _one(objects, "Secret", "-redis")
    url = base64.b64decode(secret["data"]["redis-url"]).decode()
    pw = base64.b64decode(secret["data"]["redis-password"]).decode()
    assert url == f"redis://:{pw}@frontier-redis.llm.svc:6379/0"
    # Ray's GCS fault tolerance must never point at the feedback Redis.
    assert "gcsFaultToleranceOptions" not in _one(objects, "RayService")["spec"]["rayClusterConfig"]


def test_external_redis_replaces_the_bundled_one(render):
    objects = render(*CI_VALUES["external-redis"])
    assert not [o for o in objects if o["kind"] in ("StatefulSet", "ConfigMap", "Secret")]
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"] == ["frontier-ray"]
    url = "rediss://:pw@redis.example.com:6380/0"
    objects = render(set_json=(f'redis={{"mode":"external","external":{{"url":"{url}"}}}}',))
    secret = _one(objects, "Secret", "-redis-url")
    assert base64.b64decode(secret["data"]["redis-url"]).decode() == url


def test_pods_are_hardened_and_request_resources(scenario):
    _name, objects = scenario
    specs = _pod_specs(objects)
    assert {"ray-head", "ray-routers", "ray-light", "ray-reasoning"} <= set(specs)
    for label, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, label
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, label
        # Only the head needs a token: the KubeRay autoscaler sidecar talks to the API server.
        assert spec["automountServiceAccountToken"] is (label == "ray-head"), label
        for container in spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["capabilities"] == {"drop": ["ALL"]}, label
            assert ctx["allowPrivilegeEscalation"] is False, label
            assert ctx["readOnlyRootFilesystem"] is True, label
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), label
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), label
    autoscaler = _one(objects, "RayService")["spec"]["rayClusterConfig"]["autoscalerOptions"]
    assert {"cpu", "memory"} <= set(autoscaler["resources"]["requests"])
    assert autoscaler["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_network_policies_expose_only_the_router_port(render):
    objects = render()
    ray = _one(objects, "NetworkPolicy", "-ray")
    ray_pods = ray["spec"]["podSelector"]["matchLabels"]
    assert ray_pods["app.kubernetes.io/component"] == "ray"
    assert ray["spec"]["policyTypes"] == ["Ingress", "Egress"]
    intra, public, operator = ray["spec"]["ingress"]
    assert intra == {"from": [{"podSelector": {"matchLabels": ray_pods}}]}
    assert public == {"ports": [{"port": 8000, "protocol": "TCP"}]}  # no `from`: any client
    # The dashboard and Jobs API (8265) run code on the head: only the operator's pods in its own namespace.
    assert {p["port"] for p in operator["ports"]} == {8265, 52365}
    assert operator["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
        }
    ]
    redis = _one(objects, "NetworkPolicy", "-redis")
    assert redis["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": ray_pods}}], "ports": [{"port": 6379, "protocol": "TCP"}]}
    ]
    assert redis["spec"]["policyTypes"] == ["Ingress", "Egress"] and redis["spec"]["egress"] == []
    # Every Ray pod carries the selector labels the policies match.
    rayservice = _one(objects, "RayService")
    templates = {"head": rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]}
    templates.update({name: group["template"] for name, group in _groups(rayservice).items()})
    for label, template in templates.items():
        assert ray_pods.items() <= template["metadata"]["labels"].items(), label


def _ports(rule: dict) -> set[int]:
    return {p["port"] for p in rule.get("ports", [])}


def test_dashboard_port_is_reachable_from_nothing_but_the_ray_pods_and_the_pinned_operator(render):
    objects = render(
        *CI_VALUES["gpu"],
        set_json=('networkPolicy.operator.namespace="ray-system"',),
    )
    rules = _one(objects, "NetworkPolicy", "-ray")["spec"]["ingress"]
    ray_pods = _one(objects, "NetworkPolicy", "-ray")["spec"]["podSelector"]["matchLabels"]
    for rule in rules:
        if "ports" in rule and 8265 not in _ports(rule):
            continue
        # a rule that admits 8265 names its peers, and each peer is this release's Ray pods or the operator
        assert rule.get("from"), rule
        for peer in rule["from"]:
            operator = {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ray-system"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}},
            }
            assert peer in ({"podSelector": {"matchLabels": ray_pods}}, operator), peer


def test_ray_pods_egress_is_limited_to_the_release_dns_and_https(render):
    objects = render()
    egress = _one(objects, "NetworkPolicy", "-ray")["spec"]["egress"]
    ray_pods = _one(objects, "NetworkPolicy", "-ray")["spec"]["podSelector"]["matchLabels"]
    redis_pods = _one(objects, "StatefulSet", "-redis")["spec"]["selector"]["matchLabels"]
    intra, redis, dns, https = egress
    assert intra == {"to": [{"podSelector": {"matchLabels": ray_pods}}]}
    assert redis == {"to": [{"podSelector": {"matchLabels": redis_pods}}], "ports": [{"port": 6379, "protocol": "TCP"}]}
    assert dns == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert _ports(https) == {443, 6443} and "to" not in https
    collector = {"to": [{"ipBlock": {"cidr": "10.0.0.7/32"}}], "ports": [{"port": 4318}]}
    objects = render(
        *CI_VALUES["external-redis"],
        set_json=(
            'networkPolicy.egress={"httpsTo":[{"ipBlock":{"cidr":"10.1.0.0/16"}}],"externalRedisPort":6380,'
            '"externalRedisTo":[],"extra":[{"to":[{"ipBlock":{"cidr":"10.0.0.7/32"}}],"ports":[{"port":4318}]}]}',
        ),
    )
    intra, redis, dns, https, extra = _one(objects, "NetworkPolicy", "-ray")["spec"]["egress"]
    assert redis == {"ports": [{"port": 6380, "protocol": "TCP"}]}
    assert https["to"] == [{"ipBlock": {"cidr": "10.1.0.0/16"}}] and extra == collector


def test_redis_maxmemory_stays_below_its_memory_limit(render):
    def mib(quantity: str) -> float:
        units = {"kb": 2**-10, "mb": 1, "gb": 2**10, "Ki": 2**-10, "Mi": 1, "Gi": 2**10}
        for unit, factor in units.items():
            if quantity.endswith(unit):
                return float(quantity[: -len(unit)]) * factor
        raise AssertionError(quantity)

    objects = render()
    conf = dict(line.split(" ", 1) for line in _one(objects, "ConfigMap", "-redis-config")["data"]["redis.conf"].splitlines())
    (container,) = _one(objects, "StatefulSet", "-redis")["spec"]["template"]["spec"]["containers"]
    assert mib(conf["maxmemory"]) <= 0.8 * mib(container["resources"]["limits"]["memory"])
    for bad in ('"1GB"', '"lots"', '"0mb"'):
        with pytest.raises(AssertionError, match="maxmemory"):
            render(set_json=(f"redis.bundled.maxmemory={bad}",))


def test_router_pods_probe_the_proxy_health_not_the_pools(render):
    (container,) = _groups(_one(render(), "RayService"))["routers"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/healthz", "port": "serve"}


def test_openai_service_ingress_and_service_monitor(render):
    objects = render(*CI_VALUES["gpu"])
    rayservice = _one(objects, "RayService")
    service = rayservice["spec"]["serveService"]
    assert service["metadata"]["name"] == "frontier-openai"
    assert service["spec"]["ports"] == [{"name": "serve", "port": 8000, "targetPort": "serve", "protocol": "TCP"}]
    assert rayservice["spec"]["excludeHeadPodFromServeSvc"] is True
    ingress = _one(objects, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "frontier-openai", "port": {"name": "serve"}}
    monitor = _one(objects, "ServiceMonitor")
    metrics = _one(objects, "Service", "-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert sorted(p["spec"]["selector"]["matchLabels"]["frontier.dev/ray-group"] for p in pdbs) == [
        "light", "reasoning", "routers"
    ]


# --- helm rejects bad values with a clear message -----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"frontier": {"pools": {"light": {"max_model_len": 5}}}}, "/frontier/pools/light/max_model_len"),
        ({"frontier": {"pools": {"reasoning": {"modle": "x"}}}}, "additional properties 'modle' not allowed"),
        ({"frontier": {"router": {"reasoning_share": 1.5}}}, "/frontier/router/reasoning_share"),
        ({"redis": {"mode": "sentinel"}}, "/redis/mode"),
        ({"ray": {"pools": {"light": {"resources": {"requests": {"cpu": "six"}}}}}},
         "/ray/pools/light/resources/requests/cpu"),
        ({"frontier": {"router": {"reasoning_share": 0.3, "price_weight": 1.0}}}, "at most one cost knob"),
        ({"frontier": {"pools": {"light": {"autoscaling": {"min_replicas": 5, "max_replicas": 3}}}}},
         "frontier.pools.light.autoscaling: min_replicas must not exceed max_replicas"),
        ({"ray": {"pools": {"reasoning": {"gpus": 1}}}}, "a reasoning replica needs 2 GPUs"),
        ({"ray": {"pools": {"light": {"gpus": 0}}}},
         "ray.pools.light.gpus is 0 but frontier.pools.light.device is gpu"),
        ({"frontier": {"redis": {"url": "redis://:pw@r:6379"}}}, "frontier.redis.url must stay unset"),
        ({"apiKeys": {"existingSecret": ""}}, "apiKeys: set apiKeys.existingSecret"),
        ({"redis": {"mode": "external"}}, "redis.mode=external needs"),
    ],
)
def test_helm_rejects_bad_values_with_a_clear_message(helm, tmp_path, values, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    result = run_helm(helm, "template", "frontier", str(CHART), "-f", str(path))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_the_chart_readme_documents_every_top_level_value():
    readme = (CHART / "README.md").read_text()
    for key in yaml.safe_load((CHART / "values.yaml").read_text()):
        assert f"`{key}" in readme, key
