"""Custom resource: a load balancer listener rule whose forward action belongs to ECS.

ECS's blue/green, canary and linear deployments move traffic by rewriting the weights of the forward
action of the production and test listener rules, so after a deployment the live weights are ECS's, not
the template's. CloudFormation's own `AWS::ElasticLoadBalancingV2::ListenerRule` sends its template's
actions with every update of the rule (a rotated header secret, a new priority): that puts all traffic
back on the target group the template names, which the last deployment may have drained and emptied
(aws/aws-cdk#36649). This resource writes the actions once, when it creates the rule (all traffic to the
primary target group, none to the alternate, as ECS expects before its first deployment), and never again:

- Update changes the conditions (and the priority) only; ModifyRule without actions keeps ECS's weights;
- a new listener gets a new rule carrying the old rule's live actions, and CloudFormation deletes the old;
- a change of target groups is refused: ECS's weights name the old groups, and no choice made here could
  know which of them serves (stages/runbooks/web-deployments.md says how to replace one).

Properties: `ListenerArn`, `Priority`, `PrimaryTargetGroupArn`, `AlternateTargetGroupArn`, and the
conditions: `PathPatterns` (a list), and/or `HeaderName` with `HeaderSecretArn`, whose value the rule
requires (read here: CloudFormation does not resolve `secretsmanager` dynamic references in a custom
resource's properties). The physical id is the rule's ARN.
"""

import contextlib
import json
import urllib.request

import boto3


def conditions(properties, secrets):
    """The rule's conditions, in the load balancer API's shape."""
    found = []
    if properties.get("HeaderName"):
        value = secrets.get_secret_value(SecretId=properties["HeaderSecretArn"])["SecretString"]
        found.append(
            {
                "Field": "http-header",
                "HttpHeaderConfig": {"HttpHeaderName": properties["HeaderName"], "Values": [value]},
            }
        )
    if properties.get("PathPatterns"):
        found.append(
            {"Field": "path-pattern", "PathPatternConfig": {"Values": list(properties["PathPatterns"])}}
        )
    if not found:
        raise ValueError("a listener rule needs a condition: PathPatterns or HeaderName with HeaderSecretArn")
    return found


def target_groups(properties):
    return properties["PrimaryTargetGroupArn"], properties["AlternateTargetGroupArn"]


def first_actions(properties):
    """Before any deployment: everything to the primary target group, the alternate one attached at 0."""
    primary, alternate = target_groups(properties)
    weighted = [{"TargetGroupArn": primary, "Weight": 100}, {"TargetGroupArn": alternate, "Weight": 0}]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": weighted}}]


def writable(actions, properties):
    """A rule's live forward action as CreateRule takes it (DescribeRules adds fields CreateRule refuses)."""
    primary, alternate = target_groups(properties)
    [forward] = [action for action in actions if action["Type"] == "forward"]
    groups = forward.get("ForwardConfig", {}).get("TargetGroups")
    if not groups:  # a plain forward to one group
        groups = [{"TargetGroupArn": forward["TargetGroupArn"], "Weight": 100}]
    weights = {group["TargetGroupArn"]: group.get("Weight", 1) for group in groups}
    weighted = [{"TargetGroupArn": arn, "Weight": weights.get(arn, 0)} for arn in (primary, alternate)]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": weighted}}]


def create(elbv2, secrets, properties, actions=None):
    """Create the rule; returns its ARN."""
    created = elbv2.create_rule(
        ListenerArn=properties["ListenerArn"],
        Priority=int(properties["Priority"]),
        Conditions=conditions(properties, secrets),
        Actions=actions or first_actions(properties),
    )
    return created["Rules"][0]["RuleArn"]


def update(elbv2, secrets, rule_arn, new, old):
    """Apply a change of properties without touching the forward action; returns the (new) rule's ARN."""
    if target_groups(new) != target_groups(old):
        raise ValueError(
            "the target groups of a rule that ECS shifts cannot change in place: its live weights name the "
            "old groups (see stages/runbooks/web-deployments.md, 'Replacing a target group')"
        )
    if new["ListenerArn"] != old["ListenerArn"]:
        [live] = elbv2.describe_rules(RuleArns=[rule_arn])["Rules"]
        return create(elbv2, secrets, new, actions=writable(live["Actions"], new))
    if int(new["Priority"]) != int(old["Priority"]):
        elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": rule_arn, "Priority": int(new["Priority"])}])
    # No Actions: the load balancer keeps the forward action, and ECS's weights with it.
    elbv2.modify_rule(RuleArn=rule_arn, Conditions=conditions(new, secrets))
    return rule_arn


def delete(elbv2, rule_arn):
    if not rule_arn.startswith("arn:"):  # a create that failed made no rule
        return
    with contextlib.suppress(elbv2.exceptions.RuleNotFoundException):  # already gone
        elbv2.delete_rule(RuleArn=rule_arn)


def apply(event, elbv2, secrets):
    """The rule's ARN after handling one CloudFormation request."""
    kind = event["RequestType"]
    properties = event["ResourceProperties"]
    if kind == "Create":
        return create(elbv2, secrets, properties)
    if kind == "Update":
        return update(elbv2, secrets, event["PhysicalResourceId"], properties, event["OldResourceProperties"])
    delete(elbv2, event["PhysicalResourceId"])
    return event["PhysicalResourceId"]


def respond(event, context, status, physical_id, reason=""):
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"see {context.log_stream_name}",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": {"RuleArn": physical_id} if physical_id.startswith("arn:") else {},
        }
    ).encode()
    # CloudFormation's pre-signed https URL
    request = urllib.request.Request(  # noqa: S310
        event["ResponseURL"], data=body, method="PUT", headers={"content-type": ""}
    )
    urllib.request.urlopen(request, timeout=30)  # noqa: S310


def handler(event, context):
    physical_id = event.get("PhysicalResourceId") or f"failed-{event['RequestId']}"
    try:
        physical_id = apply(event, boto3.client("elbv2"), boto3.client("secretsmanager"))
        respond(event, context, "SUCCESS", physical_id)
    except Exception as error:  # CloudFormation must hear of every failure, or it waits an hour
        print(json.dumps({"level": "ERROR", "request": event["RequestType"], "error": repr(error)}))
        respond(event, context, "FAILED", physical_id, f"{type(error).__name__}: {error}")
