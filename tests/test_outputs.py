"""The CfnOutputs the pipeline steps read (docs/design.md: "Deploy order and what the stage exposes")."""

from __future__ import annotations

from tests.templates import StageTemplates, Synthesized

OUTPUTS = {
    "Edge": set(),
    "Network": {"ClusterName", "TaskSubnetIds", "TaskSecurityGroupId"},
    "Data": {"DbClusterIdentifier", "EventQueueName"},
    "Migrations": {"MigrationTaskDefinitionArn"},
    "App": {
        "SiteUrl",
        "ServiceName",
        "LoadBalancerFullName",
        "TargetGroupFullName",
        "AlternateTargetGroupFullName",
        "CompressorFunctionName",
    },
}


def named_outputs(stage: StageTemplates, unit: str) -> set[str]:
    """Outputs a person named (the CDK adds `PublishOutput...` ones for cross-stack references)."""
    return {name for name in stage.raw[unit].get("Outputs", {}) if not name.startswith("PublishOutput")}


def test_outputs_by_stack(stage: StageTemplates) -> None:
    for unit, names in OUTPUTS.items():
        assert named_outputs(stage, unit) == names, unit


def test_stage_exposes_its_outputs(synthesized: Synthesized) -> None:
    for stage_id in ("Staging", "Prod"):
        yoctogram_stage = synthesized.app.node.find_child(stage_id)
        assert set(yoctogram_stage.outputs) == set().union(*OUTPUTS.values())


def test_output_values(stage: StageTemplates) -> None:
    assert stage.output("App", "SiteUrl") == f"https://{stage.config.domain_name}"
    [cluster] = stage.resources("Network", "AWS::ECS::Cluster")
    assert stage.output("Network", "ClusterName") == {"Ref": cluster}
    [db] = stage.resources("Data", "AWS::RDS::DBCluster")
    assert stage.output("Data", "DbClusterIdentifier") == {"Ref": db}
    [task] = stage.resources("Migrations", "AWS::ECS::TaskDefinition")
    assert stage.output("Migrations", "MigrationTaskDefinitionArn") == {"Ref": task}
    [alb] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert stage.output("App", "LoadBalancerFullName") == {"Fn::GetAtt": [alb, "LoadBalancerFullName"]}
    # The web service's pair: the one it starts in, and the one its deployments alternate with.
    [balanced] = [
        s["Properties"]["LoadBalancers"][0]
        for s in stage.resources("App", "AWS::ECS::Service").values()
        if s["Properties"].get("LoadBalancers")
    ]
    primary = balanced["TargetGroupArn"]["Ref"]
    alternate = balanced["AdvancedConfiguration"]["AlternateTargetGroupArn"]["Ref"]
    assert stage.output("App", "TargetGroupFullName") == {"Fn::GetAtt": [primary, "TargetGroupFullName"]}
    assert stage.output("App", "AlternateTargetGroupFullName") == {
        "Fn::GetAtt": [alternate, "TargetGroupFullName"]
    }
    [function] = [
        logical_id
        for logical_id, function in stage.resources("App", "AWS::Lambda::Function").items()
        if function["Properties"].get("PackageType") == "Image"
    ]
    assert stage.output("App", "CompressorFunctionName") == {"Ref": function}
    web_services = [
        k
        for k, s in stage.resources("App", "AWS::ECS::Service").items()
        if s["Properties"].get("LoadBalancers")
    ]
    assert stage.output("App", "ServiceName") == {"Fn::GetAtt": [web_services[0], "Name"]}
