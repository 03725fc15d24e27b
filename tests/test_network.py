"""The VPC: 2 AZs x 3 tiers, flow logs, the S3 gateway endpoint; cluster and task security group."""

from __future__ import annotations

from collections import Counter

from aws_cdk.assertions import Match

from tests.templates import StageTemplates, subnet_tiers


def test_two_azs_by_three_tiers(stage: StageTemplates) -> None:
    subnets = stage.resources("Network", "AWS::EC2::Subnet")
    tiers = subnet_tiers(stage)
    assert Counter(tiers.values()) == {"Public": 2, "Private": 2, "Isolated": 2}
    for tier in ("Public", "Private", "Isolated"):
        zones = {subnets[s]["Properties"]["AvailabilityZone"] for s, t in tiers.items() if t == tier}
        assert zones == set(stage.config.availability_zones), tier


def test_only_public_subnets_map_public_ips(stage: StageTemplates) -> None:
    for logical_id, tier in subnet_tiers(stage).items():
        subnet = stage.resources("Network", "AWS::EC2::Subnet")[logical_id]["Properties"]
        assert subnet["MapPublicIpOnLaunch"] is (tier == "Public")


def test_default_routes_per_tier(stage: StageTemplates) -> None:
    """Public -> internet gateway, private -> NAT gateway, isolated -> no route out at all."""
    raw = stage.raw["Network"]["Resources"]
    associations = stage.resources("Network", "AWS::EC2::SubnetRouteTableAssociation").values()
    table_of = {
        a["Properties"]["SubnetId"]["Ref"]: a["Properties"]["RouteTableId"]["Ref"] for a in associations
    }
    routes = [r["Properties"] for r in stage.resources("Network", "AWS::EC2::Route").values()]
    for subnet, tier in subnet_tiers(stage).items():
        defaults = [r for r in routes if r["RouteTableId"]["Ref"] == table_of[subnet]]
        if tier == "Isolated":
            assert defaults == []
            continue
        [route] = defaults
        assert route["DestinationCidrBlock"] == "0.0.0.0/0"
        target = route.get("GatewayId") or route.get("NatGatewayId")
        expected = "AWS::EC2::InternetGateway" if tier == "Public" else "AWS::EC2::NatGateway"
        assert raw[target["Ref"]]["Type"] == expected, (tier, route)
    stage.template("Network").resource_count_is("AWS::EC2::NatGateway", stage.config.nat_gateways)


def test_vpc_cidr_from_config(stage: StageTemplates) -> None:
    stage.template("Network").has_resource_properties("AWS::EC2::VPC", {"CidrBlock": stage.config.vpc_cidr})


def test_flow_logs_of_all_traffic_with_retention(stage: StageTemplates) -> None:
    template = stage.template("Network")
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"},
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": stage.config.log_retention_days}
    )


def test_s3_gateway_endpoint_on_private_route_tables(stage: StageTemplates) -> None:
    [endpoint] = stage.resources("Network", "AWS::EC2::VPCEndpoint").values()
    props = endpoint["Properties"]
    assert props["VpcEndpointType"] == "Gateway"
    assert str(props["ServiceName"]).endswith(".s3") or ".s3" in str(props["ServiceName"])
    tables = {t["Ref"] for t in props["RouteTableIds"]}
    associations = stage.resources("Network", "AWS::EC2::SubnetRouteTableAssociation").values()
    private = {
        a["Properties"]["RouteTableId"]["Ref"]
        for a in associations
        if subnet_tiers(stage)[a["Properties"]["SubnetId"]["Ref"]] == "Private"
    }
    assert tables == private


def test_default_security_group_is_restricted(stage: StageTemplates) -> None:
    stage.template("Network").resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_cluster_has_container_insights(stage: StageTemplates) -> None:
    stage.template("Network").has_resource_properties(
        "AWS::ECS::Cluster",
        {"ClusterSettings": Match.array_with([{"Name": "containerInsights", "Value": "enabled"}])},
    )
