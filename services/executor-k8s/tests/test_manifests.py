"""The attempt's Kubernetes objects: valid for Kubernetes 1.30 (strict schema), locked down, and
carrying the code files intact."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import uuid4

import kubernetes_validate
import pytest

from controlroom_contracts.api import CodeBundle, CodeFile, FailureReason
from controlroom_contracts.routing import ExecutionProfile, Network
from controlroom_executor.backend import AttemptKey, AttemptSpec, LaunchFailed
from controlroom_executor_k8s import manifests, naming
from controlroom_executor_k8s.settings import ExecutorK8sSettings

OWNER = manifests.Owner(name="cr-job", uid="5f0c7a52-3a4e-4a57-9d0e-4b0f3f2b8e11")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def spec_for(
    files: list[CodeFile] | None = None,
    *,
    executor_id: str = "k8s@build-host-01",
    tenant_id: str = "acme corp/eu",
    network: Network = "none",
    env: dict[str, str] | None = None,
    secrets: frozenset[str] = frozenset(),
) -> AttemptSpec:
    return AttemptSpec(
        key=AttemptKey(uuid4(), 2),
        tenant_id=tenant_id,
        job_type="etl",
        executor_id=executor_id,
        code=CodeBundle(files=files or [CodeFile(path="main.py", content="print('hi')\n")]),
        workspace=Path("/nonexistent"),
        command=["python3", "-I", "main.py"],
        env=env if env is not None else {"CONTROLROOM_RUN_ID": "r1"},
        profile=ExecutionProfile(
            image="registry.example/python:3.11",
            commands={".py": ["python3", "-I"]},
            memory="768Mi",
            cpus=1.5,
            tmp="32Mi",
            workspace="2Gi",
            network=network,
        ),
        timeout_seconds=900,
        secrets=secrets,
    )


def settings() -> ExecutorK8sSettings:
    return ExecutorK8sSettings(k8s_namespace="runs", k8s_ttl_seconds_after_finished=600)


def validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, desired_version="1.30.0", strict=True)


def all_manifests(spec: AttemptSpec) -> list[dict[str, Any]]:
    docs = [
        manifests.job_manifest(spec, settings()),
        manifests.code_config_map(spec, settings(), OWNER),
        manifests.network_policy(spec, settings(), OWNER),
    ]
    secret = manifests.env_secret(spec, settings(), OWNER)
    return docs + ([secret] if secret is not None else [])


@pytest.mark.parametrize("network", ["none", "egress"])
def test_every_manifest_is_valid_for_kubernetes_1_30(network: Network) -> None:
    spec = spec_for(
        network=network, env={"TOKEN": "s3cr3t", "MODE": "x"}, secrets=frozenset({"s3cr3t"})
    )
    docs = all_manifests(spec)
    assert [doc["kind"] for doc in docs] == ["Job", "ConfigMap", "NetworkPolicy", "Secret"]
    for doc in docs:
        validate(doc)


def test_the_validation_is_strict() -> None:
    job = manifests.job_manifest(spec_for(), settings())
    job["spec"]["template"]["spec"]["containers"][0]["imagePulPolicy"] = "Always"  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)


def test_the_job_runs_once_with_the_attempts_deadline_and_is_cleaned_up_after() -> None:
    job = manifests.job_manifest(spec_for(), settings())
    assert job["metadata"]["namespace"] == "runs"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    assert job["spec"]["suspend"] is True  # resumed once its code and policy exist
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False


def test_the_pod_and_every_container_are_locked_down() -> None:
    pod = manifests.job_manifest(spec_for(), settings())["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "runAsGroup": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    containers = pod["initContainers"] + pod["containers"]
    assert [c["name"] for c in containers] == ["copy-code", "job"]
    for container in containers:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (security["runAsUser"], security["runAsGroup"]) == (65534, 65534)
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["privileged"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_resources_and_scratch_space_come_from_the_profile() -> None:
    pod = manifests.job_manifest(spec_for(), settings())["spec"]["template"]["spec"]
    main = pod["containers"][0]
    expected = {"cpu": "1500m", "memory": str(768 << 20)}
    assert main["resources"] == {"requests": expected, "limits": expected}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["workspace"]["emptyDir"] == {"sizeLimit": str(2 << 30)}
    assert volumes["tmp"]["emptyDir"] == {"medium": "Memory", "sizeLimit": str(32 << 20)}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert mounts == {"/workspace": "workspace", "/tmp": "tmp"}
    assert main["workingDir"] == "/workspace"
    assert main["command"] == ["python3", "-I", "main.py"]
    assert main["image"] == "registry.example/python:3.11"


def test_labels_are_valid_and_the_exact_ids_are_annotations() -> None:
    spec = spec_for(executor_id="k8s@build-host-01", tenant_id="acme corp/eu")
    for doc in all_manifests(spec):
        labels = doc["metadata"]["labels"]
        assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values()), labels
        assert labels[naming.RUN_LABEL] == str(spec.key.run_id)
        assert labels[naming.ATTEMPT_LABEL] == "2"
        assert doc["metadata"]["annotations"][naming.EXECUTOR_ANNOTATION] == "k8s@build-host-01"
        assert doc["metadata"]["annotations"][naming.TENANT_ANNOTATION] == "acme corp/eu"
    job = manifests.job_manifest(spec, settings())
    assert job["spec"]["template"]["metadata"]["labels"] == job["metadata"]["labels"]


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("k8s-worker-1", True),
        ("k8s@worker-1", False),
        ("-leading", False),
        ("x" * 63, True),
        ("x" * 64, False),
        ("@@@", False),
        ("tenant.with_dots", True),
    ],
)
def test_label_values_are_kept_when_valid_and_rewritten_distinctly_otherwise(
    raw: str, kept: bool
) -> None:
    value = naming.label_value(raw)
    assert LABEL_VALUE.match(value) and len(value) <= 63
    assert (value == raw) is kept


def test_rewritten_label_values_do_not_collide() -> None:
    values = {naming.label_value(raw) for raw in ("k8s@a", "k8s-a", "k8s#a", "k8s a")}
    assert len(values) == 4


def test_owned_objects_point_at_the_job() -> None:
    spec = spec_for(env={"K": "v-secret"}, secrets=frozenset({"v-secret"}))
    for doc in all_manifests(spec)[1:]:
        assert doc["metadata"]["ownerReferences"] == [
            {"apiVersion": "batch/v1", "kind": "Job", "name": OWNER.name, "uid": OWNER.uid}
        ]
        assert doc["metadata"]["namespace"] == "runs"


def test_code_files_round_trip_through_the_config_map_keys_and_items() -> None:
    files = [
        CodeFile(path="main.py", content="import pkg.mod\n"),
        CodeFile(path="pkg/__init__.py", content=""),
        CodeFile(path="pkg/mod.py", content="VALUE = 'é'\n"),
        CodeFile(path="data/deep/er/input.csv", content="a,b\n1,2\n"),
        CodeFile(path=".hidden/config.yaml", content="x: 1\n"),
        CodeFile(path="d" * 200 + "/" + "n" * 250 + ".py", content="# long\n"),
    ]
    spec = spec_for(files)
    config_map = manifests.code_config_map(spec, settings(), OWNER)
    job = manifests.job_manifest(spec, settings())
    volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "code")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    items = volume["configMap"]["items"]
    assert all(CONFIG_MAP_KEY.match(i["key"]) and len(i["key"]) <= 253 for i in items)
    assert set(config_map["data"]) == {i["key"] for i in items}
    projected = {i["path"]: config_map["data"][i["key"]] for i in items}
    assert projected == {f.path: f.content for f in files}
    # The init container copies every top-level entry, and only those, into /workspace.
    init = job["spec"]["template"]["spec"]["initContainers"][0]
    tops = {PurePosixPath(f.path).parts[0] for f in files}
    assert init["command"] == ["cp", "-R", "-L", *sorted(f"/code/{t}" for t in tops), "/workspace/"]
    assert {"name": "code", "mountPath": "/code", "readOnly": True} in init["volumeMounts"]


def test_many_files_get_unique_keys() -> None:
    files = [CodeFile(path=f"d{i}/same.py", content=str(i)) for i in range(200)]
    config_map = manifests.code_config_map(spec_for(files), settings(), OWNER)
    assert len(config_map["data"]) == 200
    validate(config_map)


def test_code_too_big_for_a_config_map_fails_the_launch() -> None:
    files = [CodeFile(path=f"blob{i}.txt", content="x" * 300_000) for i in range(4)]
    with pytest.raises(LaunchFailed) as failed:
        manifests.job_manifest(spec_for(files), settings())
    assert failed.value.reason is FailureReason.executor_error
    assert "1 MiB" in str(failed.value)


def test_a_file_that_is_also_a_directory_fails_the_launch() -> None:
    files = [CodeFile(path="pkg", content=""), CodeFile(path="pkg/mod.py", content="")]
    with pytest.raises(LaunchFailed):
        manifests.job_manifest(spec_for(files), settings())


def test_a_file_name_longer_than_a_filesystem_takes_fails_the_launch() -> None:
    with pytest.raises(LaunchFailed) as failed:
        manifests.job_manifest(spec_for([CodeFile(path="x" * 256, content="")]), settings())
    assert "255" in str(failed.value)


def test_network_none_denies_all_traffic_and_egress_allows_only_outbound() -> None:
    spec = spec_for(network="none")
    pod_labels = manifests.job_manifest(spec, settings())["spec"]["template"]["metadata"]["labels"]
    closed = manifests.network_policy(spec, settings(), OWNER)["spec"]
    assert closed["policyTypes"] == ["Ingress", "Egress"]
    assert closed["ingress"] == [] and closed["egress"] == []
    assert closed["podSelector"]["matchLabels"].items() <= pod_labels.items()
    opened = manifests.network_policy(spec_for(network="egress"), settings(), OWNER)["spec"]
    assert opened["ingress"] == [] and opened["egress"] == [{}]


def test_secret_environment_values_stay_out_of_the_job() -> None:
    spec = spec_for(
        env={"API_TOKEN": "tok-123", "DSN": "postgres://u:tok-123@db/x", "MODE": "fast"},
        secrets=frozenset({"tok-123"}),
    )
    job = manifests.job_manifest(spec, settings())
    assert "tok-123" not in json.dumps(job)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODE"] == {"name": "MODE", "value": "fast"}
    secret = manifests.env_secret(spec, settings(), OWNER)
    assert secret is not None
    for name in ("API_TOKEN", "DSN"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert secret["stringData"][ref["key"]] == spec.env[name]


def test_no_secret_object_without_secret_values() -> None:
    assert manifests.env_secret(spec_for(), settings(), OWNER) is None


def test_launched_patch_resumes_the_job_and_marks_it() -> None:
    assert manifests.launched_patch() == {
        "metadata": {"annotations": {naming.LAUNCHED_ANNOTATION: "true"}},
        "spec": {"suspend": False},
    }
